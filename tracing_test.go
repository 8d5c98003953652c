package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// TestTracingSwitch: the standard variables turn tracing on, and only
// they; one that names what the server cannot do stops the start, named.
func TestTracingSwitch(t *testing.T) {
	for _, tc := range []struct {
		name         string
		env          map[string]string
		wantProtocol string // "" for off
		wantErr      string
	}{
		{"OffByDefault", nil, "", ""},
		{"Endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "http/protobuf", ""},
		{"TracesEndpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "http/protobuf", ""},
		{"Exporter", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, "http/protobuf", ""},
		{"GRPC", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc", ""},
		{"ExporterNone", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, "", ""},
		{"SDKDisabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, "", ""},
		{"ErrExporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "", "OTEL_TRACES_EXPORTER"},
		{"ErrProtocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, protocol, err := newTracerProvider(t.Context(), func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tp != nil) != (tc.wantProtocol != "") || protocol != tc.wantProtocol {
				t.Fatalf("provider %v, protocol %q; want protocol %q", tp, protocol, tc.wantProtocol)
			}
			if tp != nil {
				// Nothing was exported, so nothing is dialled.
				if err := tp.Shutdown(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestTracesReachTheCollector: with OTEL_EXPORTER_OTLP_ENDPOINT set (here
// to a receiver of the test's own on the loopback), over HTTP or gRPC, a
// request's trace continues its traceparent, its log line names the trace,
// and the spans still buffered when the server stops are sent before it
// exits (the exporter's batch would otherwise wait 5 s).
func TestTracesReachTheCollector(t *testing.T) {
	for _, tc := range []struct {
		protocol string
		start    func(*collector, *testing.T) string // returns the endpoint
	}{
		{"http/protobuf", (*collector).serveHTTP},
		{"grpc", (*collector).serveGRPC},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			c := &collector{}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.start(c, t))
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol)
			for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_SERVICE_NAME"} {
				t.Setenv(v, "")
			}
			traceOneRequest(t, c)
		})
	}
}

// traceOneRequest runs the server with the process's OTEL_ variables,
// sends it one request with a traceparent, stops it, and checks what c
// received and the request's log line.
func traceOneRequest(t *testing.T, c *collector) {
	t.Helper()
	otelOnly := func(k string) string {
		if strings.HasPrefix(k, "OTEL_") {
			return os.Getenv(k)
		}
		return ""
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	at := make(chan listening, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--demo", "3"},
			otelOnly, slog.New(slog.NewJSONHandler(&logs, nil)), func(l listening) { at <- l })
	}()
	var base string
	select {
	case l := <-at:
		base = "http://" + l.API.String()
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, err := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(`{"query":"query Named { referrals { totalCount } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	if line := requestLine(t, logs.String(), resp.Header.Get("X-Request-Id")); line["trace_id"] != traceID {
		t.Errorf("request log line %v, want trace_id %s", line, traceID)
	}
	spans, service := c.received()
	if service != "referrals" {
		t.Errorf("service.name %q, want referrals", service)
	}
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		if hex.EncodeToString(s.TraceId) == traceID {
			byName[s.Name] = s
		}
	}
	for _, name := range []string{"POST /query", "query Named", "Query.referrals"} {
		if byName[name] == nil {
			t.Errorf("no span %q in trace %s; received %d spans", name, traceID, len(spans))
		}
	}
	if root := byName["POST /query"]; root != nil && hex.EncodeToString(root.ParentSpanId) != parentID {
		t.Errorf("HTTP span's parent %x, want the caller's %s", root.ParentSpanId, parentID)
	}
}

// collector is an OTLP trace receiver on the loopback, over HTTP or gRPC.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu      sync.Mutex
	spans   []*tracepb.Span
	service string
}

// Export receives spans over gRPC.
func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) add(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
}

// serveHTTP receives OTLP over HTTP until the test ends and returns its
// endpoint.
func (c *collector) serveHTTP(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || err != nil || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		c.add(&req)
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// serveGRPC receives OTLP over gRPC until the test ends and returns its
// endpoint.
func (c *collector) serveGRPC(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

func (c *collector) received() ([]*tracepb.Span, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spans, c.service
}

// requestLine returns the JSON request log line of the request id.
func requestLine(t *testing.T, logs, id string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["request_id"] == id {
			return m
		}
	}
	t.Fatalf("no request log line with request_id %q in\n%s", id, logs)
	return nil
}

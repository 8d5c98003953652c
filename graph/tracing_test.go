package graph

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"referrals/graph/export"
	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/live"
	"referrals/storage"
)

// tracedServer is the server's /query and /export/referrals over a store
// of its own, every layer recording spans into an in-memory exporter, with
// HS256 tokens required.
type tracedServer struct {
	*env
	handler http.Handler
	spans   *tracetest.InMemoryExporter
	token   string
}

// newTracedServer seeds n demo referrals into a store that reads as
// pushdown says (the embedded read planner answers selections only with
// storage.PushdownIDOnly) and serves it traced.
func newTracedServer(t *testing.T, n int, pushdown storage.Pushdown) *tracedServer {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans)) // a span is exported as it ends
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e := newEnvOn(t, n, &storage.Options{Tracing: tp, Pushdown: pushdown})
	spans.Reset() // seeding runs outside any trace; this only makes sure
	auth, err := transport.NewAuth(t.Context(), transport.AuthOptions{Secret: transporttest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	return &tracedServer{env: e, handler: tracedRoutes(e.store, e.broker, auth, tp), spans: spans,
		token: transporttest.HS(t, jwt.MapClaims{"sub": "admin-1", "role": "admin", "exp": transporttest.InAnHour()})}
}

// tracedRoutes serves /query and /export/referrals over store as server.go
// routes them, every layer above the store traced with tp.
func tracedRoutes(store *storage.Store, broker *live.Broker, auth *transport.Auth, tp trace.TracerProvider) http.Handler {
	logger := slog.New(slog.DiscardHandler)
	gql := NewExecutor(store, broker, logger, nil, Options{Tracing: tp})
	api := transport.New(gql, auth, transport.Options{Tracing: tp, Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/query", api)
	mux.Handle("/export/referrals", api.Stream(export.New(gql, logger)))
	return mux
}

// serve runs req with the server's token and returns the response body;
// every span of the request has ended when it returns.
func (s *tracedServer) serve(t *testing.T, req *http.Request) string {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+s.token)
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// post builds a GraphQL POST of query and its variables.
func tracedPost(query string, vars map[string]any) *http.Request {
	return jsonPost(map[string]any{"query": query, "variables": vars})
}

// Incoming W3C trace context of the tests: a caller's trace and span.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

// TestTracesFollowARequest: a read by id over HTTP with a traceparent
// header is one trace continuing the caller's: the HTTP server span, the
// operation, the resolver, the loader's batch, and the store's read — a
// MongoDB command, or a selection of the embedded read planner — each the
// child of the one before, with their attributes.
func TestTracesFollowARequest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pushdown storage.Pushdown
		read     string // the store's span
		system   string
	}{
		{"MongoDBCommand", storage.PushdownIndexed, "find referrals", "mongodb"},
		{"PlannedSelection", storage.PushdownIDOnly, "select referrals", "sqlite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTracedServer(t, 5, tc.pushdown)
			want := s.referrals[2]
			req := tracedPost(`query ReferralByID($id: ID!) { referral(id: $id) { id customerProfile { name } } }`, map[string]any{"id": want.ID})
			req.Header.Set("traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01")
			body := s.serve(t, req)
			if !strings.Contains(body, want.CustomerProfile.Name) {
				t.Fatalf("response %s lacks the referral's customer %q", body, want.CustomerProfile.Name)
			}

			spans := s.spans.GetSpans()
			wantTree := "POST /query\n  query ReferralByID\n    Query.referral\n      load ReferralByID\n        " + tc.read + "\n"
			if got := spanTree(spans); got != wantTree {
				t.Fatalf("spans:\n%s\nwant:\n%s", got, wantTree)
			}
			for _, sp := range spans {
				if got := sp.SpanContext.TraceID().String(); got != callerTraceID {
					t.Errorf("span %q is in trace %s, want the caller's %s", sp.Name, got, callerTraceID)
				}
			}
			root, op, read := named(t, spans, "POST /query"), named(t, spans, "query ReferralByID"), named(t, spans, tc.read)
			if !root.Parent.IsRemote() || root.Parent.SpanID().String() != callerSpanID || root.SpanKind != trace.SpanKindServer {
				t.Errorf("HTTP span: parent %v (remote %v), kind %v; want the caller's span %s, remote, server", root.Parent.SpanID(), root.Parent.IsRemote(), root.SpanKind, callerSpanID)
			}
			wantAttrs(t, root, map[string]string{"http.request.method": "POST", "http.route": "/query", "http.response.status_code": "200"})
			wantAttrs(t, op, map[string]string{"graphql.operation.type": "query", "graphql.operation.name": "ReferralByID"})
			wantAttrs(t, named(t, spans, "Query.referral"), map[string]string{"graphql.field.path": "referral"})
			wantAttrs(t, named(t, spans, "load ReferralByID"), map[string]string{"graphql.loader.keys": "1"})
			wantAttrs(t, read, map[string]string{"db.system.name": tc.system, "db.collection.name": "referrals"})
			if tc.system == "mongodb" {
				wantAttrs(t, read, map[string]string{"db.operation.name": "find", "db.namespace": s.db})
			}
			if read.SpanKind != trace.SpanKindClient {
				t.Errorf("%s: kind %v, want client", read.Name, read.SpanKind)
			}
			for _, sp := range spans {
				if sp.Status.Code == codes.Error {
					t.Errorf("span %q failed: %q", sp.Name, sp.Status.Description)
				}
			}
		})
	}
}

// TestTracesOfPagesExportsAndStreams: a nested page traces its root field,
// its totalCount and its prefetch; an export is an HTTP span with one
// operation per page; an SSE request, which may stream for hours, has no
// HTTP span, and its response starts a trace.
func TestTracesOfPagesExportsAndStreams(t *testing.T) {
	s := newTracedServer(t, 5, storage.PushdownIndexed)

	t.Run("Page", func(t *testing.T) {
		s.spans.Reset()
		s.serve(t, tracedPost(`query Page { referrals(first: 3) { totalCount nodes { id participants { organizationName } } } }`, nil))
		got := spanTree(s.spans.GetSpans())
		for _, want := range []string{
			"POST /query\n  query Page\n    Query.referrals\n",
			"      ReferralConnection.totalCount\n        aggregate referrals\n",
			"      find participants\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("spans:\n%s\nlack:\n%s", got, want)
			}
		}
	})

	t.Run("Export", func(t *testing.T) {
		s.spans.Reset()
		s.serve(t, httptest.NewRequest(http.MethodGet, "/export/referrals?filter="+url.QueryEscape(`{}`), nil))
		got := spanTree(s.spans.GetSpans())
		if want := "GET /export/referrals\n  query Export\n    Query.referrals\n      find referrals\n"; !strings.HasPrefix(got, want) {
			t.Errorf("spans:\n%s\nwant them to start:\n%s", got, want)
		}
	})

	t.Run("SSE", func(t *testing.T) {
		s.spans.Reset()
		req := tracedPost(`query Streamed { tags(category: SERVICE_TYPES) { id } }`, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01")
		s.serve(t, req)
		spans := s.spans.GetSpans()
		if got, want := spanTree(spans), "query Streamed\n  Query.tags\n    find tags\n"; got != want {
			t.Fatalf("spans:\n%s\nwant:\n%s", got, want)
		}
		if op := named(t, spans, "query Streamed"); op.Parent.IsValid() {
			t.Errorf("the streamed operation's span has parent %v, want none", op.Parent.SpanID())
		}
	})
}

// TestTracesHoldNoSecrets: no span of a request holds its token, its
// variables, the literal arguments of its document or the document
// itself, not even when the request fails on them; a failure shows as the
// span's error status with the API's code alone.
func TestTracesHoldNoSecrets(t *testing.T) {
	s := newTracedServer(t, 5, storage.PushdownIndexed)
	ok := `query Page($filter: ReferralFilter) {
  mine: referrals(filter: $filter, first: 5) { totalCount nodes { id participants { organizationName } } }
  theirs: referrals(filter: {customerName: "literal-secret"}, first: 1) { totalCount }
}`
	badCursor := `query BadCursor { referrals(first: 1, after: "literal-secret") { totalCount } }`
	badEnum := `query BadEnum($filter: ReferralFilter) { referrals(filter: $filter) { totalCount } }`
	s.serve(t, tracedPost(ok, map[string]any{"filter": map[string]any{"customerName": "variable-secret"}}))
	s.serve(t, tracedPost(badCursor, nil))
	s.serve(t, tracedPost(badEnum, map[string]any{"filter": map[string]any{"status": []string{"VARIABLE_SECRET"}}}))

	spans := s.spans.GetSpans()
	for _, sp := range spans {
		text := spanText(sp)
		for _, secret := range []string{s.token, "variable-secret", "VARIABLE_SECRET", "literal-secret", "customerName", "filter: $filter"} {
			if strings.Contains(text, secret) {
				t.Errorf("span %q holds %q:\n%s", sp.Name, secret, text)
			}
		}
	}
	for name, want := range map[string]string{
		"query Page": "", "query BadCursor": "BAD_USER_INPUT", "Query.referrals": "BAD_USER_INPUT", "query BadEnum": "BAD_USER_INPUT",
	} {
		var statuses []string
		for _, sp := range spans {
			if sp.Name == name {
				statuses = append(statuses, sp.Status.Description)
			}
		}
		if !slices.Contains(statuses, want) {
			t.Errorf("span %q statuses %q, want one %q", name, statuses, want)
		}
	}
}

// spanTree renders spans as a tree of their names, two spaces a level,
// children in the order they started.
func spanTree(spans tracetest.SpanStubs) string {
	children := map[trace.SpanID][]tracetest.SpanStub{}
	ids := map[trace.SpanID]bool{}
	for _, sp := range spans {
		ids[sp.SpanContext.SpanID()] = true
	}
	var roots []tracetest.SpanStub
	for _, sp := range spans {
		if p := sp.Parent.SpanID(); sp.Parent.IsValid() && ids[p] {
			children[p] = append(children[p], sp)
		} else {
			roots = append(roots, sp)
		}
	}
	var b strings.Builder
	var walk func(level int, list []tracetest.SpanStub)
	walk = func(level int, list []tracetest.SpanStub) {
		slices.SortStableFunc(list, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
		for _, sp := range list {
			fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", level), sp.Name)
			walk(level+1, children[sp.SpanContext.SpanID()])
		}
	}
	walk(0, roots)
	return b.String()
}

// named returns the only span called name.
func named(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, sp := range spans {
		if sp.Name == name {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q in:\n%s", len(found), name, spanTree(spans))
	}
	return found[0]
}

// wantAttrs checks attributes of sp by their values as text.
func wantAttrs(t *testing.T, sp tracetest.SpanStub, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, a := range sp.Attributes {
		got[string(a.Key)] = a.Value.Emit()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("span %q: %s = %q, want %q (attributes %v)", sp.Name, k, got[k], v, got)
		}
	}
}

// spanText is everything a span would show a tracing backend, as JSON.
func spanText(sp tracetest.SpanStub) string {
	var attrs []attribute.KeyValue
	attrs = append(attrs, sp.Attributes...)
	for _, e := range sp.Events {
		attrs = append(attrs, e.Attributes...)
	}
	b, _ := json.Marshal(map[string]any{"name": sp.Name, "attributes": attrs, "events": sp.Events, "status": sp.Status, "links": sp.Links})
	return string(b)
}

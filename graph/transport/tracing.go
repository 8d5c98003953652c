package transport

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced gives each request to next a server span ("POST /query") when
// tp is set, continuing the trace of the W3C traceparent header a request
// carries. It is the outermost layer of the edge, so that the request log
// line can name the trace and the spans of the operation have it as their
// parent. A span records the method, route, path (never the query string,
// which can hold a document and its variables), status, sizes and the
// client's address and user agent, never a header.
//
// Streams that live for hours get no span — a WebSocket connection, an SSE
// request — since a span ends only with its stream: each response they
// carry starts a trace of its own. An export, which ends, has one.
//
// Without tp, next is returned as it is: tracing off costs nothing.
func traced(tp trace.TracerProvider, next http.Handler) http.Handler {
	if tp == nil {
		return next
	}
	return otelhttp.NewHandler(next, "",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // /metrics is Prometheus's
		otelhttp.WithFilter(func(r *http.Request) bool { return !isWebSocketHandshake(r) && !isSSE(r) }))
}

// requestIDAttr is the span attribute of the request id, which the
// request log line and internal errors show.
const requestIDAttr = attribute.Key("http.request.id")

package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// traceFlush bounds sending the spans still buffered when the server
// stops. With shutdownGrace and shutdownCancel it keeps a stop within 5 s.
const traceFlush = time.Second

// newTracerProvider returns the tracer provider that the standard
// OpenTelemetry environment variables ask for, or nil when they leave
// tracing off, as they do unless OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER=otlp is set.
// OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true turn it off
// whatever else is set. Spans are sent with OTLP over HTTP, or gRPC when
// OTEL_EXPORTER_OTLP_PROTOCOL (or ..._TRACES_PROTOCOL) says grpc; the
// exporter and the SDK read the rest of their variables themselves
// (endpoint, headers, certificates, OTEL_TRACES_SAMPLER, OTEL_BSP_*,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES). Nothing is dialled here:
// the exporter connects when it first sends.
func newTracerProvider(ctx context.Context, getenv func(string) string) (*sdktrace.TracerProvider, string, error) {
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	endpoint := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch {
	case strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true"), exporter == "none", exporter == "" && !endpoint:
		return nil, "", nil
	case exporter != "" && exporter != "otlp":
		return nil, "", fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported: set otlp (the default with OTEL_EXPORTER_OTLP_ENDPOINT) or none", exporter)
	}
	protocol, name := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if protocol == "" {
		protocol, name = getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		protocol = "http/protobuf"
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, "", fmt.Errorf("%s: %q is not supported: set http/protobuf (the default) or grpc", name, protocol)
	}
	if err != nil {
		return nil, "", fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME overrides the default name.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName("referrals")), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, "", fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), protocol, nil
}

// flushTraces sends the spans still buffered and stops the exporter,
// within traceFlush; spans it could not deliver in time are lost, and said so.
func flushTraces(tp *sdktrace.TracerProvider, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), traceFlush)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		logger.Warn("spans not delivered at stop", "error", err)
	}
}

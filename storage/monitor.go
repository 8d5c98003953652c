package storage

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"referrals/storage/embedded/sqlplan"
)

// CommandMetrics returns a command monitor that counts every command the
// driver sends, by name, as mongodb_commands_total, and failures as
// mongodb_command_failures_total.
func CommandMetrics(reg prometheus.Registerer) *event.CommandMonitor {
	started := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mongodb_commands_total",
		Help: "MongoDB commands sent by the driver, by command name.",
	}, []string{"command"})
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mongodb_command_failures_total",
		Help: "MongoDB commands that failed, by command name.",
	}, []string{"command"})
	reg.MustRegister(started, failed)
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) { started.WithLabelValues(e.CommandName).Inc() },
		Failed:  func(_ context.Context, e *event.CommandFailedEvent) { failed.WithLabelValues(e.CommandName).Inc() },
	}
}

// tracerName names the instrumentation scope of the command spans.
const tracerName = "referrals/storage"

// commandSpans records each command the driver sends within a traced
// operation as a client span, child of the span in the operation's
// context (the resolver or loader that asked). Commands sent outside a
// trace (the change feed's reader, the expiry sweep, start-up) get none:
// they would each be a trace of their own, every few milliseconds.
//
// A span carries the command's name, database, collection and server,
// and a failure's error code, never the command or the reply: filters and
// documents hold customers' data, and a server's error message can quote
// it. The driver's own contrib module for this is not released for driver
// v2, hence this monitor.
type commandSpans struct {
	tracer trace.Tracer
	open   sync.Map // commandKey → trace.Span, from started to finished
}

// commandKey identifies a command between its started and finished events.
type commandKey struct {
	connection string
	request    int64
}

// traceCommands returns a monitor that records command spans with tp and
// passes every event on to next (when not nil).
func traceCommands(tp trace.TracerProvider, next *event.CommandMonitor) *event.CommandMonitor {
	c := &commandSpans{tracer: tp.Tracer(tracerName, trace.WithSchemaURL(semconv.SchemaURL))}
	if next == nil {
		next = &event.CommandMonitor{}
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			c.started(ctx, e)
			if next.Started != nil {
				next.Started(ctx, e)
			}
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			c.finished(e.CommandFinishedEvent, nil)
			if next.Succeeded != nil {
				next.Succeeded(ctx, e)
			}
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			c.finished(e.CommandFinishedEvent, e.Failure)
			if next.Failed != nil {
				next.Failed(ctx, e)
			}
		},
	}
}

func (c *commandSpans) started(ctx context.Context, e *event.CommandStartedEvent) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{semconv.DBSystemNameMongoDB, semconv.DBOperationName(e.CommandName), semconv.DBNamespace(e.DatabaseName)}
	name := e.CommandName
	if coll := commandCollection(e); coll != "" {
		name += " " + coll
		attrs = append(attrs, semconv.DBCollectionName(coll))
	}
	if host, port := serverAddress(e.ConnectionID); port > 0 {
		attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(port))
	} else if host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
	}
	_, span := c.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	c.open.Store(commandKey{e.ConnectionID, e.RequestID}, span)
}

func (c *commandSpans) finished(e event.CommandFinishedEvent, failure error) {
	s, ok := c.open.LoadAndDelete(commandKey{e.ConnectionID, e.RequestID})
	if !ok {
		return
	}
	span := s.(trace.Span)
	if failure != nil {
		if ns := mongo.ErrorCodes(failure); len(ns) > 0 {
			span.SetAttributes(semconv.DBResponseStatusCode(strconv.Itoa(ns[0])))
		}
		span.SetStatus(codes.Error, "command failed")
	}
	span.End()
}

// commandCollection is the collection a command names: the value of its
// first key for most commands, "collection" for getMore; "" when it names
// none (or the driver redacted the command).
func commandCollection(e *event.CommandStartedEvent) string {
	key := e.CommandName
	if key == "getMore" {
		key = "collection"
	}
	coll, _ := e.Command.Lookup(key).StringValueOK()
	return coll
}

// serverAddress reads the host and port from a driver connection id
// ("127.0.0.1:27017[-3]"), or the socket's path and 0 for a Unix socket
// ("/tmp/mongodb-27017.sock[-3]", as the embedded store is reached).
func serverAddress(connectionID string) (string, int) {
	addr := connectionID
	if i := strings.LastIndex(addr, "[-"); i >= 0 {
		addr = addr[:i]
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// traceSelection records a planned selection made within a traced
// request as a span, the SQL counterpart of a command's (commandSpans),
// and returns what ends it with the selection's error.
func (s *Store) traceSelection(ctx context.Context, collection, what string) func(error) {
	if s.opts.Tracing == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return func(error) {}
	}
	_, span := s.opts.Tracing.Tracer(tracerName, trace.WithSchemaURL(semconv.SchemaURL)).Start(ctx, "select "+collection,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(semconv.DBSystemNameSQLite,
			semconv.DBOperationName("select"), semconv.DBCollectionName(collection), selectionKey.String(what)))
	return func(err error) {
		switch {
		case errors.Is(err, sqlplan.ErrUnsupported):
			span.SetAttributes(fallbackKey.Bool(true))
		case err != nil:
			span.SetStatus(codes.Error, "selection failed")
		}
		span.End()
	}
}

// Attributes of a planned selection's span: what it selects ("by
// referral", "count") and whether it was left to FerretDB.
const (
	selectionKey = attribute.Key("referrals.planner.selection")
	fallbackKey  = attribute.Key("referrals.planner.fallback")
)

package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

type requestIDKey struct{}

// RequestID returns the id of the HTTP request running in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// withRequestID gives each request an id, taken from a sane X-Request-Id
// header (set by a proxy) or made up, echoes it in the response, and logs
// the request with it when it ends: method, path, status, duration, the
// token's subject and the operation names once known — never the token or
// the variables. A WebSocket connection is logged when it closes, with
// every operation it ran.
func withRequestID(logger *slog.Logger, next http.Handler) http.Handler {
	return withRequestLog(logger, slog.LevelInfo, next)
}

// withRequestLog is withRequestID logging at level.
func withRequestLog(logger *slog.Logger, level slog.Level, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		note := &requestNote{}
		ctx := context.WithValue(WithRequestID(r.Context(), id), requestNoteKey{}, note)
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.SetAttributes(requestIDAttr.String(id))
		}
		next.ServeHTTP(rec, r.WithContext(ctx))
		subject, operations := note.read()
		attrs := []slog.Attr{slog.String("request_id", id),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)), slog.String("subject", subject),
			slog.Any("operations", operations), slog.String("remote", r.RemoteAddr)}
		if sc := span.SpanContext(); sc.IsValid() {
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		}
		logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// requestNote collects, for the request log, who made a request and what
// it ran, from wherever that becomes known.
type requestNote struct {
	mu         sync.Mutex
	subject    string
	operations []string
}

type requestNoteKey struct{}

// maxNotedOperations bounds the operation names one request's log line
// lists (a WebSocket connection may run many).
const maxNotedOperations = 20

// maxNotedName bounds each operation name the log line lists, in bytes.
const maxNotedName = 100

func (n *requestNote) read() (string, []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subject, n.operations
}

// noteSubject records the token subject of the request running in ctx.
func noteSubject(ctx context.Context, subject string) {
	if n, ok := ctx.Value(requestNoteKey{}).(*requestNote); ok {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.subject = subject
	}
}

// NoteOperation records, for the request log, the name of an operation
// the request running in ctx runs ("" for an anonymous one); a name
// repeated at once (an export's pages) is recorded once.
func NoteOperation(ctx context.Context, name string) {
	n, ok := ctx.Value(requestNoteKey{}).(*requestNote)
	if !ok {
		return
	}
	if name == "" {
		name = "(anonymous)"
	}
	if len(name) > maxNotedName { // a name is as long as a document allows
		name = strings.ToValidUTF8(name[:maxNotedName], "") + "…"
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.operations) < maxNotedOperations && (len(n.operations) == 0 || n.operations[len(n.operations)-1] != name) {
		n.operations = append(n.operations, name)
	}
}

// statusRecorder remembers the status written. Unwrap lets
// http.ResponseController reach the connection for deadlines, flushing
// (SSE) and hijacking (WebSocket).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes flushes on for streaming transports that assert http.Flusher.
func (r *statusRecorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// Hijack hands the connection over for transports that assert http.Hijacker.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// limitBody caps the body of every request.
func limitBody(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

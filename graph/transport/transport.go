// Package transport is the HTTP edge of the GraphQL API: GraphQL over
// plain HTTP (GET and POST), Server-Sent Events and WebSocket on one path,
// bearer tokens and JWKS, the per-identity stream cap, CORS, body limits
// and deadlines, request ids, the requests' spans when tracing, and the one
// function that writes responses for requests that never reach GraphQL.
//
// It imports gqlgen's transports and executor, OpenTelemetry's HTTP
// instrumentation and the storage package's Caller and error codes, never
// the GraphQL layer (graph) or the driver: it serves whatever executor it
// is handed, so its tests need no store.
package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	coderws "github.com/coder/websocket"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	gqltransport "github.com/99designs/gqlgen/graphql/handler/transport"
	"go.opentelemetry.io/otel/trace"

	"referrals/storage"
)

// defaultKeepAlive is how often WebSocket and SSE connections are pinged,
// so proxies do not close quiet subscriptions.
const defaultKeepAlive = 10 * time.Second

// wsInitTimeout is how long a WebSocket may stay open without sending
// connection_init: an unauthenticated connection holds no stream slot, so
// it must not stay long.
const wsInitTimeout = 10 * time.Second

// Defaults of Options.
const (
	// DefaultMaxBodyBytes bounds a request body; real documents with their
	// variables are a few kilobytes.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxStreams is how many streams (WebSocket connections, SSE
	// requests and exports together) one identity may hold open at once.
	DefaultMaxStreams = 10
)

// Deadlines of reading a request and of answering a plain one: a client
// that sends or reads slowly cannot hold a connection for long. SSE
// requests are read within the same deadline and then live on keep-alives.
const (
	defaultReadTimeout  = 30 * time.Second
	requestWriteTimeout = 60 * time.Second
)

// Options configure the HTTP edge.
type Options struct {
	MaxBodyBytes int64 // DefaultMaxBodyBytes when 0
	// MaxStreams caps the streams one identity (token subject) holds open:
	// WebSocket connections, SSE requests, exports and imports count alike. DefaultMaxStreams
	// when 0. Open development mode has one identity and no cap.
	MaxStreams int
	// AllowedOrigins lists the browser origins ("https://app.example.com",
	// or "*") that may call the API and open WebSockets besides its own.
	AllowedOrigins []string
	// ReadTimeout bounds reading a request, its body included, for every
	// request but a WebSocket handshake; defaultReadTimeout when 0.
	ReadTimeout time.Duration
	// KeepAlive is how often streams are pinged: SSE with a comment, the
	// legacy graphql-ws protocol with "ka", graphql-transport-ws with
	// "ping" (a client that has not answered "pong" within two intervals
	// is cut off). defaultKeepAlive when 0.
	KeepAlive time.Duration
	Logger    *slog.Logger
	// Tracing, when set, gives each request a span (see traced) and the
	// request log line its trace id; nil adds nothing to a request.
	Tracing trace.TracerProvider
}

// Extensions are what the edge needs of the executor it serves, to be
// registered after every other extension: a WebSocket connection's cap
// on subscriptions, then the end of what a token started when it
// expires. The cap goes first (outermost), so that a subscription's slot
// is held until the transport has sent its last message, the token's
// expiry error included, not only until the token's deadline.
func Extensions() []graphql.HandlerExtension {
	return []graphql.HandlerExtension{subscriptionCap{}, tokenLifetime{}}
}

// New returns the GraphQL endpoint over exec. Authentication is decided
// once per request, before any transport sees it: a WebSocket handshake is
// handed to the WebSocket transport alone, which authenticates at
// connection_init; every other request needs a valid bearer token (in
// authenticated mode) and is served by the SSE or plain HTTP transport.
// exec must carry the edge's Extensions.
func New(exec *executor.Executor, auth *Auth, opts Options) *Handler {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = defaultReadTimeout
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = defaultKeepAlive
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxStreams == 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if auth.Open() {
		opts.MaxStreams = 0 // one identity, everyone's: no cap
	}
	patterns, anyOrigin := websocketOriginPatterns(opts.AllowedOrigins)
	closing, closeStreams := context.WithCancel(context.Background())
	e := &edge{
		allowedOrigins: opts.AllowedOrigins,
		readTimeout:    opts.ReadTimeout,
		keepAlive:      opts.KeepAlive,
		streams:        newStreamSlots(opts.MaxStreams),
		closing:        closing,
		exec:           exec,
		auth:           auth,
		logger:         opts.Logger,
		tracing:        opts.Tracing,
	}
	e.ws = gqltransport.Websocket{
		// gqlgen's keep-alive goes to the legacy protocol only; the
		// graphql-transport-ws protocol has its own ping and pong.
		KeepAlivePingInterval: opts.KeepAlive,
		PingPongInterval:      opts.KeepAlive,
		InitTimeout:           wsInitTimeout,
		InitFunc:              e.wsInit,
		CloseFunc:             e.wsClose,
		Implementation: sessionAcceptor{gqltransport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			OriginPatterns: patterns, InsecureSkipVerify: anyOrigin,
		}}},
	}
	return &Handler{
		Handler:      traced(opts.Tracing, withRequestID(opts.Logger, withCORS(opts.AllowedOrigins, limitBody(opts.MaxBodyBytes, e)))),
		closeStreams: closeStreams,
		edge:         e,
	}
}

// Handler is the GraphQL endpoint.
type Handler struct {
	http.Handler
	closeStreams context.CancelFunc
	edge         *edge
}

// Logged gives the requests of next (the server's other routes: the
// playground, probes, metrics) a request id and a line in the request log
// at level, as the API's.
func (h *Handler) Logged(level slog.Level, next http.Handler) http.Handler {
	return withRequestLog(h.edge.logger, level, next)
}

// Stream wraps a handler beside GraphQL whose response is a long stream
// (the export) so that it is served as an SSE request is: with a request
// id, a span when tracing, and the CORS policy of the GraphQL endpoint, by GET or HEAD (405
// otherwise), as the caller of its bearer token (401 UNAUTHENTICATED
// without a valid one), holding one of that identity's stream slots until
// it returns (429 STREAM_LIMIT when none is free), and ended by
// CloseStreams.
func (h *Handler) Stream(next http.Handler) http.Handler {
	return h.streamed(next, "ask for a stream with GET", http.MethodGet, http.MethodHead)
}

// Upload is Stream for a handler that reads a long request body as it
// answers (the import): served by POST alone. The body may take as long
// as it keeps coming: each read of it must be answered within the read
// timeout (Options.ReadTimeout), renewed at each read, so a body that
// stops for that long ends with os.ErrDeadlineExceeded. Its size is
// bounded by the handler alone.
func (h *Handler) Upload(next http.Handler) http.Handler {
	timeout := h.edge.readTimeout
	return h.streamed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &flowingBody{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: timeout}
		next.ServeHTTP(w, r)
	}), "send the file with POST", http.MethodPost)
}

// flowingBody is a request body whose every read must be answered within
// timeout (see Upload).
type flowingBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *flowingBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	return b.ReadCloser.Read(p)
}

// streamed serves next as Stream and Upload describe, by methods alone.
func (h *Handler) streamed(next http.Handler, hint string, methods ...string) http.Handler {
	e := h.edge
	allow := strings.Join(methods, ", ") + ", OPTIONS"
	return traced(e.tracing, withRequestID(e.logger, withCORS(e.allowedOrigins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			w.Header().Set("Allow", allow)
			dropUnreadBody(w)
			writeErrorStatus(w, http.StatusMethodNotAllowed, storage.CodeBadUserInput, hint)
			return
		}
		caller, err := e.auth.authenticate(r)
		if err != nil {
			dropBodyOf(w, r)
			writeUnauthenticated(w, err)
			return
		}
		release, err := e.streams.acquire(caller.Subject)
		if err != nil {
			dropBodyOf(w, r)
			writeError(w, storage.CodeStreamLimit, err.Error())
			return
		}
		defer release()
		r, end := e.stream(r.WithContext(withToken(r.Context(), caller)))
		defer end()
		next.ServeHTTP(w, r)
	}))))
}

// CloseStreams ends every open stream (SSE requests and WebSocket
// connections, whose handlers http.Server.Shutdown does not wait for or
// end) and every stream started afterwards. A server shutting down calls
// it (http.Server.RegisterOnShutdown) so that it can exit promptly.
func (h *Handler) CloseStreams() { h.closeStreams() }

// edge dispatches a request to its transport.
type edge struct {
	allowedOrigins []string
	readTimeout    time.Duration
	keepAlive      time.Duration
	streams        *streamSlots
	closing        context.Context // ended by CloseStreams
	exec           *executor.Executor
	auth           *Auth
	logger         *slog.Logger
	tracing        trace.TracerProvider // nil: no spans
	ws             gqltransport.Websocket
	plain          plainHTTP
}

func (e *edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer e.recoverPanic(w, r)
	r = r.WithContext(graphql.StartOperationTrace(r.Context()))
	if isWebSocketHandshake(r) {
		r, end := e.stream(r)
		defer end()
		e.ws.Do(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, &wsSession{})), e.exec)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		dropUnreadBody(w)
		writeErrorStatus(w, http.StatusMethodNotAllowed, storage.CodeBadUserInput, "send GraphQL requests with GET or POST")
		return
	}
	// Everything else is read within the read deadline, whatever its
	// response will be, and authenticated before any of it runs.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(e.readTimeout))
	caller, err := e.auth.authenticate(r)
	if err != nil {
		dropUnreadBody(w)
		writeUnauthenticated(w, err)
		return
	}
	r = r.WithContext(withToken(r.Context(), caller))
	if isSSE(r) {
		e.serveSSE(w, r, rc, caller)
		return
	}
	_ = rc.SetWriteDeadline(time.Now().Add(requestWriteTimeout))
	e.plain.Do(w, r, e.exec)
}

// serveSSE reads the whole body within the read deadline, takes one of the
// identity's stream slots, and streams with no deadline but keep-alives.
func (e *edge) serveSSE(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, caller token) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeBodyError(w, err)
		return
	}
	_ = rc.SetReadDeadline(time.Time{})
	release, err := e.streams.acquire(caller.Subject)
	if err != nil {
		writeError(w, storage.CodeStreamLimit, err.Error())
		return
	}
	defer release()
	r, end := e.stream(r)
	defer end()
	e.streamSSE(w, r, body)
}

// stream gives a streaming request a context that CloseStreams ends too.
func (e *edge) stream(r *http.Request) (*http.Request, func()) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(e.closing, func() { cancel(ErrShuttingDown) })
	return r.WithContext(ctx), func() { stop(); cancel(nil) }
}

// ErrShuttingDown is the cause (context.Cause) of a stream's context that
// CloseStreams ended, so that a stream can tell its client why it ends.
var ErrShuttingDown = errors.New("the server is shutting down")

// recoverPanic answers INTERNAL for a panic outside a resolver (resolver
// panics are the executor's), logged with its stack.
func (e *edge) recoverPanic(w http.ResponseWriter, r *http.Request) {
	if p := recover(); p != nil {
		e.logger.ErrorContext(r.Context(), "panic in the HTTP edge", "request_id", RequestID(r.Context()), "panic", p, "stack", string(debug.Stack()))
		writeError(w, storage.CodeInternal, "internal error (request id "+RequestID(r.Context())+")")
	}
}

// dropUnreadBody makes a refusal that did not read the request body close
// the connection after answering. Otherwise net/http would read what is
// left of the body first, to reuse the connection, and a client dribbling
// it would hold the answer back.
func dropUnreadBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
}

// dropBodyOf is dropUnreadBody for a refused request that has a body (an
// upload).
func dropBodyOf(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		dropUnreadBody(w)
	}
}

// isWebSocketHandshake reports whether r asks to become a WebSocket (RFC
// 6455 section 4.1): a GET with "Upgrade: websocket", "Connection:
// Upgrade", a Sec-WebSocket-Key and version 13. Any other request,
// whatever its Upgrade header says, is served as plain HTTP or SSE, and
// authenticated as such.
func isWebSocketHandshake(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		r.Header.Get("Sec-WebSocket-Key") != "" && r.Header.Get("Sec-WebSocket-Version") == "13"
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

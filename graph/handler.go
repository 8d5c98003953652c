package graph

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	coderws "github.com/coder/websocket"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// queryCacheSize is how many parsed and validated documents are kept;
// clients send few distinct documents, so this covers them all.
const queryCacheSize = 1000

// keepAlive is how often WebSocket and SSE connections are pinged, so
// proxies do not close quiet subscriptions.
const keepAlive = 10 * time.Second

// Error codes set outside storage: operations over a limit, and the
// automatic persisted query protocol's own code, which clients (Apollo,
// urql) wait for before they send the full document.
const (
	codeComplexityLimit        = "COMPLEXITY_LIMIT"
	codeForbidden              = "FORBIDDEN"
	codePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"
	apqCacheSize               = 1000
)

// Options configure the API: what one request may ask of the server, and
// which operations and browser origins it accepts.
type Options struct {
	MaxComplexity int   // see operationCost; DefaultMaxComplexity when 0
	MaxDepth      int   // DefaultMaxDepth when 0
	MaxBodyBytes  int64 // DefaultMaxBodyBytes when 0
	// NoIntrospection refuses __schema and __type with FORBIDDEN.
	NoIntrospection bool
	// Registered operations, sent by hash or in full; with PersistedOnly
	// nothing else runs.
	Manifest      Manifest
	PersistedOnly bool
	// AllowedOrigins lists the browser origins ("https://app.example.com",
	// or "*") that may call the API and open WebSockets besides its own.
	AllowedOrigins []string
}

// NewHandler returns the GraphQL endpoint: plain HTTP, Server-Sent Events
// and WebSocket (graphql-transport-ws and the legacy graphql-ws protocol)
// on one path, with per-response loaders, a query cache, operation limits,
// request ids, and errors presented with the codes of the API.
func NewHandler(store *storage.Store, broker *Broker, auth *Auth, logger *slog.Logger, metrics *Metrics, opts Options) http.Handler {
	if opts.MaxComplexity == 0 {
		opts.MaxComplexity = DefaultMaxComplexity
	}
	if opts.MaxDepth == 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{Store: store, Broker: broker}, Complexity: complexityCosts()}))
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: keepAlive})
	patterns, anyOrigin := websocketOriginPatterns(opts.AllowedOrigins)
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: keepAlive,
		InitFunc:              auth.initFunc,
		CloseFunc:             auth.closeFunc,
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			OriginPatterns: patterns, InsecureSkipVerify: anyOrigin,
		}},
	})
	srv.AddTransport(HTTPTransport{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	srv.Use(extension.Introspection{})
	if opts.NoIntrospection {
		srv.Use(introspectionGate{})
	}
	if opts.Manifest != nil || opts.PersistedOnly {
		srv.Use(registeredOperations{manifest: opts.Manifest, only: opts.PersistedOnly})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](apqCacheSize)})
	useOperationLimits(srv, opts)
	if metrics != nil {
		srv.Use(metrics)
	}
	// Loaders live per response: once for a query or mutation, once per
	// event of a subscription, whose connection may live for hours and must
	// not serve what it cached at the start.
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		return next(WithLoaders(ctx, NewLoaders(store)))
	})
	srv.SetErrorPresenter(presentError(logger))
	srv.SetRecoverFunc(recoverPanic(logger))
	return withRequestID(logger, withCORS(opts.AllowedOrigins, limitRequest(opts.MaxBodyBytes, auth.middleware(srv))))
}

type requestIDKey struct{}

// RequestID returns the id of the HTTP request running in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives each request an id, taken from a sane X-Request-Id
// header (set by a proxy) or made up, echoes it in the response, and logs
// the request with it when it ends.
func withRequestID(logger *slog.Logger, next http.Handler) http.Handler {
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
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id),
			slog.String("method", r.Method), slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}

// statusRecorder remembers the status written. Unwrap lets
// http.ResponseController reach the connection for flushing (SSE) and
// hijacking (WebSocket).
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

// presentError gives every error one of the API's codes. Errors whose cause
// is known keep their message; anything else is logged with the request id
// and shown only as "internal error", so no driver text reaches a client.
func presentError(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var known *storage.Error
		switch {
		case errors.As(err, &known):
			gqlErr.Message = known.Message
			if arg := argumentPath(ctx, gqlErr.Path); arg != "" {
				gqlErr.Message = arg + ": " + known.Message
			}
			setCode(gqlErr, known.Code)
		case gqlErr.Extensions["code"] == codeComplexityLimit || gqlErr.Extensions["code"] == codeForbidden ||
			gqlErr.Extensions["code"] == codePersistedQueryNotFound:
			// set by our extensions, or required by a client protocol
		case gqlErr.Extensions["code"] != nil:
			// gqlgen's own parse, validation and variable errors: the
			// client's request is at fault and the message says how.
			if len(gqlErr.Path) > 1 && gqlErr.Path[0] == ast.PathName("variable") {
				gqlErr.Message = "$" + gqlErr.Path[1:].String() + ": " + gqlErr.Message
			}
			setCode(gqlErr, storage.CodeBadUserInput)
		default:
			id := RequestID(ctx)
			logger.ErrorContext(ctx, "internal error", "request_id", id, "path", gqlErr.Path.String(), "error", err)
			gqlErr.Message = fmt.Sprintf("internal error (request id %s)", id)
			gqlErr.Extensions = nil
			setCode(gqlErr, storage.CodeInternal)
		}
		return gqlErr
	}
}

// argumentPath names the argument an input error is about ("filter.dealValue.min"):
// gqlgen reports such errors at the field's path followed by the argument's.
// It returns "" for errors of the field itself.
func argumentPath(ctx context.Context, p ast.Path) string {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return ""
	}
	n := len(fc.Path())
	if len(p) <= n {
		return ""
	}
	return p[n:].String()
}

func setCode(e *gqlerror.Error, code storage.ErrorCode) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = string(code)
}

// recoverPanic turns a panic in a resolver into an internal error, logged
// with its stack; the process keeps serving.
func recoverPanic(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in resolver", "request_id", RequestID(ctx), "panic", p, "stack", string(debug.Stack()))
		return errors.New("panic in resolver") // presented as internal
	}
}

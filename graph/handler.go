package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/trace"

	"referrals/graph/transport"
	"referrals/live"
	"referrals/storage"
)

// queryCacheSize is how many parsed and validated documents are kept;
// clients send few distinct documents, so this covers them all.
const queryCacheSize = 1000

// Options configure the GraphQL layer: what one operation may ask of the
// server, and which operations it accepts.
type Options struct {
	MaxComplexity int // see operationCost; DefaultMaxComplexity when 0
	MaxDepth      int // DefaultMaxDepth when 0
	// NoIntrospection refuses __schema and __type with FORBIDDEN.
	NoIntrospection bool
	// Registered operations, sent by hash or in full; with PersistedOnly
	// nothing else runs.
	Manifest      Manifest
	PersistedOnly bool
	// Tracing, when set, records the spans of operations, of the fields
	// that call the store and of loaders' batch reads (see tracing); nil
	// records none and adds nothing to an operation.
	Tracing trace.TracerProvider
	// RunTimeout bounds each response's execution (a query's or a
	// mutation's, each event of a subscription); DefaultRunTimeout when 0.
	RunTimeout time.Duration
	// Hooks and Deliverer serve the webhook fields; without them those
	// fields answer that webhooks are not served.
	Hooks     WebhookStore
	Deliverer Deliverer
}

// NewExecutor returns the GraphQL executor of the API: resolvers over
// store and broker, per-response loaders, a query cache, operation limits,
// persisted operations, errors presented with the codes of the API, and
// spans when opts.Tracing is set.
// The HTTP edge (package transport) serves it.
func NewExecutor(store Store, broker *live.Broker, logger *slog.Logger, metrics *Metrics, opts Options) *executor.Executor {
	if opts.MaxComplexity == 0 {
		opts.MaxComplexity = DefaultMaxComplexity
	}
	if opts.MaxDepth == 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.RunTimeout == 0 {
		opts.RunTimeout = DefaultRunTimeout
	}
	exec := executor.New(NewExecutableSchema(Config{Resolvers: &Resolver{Store: store, Broker: broker, Hooks: opts.Hooks, Deliverer: opts.Deliverer}, Complexity: complexityCosts()}))
	exec.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	if opts.Tracing != nil {
		exec.Use(newTracing(opts.Tracing)) // first: its span holds every other extension's work
	}
	exec.Use(&exactEnums{})
	exec.Use(extension.Introspection{})
	if opts.NoIntrospection {
		exec.Use(introspectionGate{})
	}
	if opts.Manifest != nil || opts.PersistedOnly {
		exec.Use(registeredOperations{manifest: opts.Manifest, only: opts.PersistedOnly})
	}
	exec.Use(automaticPersistedQueries())
	exec.Use(subscriptionEvents{})
	useOperationLimits(exec, opts.MaxComplexity, opts.MaxDepth, opts.NoIntrospection)
	if metrics != nil {
		exec.Use(metrics)
	}
	// Loaders live per response: once for a query or mutation, once per
	// event of a subscription, whose connection may live for hours and must
	// not serve what it cached at the start.
	exec.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		// The statistics of one response share one bound of groups, so
		// that aliases cannot multiply it.
		ctx, cancel := context.WithTimeoutCause(ctx, opts.RunTimeout, errRunTimeout)
		defer cancel()
		return next(storage.WithStatsBudget(withLoaders(ctx, newLoaders(store))))
	})
	exec.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		oc := graphql.GetOperationContext(ctx)
		name := oc.OperationName
		if oc.Operation != nil {
			name = oc.Operation.Name
		}
		transport.NoteOperation(ctx, name)
		return next(ctx)
	})
	exec.SetErrorPresenter(presentError(logger))
	exec.SetRecoverFunc(recoverPanic(logger))
	for _, x := range transport.Extensions() { // last: the HTTP edge's
		exec.Use(x)
	}
	return exec
}

// DefaultRunTimeout bounds how long one response is computed: a query
// running past it is stopped and answered with COMPLEXITY_LIMIT within
// the HTTP edge's 60 s write deadline, rather than computed on past it for
// a client that then gets an empty reply (four heavy requests at once
// took 108 s that way).
const DefaultRunTimeout = 50 * time.Second

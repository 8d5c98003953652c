// Command referrals serves Partner Center style sales referrals from
// MongoDB as a GraphQL API, with GraphiQL at / for exploring it.
//
// With no MongoDB URI it starts an embedded FerretDB (SQLite files under
// --data-dir) and fills it with demo referrals, so `go run .` is enough.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/term"

	"referrals/graph"
	"referrals/graph/export"
	"referrals/graph/playground"
	"referrals/graph/transport"
	"referrals/live"
	"referrals/storage"
	"referrals/storage/demo"
	"referrals/storage/embedded"
	"referrals/webhooks"
)

// demoSeed fixes the demo data: every fresh store gets the same referrals.
const demoSeed = 2026

// A stopping server ends streams at once, gives requests in flight
// shutdownGrace to finish, then cancels them (a query stops at its next
// read of the store) and closes their connections within shutdownCancel,
// and sends the spans it still holds within traceFlush (when tracing):
// it exits within 5 s whatever a client is doing (an export to a reader
// that stopped reading included), as orchestrators expect.
const (
	shutdownGrace  = 3 * time.Second
	shutdownCancel = time.Second
)

func main() {
	// The server's live heap is small and it allocates fast while it
	// reads: at Go's default GOGC=100 a JSON Lines export of 100,000
	// referrals spent a fifth of its CPU collecting garbage, and took
	// 26.9–28.5 s against 20.1–23.6 s at 200 (README). GOGC set in the
	// environment is left as it is.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	if len(os.Args) > 1 && os.Args[1] == "token" {
		os.Exit(tokenStatus(tokenCommand(os.Args[2:], os.Getenv, os.Stdout), os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "import" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		status := importCommand(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
		stop()
		os.Exit(status)
	}
	os.Exit(serve(nil))
}

// serverGCPercent is the server's GOGC unless the environment sets one.
const serverGCPercent = 200

// listening says where a started server can be reached.
type listening struct {
	API net.Addr
	// EmbeddedURI is the MongoDB URI of the embedded store's TCP listener
	// (--embedded-listen), or "" when it is not exposed.
	EmbeddedURI string
}

// serve runs the server with the process's arguments and environment
// until SIGINT or SIGTERM, and returns the exit status. serving, when not
// nil, is told where the server listens once it does.
func serve(serving func(listening)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &logLevel}))
	// The exporter reports what it could not send through OpenTelemetry's
	// one process-wide handler.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("tracing", "error", err) }))
	started := false
	err := run(ctx, os.Args[1:], os.Getenv, logger, func(l listening) {
		started = true
		if serving != nil {
			serving(l)
		}
	})
	switch {
	case errors.Is(err, flag.ErrHelp):
		// the usage has been printed
	case err != nil && !started:
		logger.Error("server did not start", "error", err)
		return 1
	case err != nil:
		logger.Error("server stopped", "error", err)
		return 1
	}
	return 0
}

// logLevel is the level of the server's log (--log-level), set by run.
var logLevel slog.LevelVar

// run serves until ctx is cancelled, then shuts down gracefully. Once it
// listens, it tells serving (when not nil) where. Flags are checked and
// the address bound before any store is touched: a bad flag or a taken
// port writes nothing.
func run(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger, serving func(listening)) error {
	cfg, err := parseConfig(args, getenv)
	if err != nil {
		return err
	}
	logLevel.Set(cfg.logLevel)
	tracing, flush, err := startTracing(ctx, getenv, logger)
	if err != nil {
		return err
	}
	defer flush() // last: after the requests and the store are done
	cfg.api.Tracing, cfg.edge.Tracing = tracing, tracing
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", cfg.addr, err)
	}
	defer ln.Close() // Serve closes it too; this covers a failed start
	if cfg.manifestPath != "" {
		if cfg.api.Manifest, err = graph.LoadManifest(cfg.manifestPath); err != nil {
			return err
		}
	}
	auth, err := transport.NewAuth(ctx, cfg.auth)
	if err != nil {
		return err
	}
	if auth.Open() {
		logger.Warn("no authentication configured (--jwt-secret or --jwks-url): open development mode, every caller is an admin")
	}
	reg := newRegistry()
	store, exposedURI, closeStore, err := connectStore(ctx, cfg, logger, reg, tracing)
	if err != nil {
		return err
	}
	defer closeStore()

	// The feed reader, the expiry sweep and the deliverer stop as soon as
	// the server is told to, before it waits for requests in flight, and
	// are waited for before the store closes.
	var background sync.WaitGroup
	backgroundCtx, stopBackground := context.WithCancel(ctx)
	defer func() { stopBackground(); background.Wait() }()
	exec := startLive(backgroundCtx, &background, &cfg, store, logger, reg)

	cfg.edge.Logger = logger // requests, and panics at the HTTP edge
	api := transport.New(exec, auth, cfg.edge)
	page, err := playground.Handler(playground.Options{Endpoint: "/query", TokensRequired: !auth.Open(),
		Introspection: !cfg.api.NoIntrospection && !cfg.api.PersistedOnly, PersistedOnly: cfg.api.PersistedOnly})
	if err != nil {
		return err
	}
	handler := routes(api, export.New(exec, logger), newImporter(store, logger, cfg.maxImport), page, store, auth, logger, reg)
	return serveHTTP(ctx, ln, handler, api.CloseStreams, logger, func() {
		if serving != nil {
			serving(listening{API: ln.Addr(), EmbeddedURI: exposedURI})
		}
	})
}

// startTracing starts the span exporter the environment asks for (none
// when it asks for none: tracing is then nil, not a nil provider) and
// returns what flushes it.
func startTracing(ctx context.Context, getenv func(string) string, logger *slog.Logger) (tracing trace.TracerProvider, flush func(), err error) {
	tp, protocol, err := newTracerProvider(ctx, getenv)
	if err != nil || tp == nil {
		return nil, func() {}, err
	}
	logger.Info("tracing: spans exported with OTLP", "protocol", protocol)
	return tp, func() { flushTraces(tp, logger) }, nil
}

// newRegistry returns the Prometheus registry of /metrics with the
// process's own collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "embedded_planner_fallbacks_total",
		Help: "Selections the embedded store's read planner could not translate and left to FerretDB, which reads the whole collection for them; no query the API sends does.",
	}, func() float64 { return float64(embedded.Fallbacks()) }))
	return reg
}

// connectStore connects to MongoDB, or starts the embedded store when no
// URI is configured, then prepares the collections and seeds demo data
// into an empty store. closeStore closes the connection, then stops the
// embedded store; exposedURI is where the embedded store listens on TCP,
// when it was asked to.
func connectStore(ctx context.Context, cfg config, logger *slog.Logger, reg *prometheus.Registry, tracing trace.TracerProvider) (store *storage.Store, exposedURI string, closeStore func(), err error) {
	uri := cfg.mongoURI
	var local *embedded.Server
	closeStore = func() {}
	if uri == "" {
		if local, err = embedded.Start(cfg.dataDir, cfg.embeddedListen, logger); err != nil {
			return nil, "", nil, err
		}
		closeStore = local.Stop
		uri, exposedURI = local.URI(), local.ExposedURI()
		if exposedURI != "" {
			logger.Warn("embedded store started, exposed without authentication", "data_dir", cfg.dataDir, "uri", exposedURI)
		} else {
			logger.Info("embedded store started", "data_dir", cfg.dataDir)
		}
	} else {
		logger.Info("connecting to MongoDB", "uri", storage.RedactURI(uri), "timeout", cfg.mongoTimeout)
	}
	store, err = storage.Connect(ctx, storage.Options{URI: uri, Database: cfg.database, Monitor: storage.CommandMetrics(reg), Tracing: tracing,
		Logger: logger, Embedded: local, ConnectTimeout: cfg.mongoTimeout})
	if err != nil {
		closeStore()
		return nil, "", nil, err
	}
	stopEmbedded := closeStore
	closeStore = func() { _ = store.Close(context.Background()); stopEmbedded() }
	if err := store.Prepare(ctx); err != nil {
		closeStore()
		return nil, "", nil, err
	}
	if seeded, err := demo.Seed(ctx, store, demoSeed, cfg.demo); err != nil {
		closeStore()
		return nil, "", nil, err
	} else if seeded {
		logger.Info("demo referrals generated", "count", cfg.demo)
	}
	logger.Info("store indexes", "pushdown", store.Pushdown())
	if local != nil {
		warnIfOutgrown(ctx, store, logger)
	}
	return store, exposedURI, closeStore, nil
}

// startLive starts, in background until ctx ends, what follows the change
// feed (the broker of subscriptions and the webhook deliverer) and the
// invitation expiry sweep, and returns the GraphQL executor over them.
func startLive(ctx context.Context, background *sync.WaitGroup, cfg *config, store *storage.Store, logger *slog.Logger, reg *prometheus.Registry) *executor.Executor {
	logger.Info("change feed", "mechanism", store.ChangeFeed())
	broker := live.NewBroker(store, logger, live.Options{})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "graphql_subscriptions",
		Help: "Live subscriptions this process serves.",
	}, func() float64 { return float64(broker.Subscribers()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "graphql_subscription_catchups_waiting",
		Help: "Resuming subscriptions waiting for their token subject's budget to read more missed changes.",
	}, func() float64 { return float64(broker.CatchUpsWaiting()) }))
	background.Go(func() {
		if err := broker.Run(ctx); err != nil {
			logger.Error("change feed stopped", "error", err)
		}
	})
	background.Go(func() { store.SweepExpiredInvitations(ctx) })

	// Deliveries' bodies are rendered by the executor, whose resolvers
	// manage webhooks through the deliverer: the renderer learns the
	// executor once it exists.
	renderer := &graph.EventRenderer{IDs: store.EventIDs()}
	cfg.webhooks.Logger, cfg.webhooks.Registerer = logger, reg
	if cfg.webhooks.Egress.AllowPrivate {
		logger.Warn("--webhook-allow-private: webhooks may be delivered over http and to loopback, private and link-local addresses, including this host's own services; use it for development and tests only")
	}
	deliverer := webhooks.New(store, renderer, cfg.webhooks)
	cfg.api.Hooks, cfg.api.Deliverer = store, deliverer
	exec := graph.NewExecutor(store, broker, logger, graph.NewMetrics(reg), cfg.api)
	renderer.Exec = exec
	broker.OnChange(deliverer.Kick)
	background.Go(func() {
		if err := deliverer.Run(ctx); err != nil {
			logger.Error("webhook deliveries stopped", "error", err)
		}
	})
	return exec
}

// serveHTTP serves handler on ln until ctx ends, telling listening once it
// serves, then shuts down: requests in flight get shutdownGrace to finish,
// then are cancelled, and closeStreams ends streams and WebSocket
// connections as shutdown starts (Shutdown neither ends nor waits for
// them).
func serveHTTP(ctx context.Context, ln net.Listener, handler http.Handler, closeStreams func(), logger *slog.Logger, listening func()) error {
	requests, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return requests },
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn), // net/http's own complaints, in our log
		IdleTimeout:       2 * time.Minute,
	}
	srv.RegisterOnShutdown(closeStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "graphiql", "http://"+displayAddr(ln.Addr())+"/")
	listening()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	graceCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(graceCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("requests still in flight after the grace period: cancelling them", "grace", shutdownGrace)
		cancelRequests()
		cancelCtx, cancel := context.WithTimeout(context.Background(), shutdownCancel)
		defer cancel()
		if err = srv.Shutdown(cancelCtx); errors.Is(err, context.DeadlineExceeded) {
			err = srv.Close() // a handler blocked writing to a client that does not read
		}
	}
	return err
}

// embeddedComfortLimit is the largest number of referrals the embedded
// store has been measured to serve with its read planner (README, "The
// embedded store at size"). A variable so that a test can reach it with a
// small store.
var embeddedComfortLimit int64 = 100_000

// warnIfOutgrown logs, once at start, that the embedded store holds more
// referrals than it was measured with, and how to move to MongoDB.
func warnIfOutgrown(ctx context.Context, store *storage.Store, logger *slog.Logger) {
	n, err := store.EstimatedReferrals(ctx)
	if err != nil {
		logger.Warn("count referrals", "error", err)
		return
	}
	if n > embeddedComfortLimit {
		logger.Warn("the embedded store holds more referrals than it was measured with; "+
			"to grow further, point the server at MongoDB with --mongodb-uri or MONGODB_URI",
			"referrals", n, "measured_up_to", embeddedComfortLimit)
	}
}

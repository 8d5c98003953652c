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
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/term"

	"referrals/graph"
	"referrals/graph/export"
	"referrals/graph/importer"
	"referrals/graph/playground"
	"referrals/graph/transport"
	"referrals/storage"
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

// expirySweepInterval is how often invitations past their expiration are
// recorded as expired; until then they already read as EXPIRED.
const expirySweepInterval = time.Minute

// config is the runtime contract of the server (flags override environment).
type config struct {
	addr           string
	logLevel       slog.Level
	mongoTimeout   time.Duration
	mongoURI       string
	database       string
	dataDir        string
	embeddedListen string
	demo           int // < 0: 200 when embedded, 0 otherwise
	api            graph.Options
	edge           transport.Options
	auth           transport.AuthOptions
	manifestPath   string
	maxImport      int64 // bytes of one import's body
	webhooks       webhooks.Options
}

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
		if err := tokenCommand(os.Args[2:], os.Getenv, os.Stdout); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, err)
			}
			os.Exit(2)
		}
		return
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

// envNames maps each flag to the environment variable that sets it when
// the command line does not.
var envNames = map[string]string{
	"addr": "ADDR", "log-level": "LOG_LEVEL", "mongodb-uri": "MONGODB_URI", "mongodb-timeout": "MONGODB_TIMEOUT", "db": "MONGODB_DB", "data-dir": "DATA_DIR",
	"embedded-listen": "EMBEDDED_LISTEN", "demo": "DEMO_REFERRALS",
	"max-complexity": "MAX_COMPLEXITY", "max-depth": "MAX_DEPTH", "max-body-bytes": "MAX_BODY_BYTES", "max-import-bytes": "MAX_IMPORT_BYTES",
	"allowed-origins": "ALLOWED_ORIGINS", "introspection": "INTROSPECTION",
	"jwt-secret": "JWT_SECRET", "jwks-url": "JWKS_URL", "jwt-issuer": "JWT_ISSUER", "jwt-audience": "JWT_AUDIENCE",
	"max-streams-per-token": "MAX_STREAMS_PER_TOKEN", "persisted-queries": "PERSISTED_QUERIES", "persisted-only": "PERSISTED_ONLY",
	"webhook-timeout": "WEBHOOK_TIMEOUT", "webhook-retry-schedule": "WEBHOOK_RETRY_SCHEDULE",
	"webhook-disable-after": "WEBHOOK_DISABLE_AFTER", "webhook-allow-private": "WEBHOOK_ALLOW_PRIVATE",
}

// newFlags defines the flags that set c, each naming its environment
// variable, and returns them with the two read after parsing.
func newFlags(c *config) (fs *flag.FlagSet, origins, introspection *string) {
	fs = flag.NewFlagSet("referrals", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", ":8080", "listen address")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "least level logged: debug, info, warn or error")
	fs.StringVar(&c.mongoURI, "mongodb-uri", "", "MongoDB URI; empty starts the embedded store")
	fs.DurationVar(&c.mongoTimeout, "mongodb-timeout", defaultMongoTimeout, "how long to wait at start for MongoDB (--mongodb-uri) to answer")
	fs.StringVar(&c.database, "db", "referrals", "database name")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "embedded store directory")
	fs.StringVar(&c.embeddedListen, "embedded-listen", "", "also expose the embedded store on this MongoDB address, e.g. 127.0.0.1:27017")
	fs.Var((*demoCount)(&c.demo), "demo", "demo referrals to generate into an empty store (default 200 with the embedded store, 0 with --mongodb-uri)")
	fs.IntVar(&c.api.MaxComplexity, "max-complexity", graph.DefaultMaxComplexity, "largest operation cost accepted; connections cost their page size times their fields")
	fs.IntVar(&c.api.MaxDepth, "max-depth", graph.DefaultMaxDepth, "deepest field nesting accepted")
	fs.Int64Var(&c.edge.MaxBodyBytes, "max-body-bytes", transport.DefaultMaxBodyBytes, "largest request body accepted; larger ones get 413")
	fs.Int64Var(&c.maxImport, "max-import-bytes", importer.DefaultLimits.MaxBytes, "largest file POST /import/referrals accepts; a larger declared length gets 413")
	origins = fs.String("allowed-origins", "", "comma-separated browser origins allowed to call the API besides its own, e.g. https://app.example.com, or *")
	introspection = fs.String("introspection", "", "true or false: allow schema introspection (__schema, __type); default true without authentication, false with it")
	fs.StringVar(&c.auth.Secret, "jwt-secret", "", "verify bearer tokens signed with this HS256 secret")
	fs.StringVar(&c.auth.JWKSURL, "jwks-url", "", "verify bearer tokens with the keys at this JWKS URL, e.g. an OIDC provider's")
	fs.StringVar(&c.auth.Issuer, "jwt-issuer", "", "require this iss claim")
	fs.StringVar(&c.auth.Audience, "jwt-audience", "", "require this aud claim")
	fs.IntVar(&c.edge.MaxStreams, "max-streams-per-token", transport.DefaultMaxStreams, "streams (WebSocket connections and SSE requests together) one token subject may hold open")
	fs.StringVar(&c.manifestPath, "persisted-queries", "", "JSON file of registered operations: an array of documents, or documents by SHA-256")
	fs.BoolVar(&c.api.PersistedOnly, "persisted-only", false, "run only the operations of --persisted-queries")
	fs.DurationVar(&c.webhooks.Timeout, "webhook-timeout", 10*time.Second, "how long one webhook attempt may take before it counts as failed")
	fs.Var((*schedule)(&c.webhooks.Schedule), "webhook-retry-schedule", "comma-separated delays before each webhook attempt (Go durations), e.g. 0s,5s,5m (default 0s,5s,5m,30m,2h,5h,10h,10h)")
	fs.DurationVar(&c.webhooks.DisableAfter, "webhook-disable-after", 5*24*time.Hour, "disable a webhook whose attempts have all failed for this long")
	fs.BoolVar(&c.webhooks.Egress.AllowPrivate, "webhook-allow-private", false, "allow http webhook URLs and private, loopback and link-local addresses (development and tests only)")
	fs.VisitAll(func(f *flag.Flag) {
		env, ok := envNames[f.Name]
		if !ok {
			panic("flag --" + f.Name + " has no environment variable in envNames")
		}
		f.Usage += " (env " + env + ")"
	})
	return fs, origins, introspection
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	c := config{demo: -1}
	fs, origins, introspection := newFlags(&c)
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, env := range envNames {
		if v := getenv(env); v != "" && !given[name] {
			if err := fs.Set(name, v); err != nil {
				return config{}, fmt.Errorf("%s: %q: %w", env, v, err)
			}
		}
	}
	if c.api.PersistedOnly && c.manifestPath == "" {
		return config{}, fmt.Errorf("--persisted-only needs --persisted-queries")
	}
	authenticated := c.auth.Secret != "" || c.auth.JWKSURL != ""
	switch *introspection {
	case "":
		c.api.NoIntrospection = authenticated
	case "true", "false":
		c.api.NoIntrospection = *introspection == "false"
	default:
		return config{}, fmt.Errorf("--introspection: %q is neither true nor false", *introspection)
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.edge.AllowedOrigins = append(c.edge.AllowedOrigins, o)
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max-complexity", int64(c.api.MaxComplexity)}, {"max-depth", int64(c.api.MaxDepth)},
		{"max-body-bytes", c.edge.MaxBodyBytes}, {"max-streams-per-token", int64(c.edge.MaxStreams)},
		{"max-import-bytes", c.maxImport},
		{"mongodb-timeout", int64(c.mongoTimeout)},
		{"webhook-timeout", int64(c.webhooks.Timeout)}, {"webhook-disable-after", int64(c.webhooks.DisableAfter)},
	} {
		if f.v < 1 {
			return config{}, fmt.Errorf("--%s (%s) must be positive, got %s", f.name, envNames[f.name], fs.Lookup(f.name).Value)
		}
	}
	if c.webhooks.Timeout > time.Minute {
		return config{}, fmt.Errorf("--webhook-timeout (WEBHOOK_TIMEOUT) is at most 1m (an attempt holds a connection that long), got %s", c.webhooks.Timeout)
	}
	if c.demo < 0 {
		c.demo = 0
		if c.mongoURI == "" {
			c.demo = 200
		}
	}
	return c, nil
}

// logLevel is the level of the server's log (--log-level), set by run.
var logLevel slog.LevelVar

// defaultMongoTimeout is how long a start waits for MongoDB to answer.
const defaultMongoTimeout = 10 * time.Second

// demoCount is the --demo flag: unset (-1) means the default for the
// store, which --help says in words.
// schedule is --webhook-retry-schedule: delays, comma-separated.
type schedule []time.Duration

func (s *schedule) String() string {
	if s == nil || *s == nil {
		return ""
	}
	parts := make([]string, len(*s))
	for i, d := range *s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func (s *schedule) Set(v string) error {
	var out []time.Duration
	for _, p := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a delay (a Go duration such as 0s, 5s or 30m)", strings.TrimSpace(p))
		}
		if d > 7*24*time.Hour {
			return fmt.Errorf("%q: a delay is at most 168h (7 days)", strings.TrimSpace(p))
		}
		out = append(out, d)
	}
	if len(out) > 20 {
		return fmt.Errorf("at most 20 attempts, got %d", len(out))
	}
	*s = out
	return nil
}

type demoCount int

// String is "" unset (-1) and for the flag package's zero value alike, so
// that --help shows the default its usage states, not "(default )".
func (d *demoCount) String() string {
	if d == nil || *d <= 0 {
		return ""
	}
	return strconv.Itoa(int(*d))
}

func (d *demoCount) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("not a number of referrals (0 or more)")
	}
	*d = demoCount(n)
	return nil
}

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
	tp, protocol, err := newTracerProvider(ctx, getenv)
	if err != nil {
		return err
	}
	var tracing trace.TracerProvider // stays nil, not a nil *TracerProvider, when off
	if tp != nil {
		defer flushTraces(tp, logger) // last: after the requests and the store are done
		tracing = tp
		logger.Info("tracing: spans exported with OTLP", "protocol", protocol)
	}
	cfg.api.Tracing, cfg.edge.Tracing = tracing, tracing
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", cfg.addr, err)
	}
	defer ln.Close() // Serve closes it too; this covers a failed start
	uri, exposedURI := cfg.mongoURI, ""
	var embedded *storage.Embedded
	if uri == "" {
		embedded, err = storage.StartEmbedded(cfg.dataDir, cfg.embeddedListen, logger)
		if err != nil {
			return err
		}
		defer embedded.Stop()
		uri, exposedURI = embedded.URI(), embedded.ExposedURI()
		if exposedURI != "" {
			logger.Warn("embedded store started, exposed without authentication", "data_dir", cfg.dataDir, "uri", exposedURI)
		} else {
			logger.Info("embedded store started", "data_dir", cfg.dataDir)
		}
	}

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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "embedded_planner_fallbacks_total",
		Help: "Selections the embedded store's read planner could not translate and left to FerretDB, which reads the whole collection for them; no query the API sends does.",
	}, func() float64 { return float64(storage.PlannerFallbacks()) }))
	if embedded == nil {
		logger.Info("connecting to MongoDB", "uri", storage.RedactURI(uri), "timeout", cfg.mongoTimeout)
	}
	store, err := storage.Connect(ctx, storage.Options{URI: uri, Database: cfg.database, Monitor: storage.CommandMetrics(reg), Tracing: tracing,
		Logger: logger, Embedded: embedded, ConnectTimeout: cfg.mongoTimeout})
	if err != nil {
		return err
	}
	defer func() { _ = store.Close(context.Background()) }()
	if err := store.Prepare(ctx); err != nil {
		return err
	}
	if seeded, err := store.SeedDemo(ctx, demoSeed, cfg.demo); err != nil {
		return err
	} else if seeded {
		logger.Info("demo referrals generated", "count", cfg.demo)
	}
	logger.Info("store indexes", "pushdown", store.Pushdown())
	if embedded != nil {
		warnIfOutgrown(ctx, store, logger)
	}

	logger.Info("change feed", "mechanism", store.ChangeFeed())
	broker := graph.NewBroker(store, logger)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "graphql_subscriptions",
		Help: "Live subscriptions this process serves.",
	}, func() float64 { return float64(broker.Subscribers()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "graphql_subscription_catchups_waiting",
		Help: "Resuming subscriptions waiting for their token subject's budget to read more missed changes.",
	}, func() float64 { return float64(broker.CatchUpsWaiting()) }))
	// The feed reader and the expiry sweep stop as soon as the server is
	// told to, before it waits for requests in flight, and are waited for
	// before the store closes.
	var background sync.WaitGroup
	backgroundCtx, stopBackground := context.WithCancel(ctx)
	defer func() { stopBackground(); background.Wait() }()
	background.Go(func() {
		if err := broker.Run(backgroundCtx); err != nil {
			logger.Error("change feed stopped", "error", err)
		}
	})
	background.Go(func() { sweepExpiredInvitations(backgroundCtx, store, logger) })

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
		if err := deliverer.Run(backgroundCtx); err != nil {
			logger.Error("webhook deliveries stopped", "error", err)
		}
	})
	cfg.edge.Logger = logger // requests, and panics at the HTTP edge
	api := transport.New(exec, auth, cfg.edge)
	page, err := playground.Handler(playground.Options{Endpoint: "/query", TokensRequired: !auth.Open(),
		Introspection: !cfg.api.NoIntrospection && !cfg.api.PersistedOnly, PersistedOnly: cfg.api.PersistedOnly})
	if err != nil {
		return err
	}
	requests, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return requests },
		Handler:           routes(api, export.New(exec, logger), newImporter(store, logger, cfg.maxImport), page, store, auth, logger, reg),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn), // net/http's own complaints, in our log
		IdleTimeout:       2 * time.Minute,
	}
	// Shutdown waits for requests in flight but neither ends streams nor
	// waits for hijacked WebSocket connections: end them all at its start.
	srv.RegisterOnShutdown(api.CloseStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "graphiql", "http://"+displayAddr(ln.Addr())+"/")
	if serving != nil {
		serving(listening{API: ln.Addr(), EmbeddedURI: exposedURI})
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	graceCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = srv.Shutdown(graceCtx)
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

// sweepExpiredInvitations records expired invitations now and every
// expirySweepInterval until ctx ends.
func sweepExpiredInvitations(ctx context.Context, store *storage.Store, logger *slog.Logger) {
	tick := time.NewTicker(expirySweepInterval)
	defer tick.Stop()
	for {
		n, err := store.ExpireInvitations(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Error("expire invitations", "error", err)
		} else if n > 0 {
			logger.Info("invitations expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// routes wires the endpoints of the runtime contract. /healthz, /readyz
// and the playground (page at /, its files under /playground/) are
// public; /query authenticates every request in its edge,
// /export/referrals and /import/referrals as /query does and hold a
// stream slot, and /metrics needs an admin token in authenticated mode.
func routes(api *transport.Handler, exports, imports, page http.Handler, store *storage.Store, auth *transport.Auth, logger *slog.Logger, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/query", api)
	mux.Handle("/export/referrals", api.Stream(exports)) // GET, HEAD and CORS preflights
	mux.Handle("/import/referrals", api.Upload(imports)) // POST and CORS preflights
	mux.Handle("GET /{$}", api.Logged(slog.LevelInfo, page))
	mux.Handle("GET /playground/", api.Logged(slog.LevelInfo, page))
	// Probes come every few seconds: logged at debug.
	mux.Handle("GET /healthz", api.Logged(slog.LevelDebug, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})))
	mux.Handle("GET /readyz", api.Logged(slog.LevelDebug, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := store.Ready(ctx); err != nil {
			logger.Warn("not ready", "error", err)
			http.Error(w, "store cannot answer queries", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})))
	mux.Handle("GET /metrics", api.Logged(slog.LevelInfo, auth.Authenticated(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))))
	mux.Handle("/", api.Logged(slog.LevelInfo, http.NotFoundHandler())) // every other path: 404, logged too
	return mux
}

// newImporter is the import handler over store, with files up to
// maxBytes.
func newImporter(store *storage.Store, logger *slog.Logger, maxBytes int64) http.Handler {
	h := importer.New(store, logger)
	h.Limits.MaxBytes = maxBytes
	return h
}

// displayAddr turns a wildcard listen address ("[::]:8080") into one a
// browser can open ("localhost:8080").
func displayAddr(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return "localhost:" + strconv.Itoa(tcp.Port)
	}
	return addr.String()
}

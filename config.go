package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"referrals/graph"
	"referrals/graph/importer"
	"referrals/graph/transport"
	"referrals/webhooks"
)

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
	fs.IntVar(&c.edge.MaxStreams, "max-streams-per-token", transport.DefaultMaxStreams, "streams (WebSocket connections, SSE requests, exports and imports together) one token subject may hold open")
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

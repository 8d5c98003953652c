package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"

	"referrals/graph/transport"
	"referrals/live"
	"referrals/storage"
	"referrals/storage/demo"
	"referrals/storage/embedded"
	"referrals/storage/storagetest"
)

// One embedded store serves the whole package; each test gets its own
// database on it.
var (
	testServer   *storagetest.Server
	testURI      string
	testEmbedded *embedded.Server
	commands     = &commandLog{}
)

// demoSize is the number of demo referrals seeded for a test.
const demoSize = 200

// testSeed and testAnchor fix the demo data the tests use.
const testSeed = 7

var testAnchor = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	storagetest.Main(m, commands.monitor(), func(s *storagetest.Server) {
		testServer, testURI, testEmbedded = s, s.URI, s.Embedded
	})
}

// commandLog records the commands the driver sends, by database, as
// "name collection" ("find referrals").
type commandLog struct {
	mu   sync.Mutex
	byDB map[string][]string
}

func (c *commandLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.byDB == nil {
			c.byDB = map[string][]string{}
		}
		coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
		if e.CommandName == "getMore" {
			coll, _ = e.Command.Lookup("collection").StringValueOK()
		}
		if coll == "changes" || coll == "changeHeads" {
			return // the change feed's, not a request's
		}
		c.byDB[e.DatabaseName] = append(c.byDB[e.DatabaseName], e.CommandName+" "+coll)
	}}
}

// take returns and forgets the commands sent to db so far.
func (c *commandLog) take(db string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.byDB[db]
	delete(c.byDB, db)
	return out
}

// reads returns, sorted, the MongoDB commands sent on e's database since
// the last call, with one "planned" for each selection the embedded read
// planner answered there: what a request cost the store.
func (e *env) reads() []string {
	got := commands.take(e.db)
	n := e.store.PlannedSelections()
	for range n - e.planned {
		got = append(got, "planned")
	}
	e.planned = n
	slices.Sort(got)
	return got
}

// env is one test's database, its seeded data and the HTTP handler over it.
type env struct {
	db        string
	planned   int64 // the store's PlannedSelections at the last reads
	store     *storage.Store
	broker    *live.Broker
	auth      *transport.Auth // open: every caller is an admin
	handler   http.Handler
	referrals []storage.Referral
	parts     []storage.Participant
}

// newEnv prepares a fresh database holding n demo referrals.
func newEnv(t testing.TB, n int) *env {
	t.Helper()
	return newEnvAt(t, n, nil)
}

// newEnvAt is newEnv on a store whose clock is now, on its own client;
// with now nil it is the package's store and the wall clock.
func newEnvAt(t testing.TB, n int, now func() time.Time) *env {
	t.Helper()
	if now == nil {
		return newEnvOn(t, n, nil)
	}
	return newEnvOn(t, n, &storage.Options{Now: now})
}

// newEnvOn is newEnv on a store of its own client configured by opts,
// whose URI, database, command log and embedded store it fills in; with
// opts nil it is the package's store.
func newEnvOn(t testing.TB, n int, opts *storage.Options) *env {
	t.Helper()
	return newEnvLive(t, n, opts, live.Options{})
}

// newEnvLive is newEnvOn with a broker sized by live.
func newEnvLive(t testing.TB, n int, opts *storage.Options, liveOpts live.Options) *env {
	t.Helper()
	ctx := context.Background()
	store := testServer.NewStore(t, opts)
	db := store.Database()
	refs, parts := demo.Generate(testSeed, n, testAnchor)
	if err := store.InsertReferrals(ctx, refs, parts); err != nil {
		t.Fatalf("seed: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker := live.NewBroker(store, logger, liveOpts)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = broker.Run(ctx)
	}()
	t.Cleanup(func() { stop(); <-done })
	auth, err := transport.NewAuth(ctx, transport.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, store: store, broker: broker, auth: auth, handler: newHandler(store, broker, auth, Options{}, transport.Options{}), referrals: refs, parts: parts}
	e.reads()
	return e
}

// gqlError is one error of a GraphQL response.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// gqlResponse is a decoded GraphQL response with its HTTP status.
type gqlResponse struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	raw    []byte
}

// post sends a GraphQL document with variables as a JSON POST.
func (e *env) post(t testing.TB, query string, vars map[string]any) gqlResponse {
	t.Helper()
	return e.postBody(t, map[string]any{"query": query, "variables": vars})
}

// postBody sends a request body as a JSON POST.
func (e *env) postBody(t testing.TB, body map[string]any) gqlResponse {
	t.Helper()
	return e.do(t, jsonPost(body))
}

// tryPost is post for goroutines other than the test's own, which must
// not call t.Fatal: it returns an error instead.
func (e *env) tryPost(query string, vars map[string]any) (gqlResponse, error) {
	return e.exchange(jsonPost(map[string]any{"query": query, "variables": vars}))
}

func jsonPost(body map[string]any) *http.Request {
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func (e *env) do(t testing.TB, req *http.Request) gqlResponse {
	t.Helper()
	resp, err := e.exchange(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// exchange serves req and decodes the response, which must be JSON.
func (e *env) exchange(req *http.Request) (gqlResponse, error) {
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	resp := gqlResponse{Status: rec.Code, raw: rec.Body.Bytes()}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		return resp, fmt.Errorf("response is not JSON (status %d): %v\n%s", rec.Code, err, rec.Body.String())
	}
	return resp, nil
}

// mustData decodes the data of a response that must have no errors.
func (r gqlResponse) mustData(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		t.Fatalf("status %d, errors: %s", r.Status, r.raw)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data: %v\n%s", err, r.Data)
	}
}

// code returns the extensions.code of the only error, failing otherwise.
func (r gqlResponse) code(t *testing.T) (code, message string) {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("want exactly one error, got %s", r.raw)
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c, r.Errors[0].Message
}

// wantBadInput checks that r failed with BAD_USER_INPUT and a message
// containing every one of mentions.
func (r gqlResponse) wantBadInput(t *testing.T, mentions ...string) {
	t.Helper()
	if r.Status >= 500 {
		t.Fatalf("status %d for a client mistake: %s", r.Status, r.raw)
	}
	code, msg := r.code(t)
	if code != string(storage.CodeBadUserInput) {
		t.Fatalf("code = %q, want BAD_USER_INPUT (message %q)", code, msg)
	}
	for _, m := range mentions {
		if !strings.Contains(msg, m) {
			t.Errorf("message %q does not mention %q", msg, m)
		}
	}
}

// apiGoroutines counts the goroutines of the process that are not the
// embedded store's (FerretDB runs in-process, three goroutines per client
// connection) or the driver's connection pool, which keeps up to 100
// connections open by design: what is left is the API's own.
func apiGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "FerretDB/") && !strings.Contains(g, "go.mongodb.org/mongo-driver") && strings.TrimSpace(g) != "" {
			n++
		}
	}
	return n
}

// newHandler serves store through the whole stack the server runs: the
// GraphQL executor behind the HTTP edge.
func newHandler(store *storage.Store, broker *live.Broker, auth *transport.Auth, opts Options, edge transport.Options) http.Handler {
	return transport.New(NewExecutor(store, broker, slog.New(slog.DiscardHandler), nil, opts), auth, edge)
}

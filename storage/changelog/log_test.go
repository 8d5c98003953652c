package changelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/internal/testclock"
	"referrals/storage/embedded"
	"referrals/storage/embedded/embeddedtest"
)

// One embedded store serves the package's tests; each test gets its own
// database on it.
var (
	testClient *mongo.Client
	testDBSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(embeddedtest.Run(func(local *embedded.Server) int {
		var err error
		if testClient, err = mongo.Connect(options.Client().ApplyURI(local.URI())); err != nil {
			panic(err)
		}
		defer testClient.Disconnect(context.Background())
		return m.Run()
	}))
}

// note is the entry of the tests' logs.
type note struct {
	Header `bson:",inline"`
	Text   string `bson:"text"`
	Marker bool   `bson:"marker,omitempty"`
}

func (n *note) Head() *Header  { return &n.Header }
func (n *note) Skip(time.Time) { n.Marker = true }
func (n *note) Skipped() bool  { return n.Marker }
func (n *note) String() string { return n.Text }
func readNotes(l *Log[note, *note]) func(context.Context, []string) (map[string]*note, error) {
	return func(ctx context.Context, keys []string) (map[string]*note, error) {
		cur, err := l.changes.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
		if err != nil {
			return nil, err
		}
		var ns []*note
		if err := cur.All(ctx, &ns); err != nil {
			return nil, err
		}
		out := map[string]*note{}
		for _, n := range ns {
			out[n.Key] = n
		}
		return out, nil
	}
}

// newLog returns a prepared log on database db (a fresh one when empty),
// with the clock now and logging to logger (discarded when nil).
func newLog(t *testing.T, db string, now func() time.Time, logger *slog.Logger) *Log[note, *note] {
	t.Helper()
	if db == "" {
		db = fmt.Sprintf("test_%d", testDBSeq.Add(1))
		t.Cleanup(func() { _ = testClient.Database(db).Drop(context.Background()) })
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := New[note, *note](Options[note]{DB: testClient.Database(db), Now: now, Logger: logger})
	l.opts.ReadKeys = readNotes(l)
	if err := l.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	return l
}

// appendNote appends one note, failing the test if it is not published.
func appendNote(t *testing.T, l *Log[note, *note], text string) {
	t.Helper()
	if !l.Append(t.Context(), []note{{Header: Header{Writer: bson.NewObjectID()}, Text: text}})[0] {
		t.Fatalf("%q not published", text)
	}
}

// TestSkipsANumberNeverRecorded takes a sequence number in one process
// and never records it (its writer died), then records the next entry: a
// follower in another process waits gapTimeout on its clock, marks the
// number skipped, and delivers the next entry; the dead writer's number
// stays taken, so a late insert under it fails.
func TestSkipsANumberNeverRecorded(t *testing.T) {
	dead := newLog(t, "", time.Now, nil)
	clock := testclock.At(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	other := newLog(t, dead.opts.DB.Name(), clock.Now, nil)
	lost := dead.takeSeq(t.Context())
	appendNote(t, dead, "after-the-gap")
	ctx, cancel := context.WithCancel(context.Background())
	deliveries := make(chan note, 10)
	done := make(chan struct{})
	go func() { defer close(done); _ = other.Follow(ctx, 0, func(n note) { deliveries <- n }) }()
	t.Cleanup(func() { cancel(); <-done })
	for delivered := false; !delivered; {
		clock.Advance(gapTimeout)
		select {
		case n := <-deliveries:
			if n.Text != "after-the-gap" || n.Seq != lost+1 {
				t.Fatalf("delivered %q at %d, want after-the-gap at %d", n.Text, n.Seq, lost+1)
			}
			delivered = true
		case <-time.After(2 * pollInterval):
		}
	}
	late := note{Header: Header{Seq: lost, Key: Key(lost), Writer: bson.NewObjectID()}, Text: "late"}
	if err := dead.insert(t.Context(), &late); !errors.Is(err, errSeqTaken) {
		t.Errorf("a late insert under the skipped number: %v, want errSeqTaken", err)
	}
}

// TestPrepareReplacesAnEarlierFeed: the capped `changes` collection of an
// earlier version (no document limit, ObjectID ids) is replaced by one the
// sequence-numbered log can use.
func TestPrepareReplacesAnEarlierFeed(t *testing.T) {
	name := fmt.Sprintf("test_%d", testDBSeq.Add(1))
	db := testClient.Database(name)
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	ctx := t.Context()
	if err := db.CreateCollection(ctx, Collection, options.CreateCollection().SetCapped(true).SetSizeInBytes(32<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection(Collection).InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "type", Value: "FEED_START"}}); err != nil {
		t.Fatal(err)
	}
	newLog(t, name, time.Now, nil)
	specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: Collection}})
	if err != nil || len(specs) != 1 {
		t.Fatalf("changes collection: %v %v", specs, err)
	}
	if max, ok := specs[0].Options.Lookup("max").AsInt64OK(); !ok || max != retainedChanges {
		t.Errorf("changes options %v, want capped at %d documents", specs[0].Options, retainedChanges)
	}
	if n, _ := db.Collection(Collection).CountDocuments(ctx, bson.D{}); n != 0 {
		t.Errorf("%d documents of the earlier feed kept", n)
	}
}

// TestTrimRunsCompact: where the store does not trim capped collections
// itself (the embedded FerretDB), every trimEvery entries a process
// records run FerretDB's compact on the log, which drops the documents
// beyond retainedChanges, oldest first; the command must succeed.
func TestTrimRunsCompact(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	l := newLog(t, "", time.Now, logger)
	if !l.trimByCompact {
		t.Fatal("the embedded store was not recognised as one that needs compact")
	}
	l.trim(t.Context(), trimEvery)
	l.trimMu.Lock() // held by the trimming until it is done
	l.trimMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logged.String(), "trim the change feed") {
		t.Errorf("compact failed: %s", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRecordingCatchesUpWithABusyProcess: a process that last recorded
// long ago records after another process has recorded many more entries
// than a writer tries numbers: its entry is still recorded, next after
// the other's, and the log holds every entry once.
func TestRecordingCatchesUpWithABusyProcess(t *testing.T) {
	a := newLog(t, "", time.Now, nil)
	b := newLog(t, a.opts.DB.Name(), time.Now, nil)
	appendNote(t, a, "a-first")
	for i := range 3 * maxSeqAttempts {
		appendNote(t, b, fmt.Sprint("b-", i))
	}
	appendNote(t, a, "a-second")
	head, err := a.Latest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	notes, err := a.Between(t.Context(), 0, head)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(notes); n != 3*maxSeqAttempts+2 || notes[n-1].Text != "a-second" {
		t.Fatalf("the log holds %d entries ending with %q, want %d ending with a-second", n, notes[n-1].Text, 3*maxSeqAttempts+2)
	}
}

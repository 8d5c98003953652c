// Package changelog is a change log in MongoDB: entries numbered densely
// from 1, written by any number of processes sharing a database, and read
// by each in order, once each, from any point the log still holds. It
// knows nothing of what an entry says: package storage logs its referral
// changes in it.
//
// The log is the `changes` collection: one document per entry, its _id a
// dense sequence number. A writer takes the next number and inserts its
// entry under it; _id uniqueness makes each number one writer's on every
// MongoDB-compatible store. Each process keeps its own head (the last
// number it published) in the tiny `changeHeads` collection; an entry is
// published once a head covers it, and only then is its writer answered
// or the entry delivered. A reader delivers the numbers in order: the
// entries of its own process are handed to it in memory as they are
// published, and it learns of other processes' entries by reading the
// heads every pollInterval, then reads those entries by _id. What a crash
// leaves half done, the writer's recovery publishes (Publish, Top).
//
// Every read is of a tiny collection or by _id, because FerretDB v1 scans
// a whole collection for any other query (and even an _id read scans it in
// SQLite, at about 5 ms a read of `changes` here): an idle reader costs one
// read of the heads per pollInterval, whatever the log holds.
//
// It imports the MongoDB driver and storage/retry only.
package changelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/retry"
)

// Collections of the log.
const (
	Collection     = "changes"
	HeadCollection = "changeHeads"
)

const (
	// retainedChanges is how many entries the log holds. The collection
	// is capped at this count.
	retainedChanges = 100_000
	// changesCapBytes is the capped collection's size, which MongoDB
	// requires: far above retainedChanges entries of a few KB.
	changesCapBytes = 1 << 30
	// trimEvery is how many entries a process records between trimmings
	// where the store does not trim capped collections itself (FerretDB).
	trimEvery = 1000
	// pollInterval is how often a reader looks for other processes'
	// entries: their delivery latency, and an idle reader's only work.
	pollInterval = 100 * time.Millisecond
	// gapTimeout is how long a reader waits for a sequence number taken
	// but not recorded (its writer is slow, or died) before skipping it.
	// A writer records within its retries (about 0.3 s) or fails.
	gapTimeout = 5 * time.Second
)

// Header is what the log keeps of every entry besides its content: its
// sequence number, that number as the document's _id (see Key), and the
// writer that recorded it, which tells a writer's own retried insert from
// another's (and recovery which writer's entry is stored).
type Header struct {
	Seq    int64         `bson:"seq"`
	Key    string        `bson:"_id"`
	Writer bson.ObjectID `bson:"writer"`
}

// Entry is what the pointer to a log's entry type E must do: give its
// Header for the log to number, and be, or tell, a skip marker: a
// sequence number the log gave up waiting for (its writer died between
// taking the number and recording the entry). The marker takes the number
// for good, so a late writer records its entry under another one; readers
// pass over it.
type Entry[E any] interface {
	*E
	Head() *Header
	Skip(at time.Time)
	Skipped() bool
}

// Key is the _id of the entry numbered seq: a string, because FerretDB
// filters a string or ObjectID _id in SQLite instead of decoding every
// document, of 20 digits, so that keys sort as numbers do.
func Key(seq int64) string { return fmt.Sprintf("%020d", seq) }

// Options configure a Log.
type Options[E any] struct {
	DB     *mongo.Database
	Now    func() time.Time // the clock of gapTimeout
	Logger *slog.Logger
	// ReadKeys reads the entries stored under keys, in one selection
	// where the store allows, keyed by key; absent keys are absent.
	ReadKeys func(ctx context.Context, keys []string) (map[string]*E, error)
	// BeforeHead, when set, runs after entries are stored and before a
	// head publishes them: tests cut the write path there, as a crash
	// would.
	BeforeHead func()
}

// Log is one process's side of the change log: the numbers its writers
// take, the entries they recorded that its reader has yet to deliver, and
// its head.
type Log[E any, P Entry[E]] struct {
	opts     Options[E]
	changes  *mongo.Collection
	heads    *mongo.Collection
	instance string // _id of this process's head

	mu        sync.Mutex
	loaded    bool           // known has been read from the heads
	taken     int64          // highest number a writer here took
	known     int64          // highest number published (covered by a head)
	inflight  map[int64]bool // taken here, neither recorded nor abandoned yet
	local     map[int64]E    // recorded here, for the reader to deliver
	following bool
	wake      chan struct{}
	queue     []*queued[E] // entries waiting to be recorded, in order
	recording bool         // a writer is recording the queue

	headMu      sync.Mutex // orders this process's head updates
	headWritten int64

	trimByCompact bool       // set by Prepare: the store does not trim capped collections
	trimMu        sync.Mutex // one trimming at a time
	sinceTrim     int
}

// New returns the log of opts.DB for this process; Prepare readies it.
func New[E any, P Entry[E]](opts Options[E]) *Log[E, P] {
	return &Log[E, P]{opts: opts, changes: opts.DB.Collection(Collection), heads: opts.DB.Collection(HeadCollection),
		instance: bson.NewObjectID().Hex(), inflight: map[int64]bool{}, local: map[int64]E{}, wake: make(chan struct{}, 1)}
}

// Mechanism names how the log is followed, for the server's log.
func (l *Log[E, P]) Mechanism() string {
	return "sequence-numbered changes collection, polled every " + pollInterval.String()
}

func (l *Log[E, P]) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// takeSeq returns the next sequence number for a writer of this process.
func (l *Log[E, P]) takeSeq(ctx context.Context) int64 {
	l.loadKnown(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := max(l.taken, l.known) + 1
	l.taken = seq
	l.inflight[seq] = true
	return seq
}

// abandon gives up seq: another writer holds it, or recording failed
// (retry). After a failure the next entry of this process tries seq
// again, so that above every head the recorded entries run without a gap
// (see Top): if the failed insert landed after all, that try finds the
// number taken and moves on.
func (l *Log[E, P]) abandon(seq int64, retry bool) {
	l.mu.Lock()
	delete(l.inflight, seq)
	if retry && l.taken == seq {
		l.taken = seq - 1
	}
	l.mu.Unlock()
	l.notify()
}

// recorded hands e, now stored and published, to this process's reader.
func (l *Log[E, P]) recorded(e E) {
	seq := P(&e).Head().Seq
	l.mu.Lock()
	delete(l.inflight, seq)
	l.known = max(l.known, seq)
	if l.following {
		l.local[seq] = e
	}
	l.mu.Unlock()
	l.notify()
}

// Known returns the highest sequence number published that this process
// knows of, having read the heads once if it had not: an entry recorded
// from now on is numbered after it.
func (l *Log[E, P]) Known(ctx context.Context) int64 {
	l.loadKnown(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.known
}

// loadKnown reads the heads once, before this process takes its first
// sequence number (Prepare does).
func (l *Log[E, P]) loadKnown(ctx context.Context) {
	l.mu.Lock()
	loaded := l.loaded
	l.mu.Unlock()
	if !loaded {
		if _, err := l.Latest(ctx); err != nil {
			l.opts.Logger.WarnContext(ctx, "read the change feed's heads", "error", err)
		}
	}
}

// Latest returns the sequence number of the newest entry published (the
// highest head: a process answers a write, or delivers its entry, only
// once its head covers it), 0 when there is none. It reads every
// process's head.
func (l *Log[E, P]) Latest(ctx context.Context) (int64, error) {
	head, err := l.maxHead(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.known, l.loaded = max(l.known, head), true
	}
	return l.known, err
}

// maxHead returns the highest head of any process, 0 for none.
func (l *Log[E, P]) maxHead(ctx context.Context) (int64, error) {
	cur, err := l.heads.Find(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("read change heads: %w", err)
	}
	var heads []struct {
		Seq int64 `bson:"seq"`
	}
	if err := cur.All(ctx, &heads); err != nil {
		return 0, fmt.Errorf("read change heads: %w", err)
	}
	var top int64
	for _, h := range heads {
		top = max(top, h.Seq)
	}
	return top, nil
}

// advanceHead records seq as this process's head unless a later one is,
// which publishes every entry numbered up to seq: readers deliver no
// entry beyond the heads. Only this process writes its head, so no other
// writer can undo it. A failure is logged and returned.
func (l *Log[E, P]) advanceHead(ctx context.Context, seq int64) error {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	if seq <= l.headWritten {
		return nil
	}
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := l.heads.UpdateOne(ctx, bson.D{{Key: "_id", Value: l.instance}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}}}, options.UpdateOne().SetUpsert(true))
		return err
	})
	if err != nil {
		l.opts.Logger.ErrorContext(ctx, "advance the change feed's head", "seq", seq, "error", err)
		return fmt.Errorf("advance the change feed's head to %d: %w", seq, err)
	}
	l.headWritten = seq
	return nil
}

// Publish makes the entries numbered up to seq visible to every reader,
// where no head covers them yet: entries a dead process recorded but did
// not publish.
func (l *Log[E, P]) Publish(ctx context.Context, seq int64) error {
	l.mu.Lock()
	known := l.known
	l.mu.Unlock()
	if seq <= known {
		return nil
	}
	if err := l.advanceHead(ctx, seq); err != nil {
		return err
	}
	l.mu.Lock()
	l.known = max(l.known, seq)
	l.mu.Unlock()
	l.notify()
	return nil
}

// Top returns the number of the highest entry recorded: the highest head,
// or past it the entries a process stored and died before publishing. A
// process stores its entries in order and tries a number again after
// failing to store under it (see abandon), and a reader marks only
// numbers below a head skipped, so past the highest head the stored
// entries run without a gap: the first number missing ends them. It
// reads the heads and one entry more than it finds, each by _id.
func (l *Log[E, P]) Top(ctx context.Context) (int64, error) {
	top, err := l.maxHead(ctx)
	if err != nil {
		return 0, err
	}
	for {
		err := l.changes.FindOne(ctx, bson.D{{Key: "_id", Value: Key(top + 1)}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return top, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read change %d: %w", top+1, err)
		}
		top++
	}
}

// trim cuts the log back to retainedChanges about every trimEvery entries
// this process records, where the store does not trim capped collections
// itself: FerretDB run in-process never does, but its compact command
// drops the oldest documents by their record id, without a scan. It runs
// in the background; a failure is logged and tried again trimEvery
// entries later.
func (l *Log[E, P]) trim(ctx context.Context, recorded int) {
	l.mu.Lock()
	l.sinceTrim += recorded
	due := l.trimByCompact && l.sinceTrim >= trimEvery
	if due {
		l.sinceTrim = 0
	}
	l.mu.Unlock()
	if !due || !l.trimMu.TryLock() {
		return
	}
	go func() {
		defer l.trimMu.Unlock()
		ctx := context.WithoutCancel(ctx)
		if err := l.opts.DB.RunCommand(ctx, bson.D{{Key: "compact", Value: l.changes.Name()}}).Err(); err != nil {
			l.opts.Logger.ErrorContext(ctx, "trim the change feed", "error", err)
		}
	}()
}

// Prepare creates the capped `changes` collection when missing (and
// replaces an earlier version's, which has no document limit and other
// _ids), removes the heads of processes that are behind the newest one,
// publishes the entries a dead process stored past them (so that after a
// restart the log's head is its highest entry, see Top), and learns
// whether the store trims capped collections itself.
func (l *Log[E, P]) Prepare(ctx context.Context) error {
	var info bson.M
	if err := l.opts.DB.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return fmt.Errorf("build info: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	l.trimByCompact = ferret
	specs, err := l.opts.DB.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: l.changes.Name()}})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	if len(specs) == 1 && specs[0].Options.Lookup("max").IsZero() {
		l.opts.Logger.WarnContext(ctx, "replacing the change feed of an earlier version")
		if err := l.changes.Drop(ctx); err != nil {
			return fmt.Errorf("drop the earlier change feed: %w", err)
		}
		specs = nil
	}
	if len(specs) == 0 {
		err := l.opts.DB.CreateCollection(ctx, l.changes.Name(), options.CreateCollection().
			SetCapped(true).SetSizeInBytes(changesCapBytes).SetMaxDocuments(retainedChanges))
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // 48: created meanwhile by another instance
			return fmt.Errorf("create the changes collection: %w", err)
		}
	}
	head, err := l.maxHead(ctx)
	if err != nil {
		return err
	}
	if _, err := l.heads.DeleteMany(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$lt", Value: head}}}}); err != nil {
		return fmt.Errorf("remove old change heads: %w", err)
	}
	top, err := l.Top(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.known, l.loaded = max(l.known, head), true
	l.mu.Unlock()
	if top > head {
		l.opts.Logger.InfoContext(ctx, "publishing the changes a stopped process stored but did not publish", "from", head+1, "to", top)
	}
	return l.Publish(ctx, top)
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"referrals/storage/retry"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The change feed is the `changes` collection: one document per change,
// its _id a dense sequence number. A writer takes the next number and
// inserts its change under it; _id uniqueness makes each number one
// writer's on every MongoDB-compatible store. Each process keeps its own
// head (the last number it published) in the tiny `changeHeads`
// collection; a change is published once a head covers it, and only then
// is its writer answered or the change delivered. A reader delivers the
// numbers in order: the changes of its own process are handed to it in
// memory as they are published, and it learns of other processes' changes
// by reading the heads every pollInterval, then reads those changes by
// _id. What a crash leaves half done, recovery publishes (see intent).
//
// Every read is of a tiny collection or by _id, because FerretDB v1 scans
// a whole collection for any other query (and even an _id read scans it in
// SQLite, at about 5 ms a read of `changes` here): an idle reader costs one
// read of the heads per pollInterval, whatever the log holds.
const (
	// retainedChanges is how many changes the feed holds. The collection
	// is capped at this count.
	retainedChanges = 100_000
	// MaxResumeBack is how far back a subscription may resume: at most
	// this many changes, of every organization, after its id. Catching up
	// reads each of them, whoever they concern, so this bounds what one
	// resume costs; an older id is CodeChangeIDExpired before any is read.
	MaxResumeBack = 10_000
	// changesCapBytes is the capped collection's size, which MongoDB
	// requires: far above retainedChanges changes of a few KB.
	changesCapBytes = 1 << 30
	// trimEvery is how many changes a process records between trimmings
	// where the store does not trim capped collections itself (FerretDB).
	trimEvery = 1000
	// pollInterval is how often a reader looks for other processes'
	// changes: their delivery latency, and an idle reader's only work.
	pollInterval = 100 * time.Millisecond
	// gapTimeout is how long a reader waits for a sequence number taken
	// but not recorded (its writer is slow, or died) before skipping it.
	// A writer records within its retries (about 0.3 s) or fails.
	gapTimeout = 5 * time.Second
)

// feed is one Store's side of the change feed: the numbers its writers
// take, and the changes they recorded that its reader has yet to deliver.
type feed struct {
	instance string // _id of this process's head

	mu        sync.Mutex
	loaded    bool             // known has been read from the heads
	taken     int64            // highest number a writer here took
	known     int64            // highest number published (covered by a head)
	inflight  map[int64]bool   // taken here, neither recorded nor abandoned yet
	local     map[int64]Change // recorded here, for the reader to deliver
	following bool
	wake      chan struct{}
	queue     []*queued // changes waiting to be recorded, in order
	recording bool      // a writer is recording the queue

	headMu      sync.Mutex // orders this process's head updates
	headWritten int64

	trimByCompact bool       // set by prepareFeed: the store does not trim capped collections
	trimMu        sync.Mutex // one trimming at a time
	sinceTrim     int
}

func newFeed() *feed {
	return &feed{instance: bson.NewObjectID().Hex(), inflight: map[int64]bool{}, local: map[int64]Change{}, wake: make(chan struct{}, 1)}
}

func (f *feed) notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// takeSeq returns the next sequence number for a writer of this process.
func (s *Store) takeSeq(ctx context.Context) int64 {
	s.loadKnown(ctx)
	f := s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := max(f.taken, f.known) + 1
	f.taken = seq
	f.inflight[seq] = true
	return seq
}

// abandon gives up seq: another writer holds it, or recording failed
// (retry). After a failure the next change of this process tries seq
// again, so that above every head the recorded changes run without a gap
// (see feedTop): if the failed insert landed after all, that try finds
// the number taken and moves on.
func (f *feed) abandon(seq int64, retry bool) {
	f.mu.Lock()
	delete(f.inflight, seq)
	if retry && f.taken == seq {
		f.taken = seq - 1
	}
	f.mu.Unlock()
	f.notify()
}

// recorded hands c, now stored and published, to this process's reader.
func (f *feed) recorded(c Change) {
	f.mu.Lock()
	delete(f.inflight, c.Seq)
	f.known = max(f.known, c.Seq)
	if f.following {
		f.local[c.Seq] = c
	}
	f.mu.Unlock()
	f.notify()
}

// loadKnown reads the heads once, before this process takes its first
// sequence number (Prepare does, see prepareFeed).
func (s *Store) loadKnown(ctx context.Context) {
	s.feed.mu.Lock()
	loaded := s.feed.loaded
	s.feed.mu.Unlock()
	if !loaded {
		if _, err := s.refreshKnown(ctx); err != nil {
			s.logger.WarnContext(ctx, "read the change feed's heads", "error", err)
		}
	}
}

// refreshKnown reads every process's head and returns the highest
// sequence number known to hold a change.
func (s *Store) refreshKnown(ctx context.Context) (int64, error) {
	head, err := s.maxHead(ctx)
	f := s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.known, f.loaded = max(f.known, head), true
	}
	return f.known, err
}

// maxHead returns the highest head of any process, 0 for none.
func (s *Store) maxHead(ctx context.Context) (int64, error) {
	cur, err := s.changeHeads.Find(ctx, bson.D{})
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
// which publishes every change numbered up to seq: readers deliver no
// change beyond the heads. Only this process writes its head, so no other
// writer can undo it. A failure is logged and returned.
func (s *Store) advanceHead(ctx context.Context, seq int64) error {
	f := s.feed
	f.headMu.Lock()
	defer f.headMu.Unlock()
	if seq <= f.headWritten {
		return nil
	}
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.changeHeads.UpdateOne(ctx, bson.D{{Key: "_id", Value: f.instance}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}}}, options.UpdateOne().SetUpsert(true))
		return err
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "advance the change feed's head", "seq", seq, "error", err)
		return fmt.Errorf("advance the change feed's head to %d: %w", seq, err)
	}
	f.headWritten = seq
	return nil
}

// publish makes the changes numbered up to seq visible to every reader,
// where no head covers them yet: changes a dead process recorded but did
// not publish.
func (s *Store) publish(ctx context.Context, seq int64) error {
	f := s.feed
	f.mu.Lock()
	known := f.known
	f.mu.Unlock()
	if seq <= known {
		return nil
	}
	if err := s.advanceHead(ctx, seq); err != nil {
		return err
	}
	f.mu.Lock()
	f.known = max(f.known, seq)
	f.mu.Unlock()
	f.notify()
	return nil
}

// feedTop returns the number of the highest change recorded: the highest
// head, or past it the changes a process stored and died before
// publishing. A process stores its changes in order and tries a number
// again after failing to store under it (see abandon), and a reader marks
// only numbers below a head skipped, so past the highest head the stored
// changes run without a gap: the first number missing ends them. It reads
// the heads and one change more than it finds, each by _id.
func (s *Store) feedTop(ctx context.Context) (int64, error) {
	top, err := s.maxHead(ctx)
	if err != nil {
		return 0, err
	}
	for {
		err := s.changes.FindOne(ctx, bson.D{{Key: "_id", Value: changeKey(top + 1)}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return top, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read change %d: %w", top+1, err)
		}
		top++
	}
}

// trimChanges cuts the feed back to retainedChanges about every trimEvery
// changes this process records, where the store does not trim capped
// collections itself: FerretDB run in-process never does, but its compact
// command drops the oldest documents by their record id, without a scan.
// It runs in the background; a failure is logged and tried again
// trimEvery changes later.
func (s *Store) trimChanges(ctx context.Context, recorded int) {
	f := s.feed
	f.mu.Lock()
	f.sinceTrim += recorded
	due := f.trimByCompact && f.sinceTrim >= trimEvery
	if due {
		f.sinceTrim = 0
	}
	f.mu.Unlock()
	if !due || !f.trimMu.TryLock() {
		return
	}
	go func() {
		defer f.trimMu.Unlock()
		ctx := context.WithoutCancel(ctx)
		if err := s.db.RunCommand(ctx, bson.D{{Key: "compact", Value: s.changes.Name()}}).Err(); err != nil {
			s.logger.ErrorContext(ctx, "trim the change feed", "error", err)
		}
	}()
}

// prepareFeed creates the capped `changes` collection when missing (and
// replaces the earlier feed's, which has no document limit and other
// _ids), removes the heads of processes that are behind the newest one,
// publishes the changes a dead process stored past them (so that after a
// restart the feed's head is its highest change, see feedTop), and learns
// whether the store trims capped collections itself.
func (s *Store) prepareFeed(ctx context.Context) error {
	var info bson.M
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return fmt.Errorf("build info: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	s.feed.trimByCompact = ferret
	specs, err := s.db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: s.changes.Name()}})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	if len(specs) == 1 && specs[0].Options.Lookup("max").IsZero() {
		s.logger.WarnContext(ctx, "replacing the change feed of an earlier version")
		if err := s.changes.Drop(ctx); err != nil {
			return fmt.Errorf("drop the earlier change feed: %w", err)
		}
		specs = nil
	}
	if len(specs) == 0 {
		err := s.db.CreateCollection(ctx, s.changes.Name(), options.CreateCollection().
			SetCapped(true).SetSizeInBytes(changesCapBytes).SetMaxDocuments(retainedChanges))
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // 48: created meanwhile by another instance
			return fmt.Errorf("create the changes collection: %w", err)
		}
	}
	head, err := s.maxHead(ctx)
	if err != nil {
		return err
	}
	if _, err := s.changeHeads.DeleteMany(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$lt", Value: head}}}}); err != nil {
		return fmt.Errorf("remove old change heads: %w", err)
	}
	top, err := s.feedTop(ctx)
	if err != nil {
		return err
	}
	s.feed.mu.Lock()
	s.feed.known, s.feed.loaded = max(s.feed.known, head), true
	s.feed.mu.Unlock()
	if top > head {
		s.logger.InfoContext(ctx, "publishing the changes a stopped process stored but did not publish", "from", head+1, "to", top)
	}
	return s.publish(ctx, top)
}

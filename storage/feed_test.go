package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// follow runs FollowChanges on s from after until the test ends and
// returns its deliveries.
func follow(t *testing.T, s *Store, after int64) <-chan Change {
	t.Helper()
	out := make(chan Change, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.FollowChanges(ctx, after, func(c Change) { out <- c }); err != nil {
			panic(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

// next returns the next delivery, failing after a generous 30 s (the feed
// delivers in milliseconds; the budget is for a loaded machine).
func next(t *testing.T, deliveries <-chan Change) Change {
	t.Helper()
	select {
	case c := <-deliveries:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("no change delivered")
		return Change{}
	}
}

// TestFollowChanges has 8 writers record changes concurrently through two
// stores sharing one database (two processes, each taking sequence
// numbers from its own counter, so they collide) while one follows: every
// change arrives exactly once, in sequence order, numbered 1, 2, 3…
func TestFollowChanges(t *testing.T) {
	a := newTestStore(t)
	b := testStore.WithDatabase(a.db.Name())
	deliveries := follow(t, a, 0)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range each {
				record(asAdmin(t), s, changedReferral(fmt.Sprint("w", w, "-", i)), ChangeUpdated, []string{"details.notes"})
			}
		})
	}
	wg.Wait()
	record(asAdmin(t), b, changedReferral("last"), ChangeUpdated, nil)
	seen := map[string]bool{}
	for want := int64(1); ; want++ {
		c := next(t, deliveries)
		if c.Seq != want {
			t.Fatalf("delivered sequence number %d, want %d", c.Seq, want)
		}
		if seen[c.ReferralID] {
			t.Errorf("%s delivered twice", c.ReferralID)
		}
		seen[c.ReferralID] = true
		if c.ReferralID == "last" {
			break
		}
	}
	if len(seen) != writers*each+1 {
		t.Errorf("delivered %d changes before the last, want %d", len(seen), writers*each+1)
	}
}

// TestFollowChangesSkipsANumberNeverRecorded takes a sequence number in
// one process and never records it (its writer died), then records the
// next change: a follower in another process waits gapTimeout on the
// store's clock, marks the number skipped, and delivers the next change;
// the dead writer's number stays taken, so a late insert under it fails.
func TestFollowChangesSkipsANumberNeverRecorded(t *testing.T) {
	dead := newTestStore(t)
	clock := &testClock{t: testAnchor}
	other, err := Connect(t.Context(), Options{URI: testURI, Database: dead.db.Name(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	lost := dead.takeSeq(asAdmin(t))
	record(asAdmin(t), dead, changedReferral("after-the-gap"), ChangeUpdated, nil)
	deliveries := follow(t, other, 0)
	for delivered := false; !delivered; {
		clock.Advance(gapTimeout)
		select {
		case c := <-deliveries:
			if c.ReferralID != "after-the-gap" || c.Seq != lost+1 {
				t.Fatalf("delivered %s at %d, want after-the-gap at %d", c.ReferralID, c.Seq, lost+1)
			}
			delivered = true
		case <-time.After(2 * pollInterval):
		}
	}
	late := Change{Seq: lost, Key: changeKey(lost), ReferralID: "late", Type: ChangeUpdated, Fields: []string{}, Writer: bson.NewObjectID()}
	if err := dead.insertChange(asAdmin(t), late); !errors.Is(err, errSeqTaken) {
		t.Errorf("a late insert under the skipped number: %v, want errSeqTaken", err)
	}
}

// TestResumeFromStore checks what a subscription resuming from the store
// relies on: the changes after a held one are read back in order, and
// numbers the feed does not hold, or holds no more, are
// CodeChangeIDExpired.
func TestResumeFromStore(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	for i := range 5 {
		record(ctx, s, changedReferral(fmt.Sprint("r", i)), ChangeUpdated, nil)
	}
	if err := s.CheckResume(ctx, 2); err != nil {
		t.Fatal(err)
	}
	got, err := s.ChangesBetween(ctx, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, fmt.Sprint(c.Seq, c.ReferralID))
	}
	if fmt.Sprint(ids) != "[3r2 4r3 5r4]" {
		t.Errorf("changes after 2: %v", ids)
	}
	if err := s.CheckResume(ctx, 6); ErrorCodeOf(err) != CodeChangeIDExpired {
		t.Errorf("resume after an id the feed never had: %v, want CHANGE_ID_EXPIRED", err)
	}
	s.advanceHead(ctx, retainedChanges+10) // as if that many had been recorded
	if err := s.CheckResume(ctx, 5); ErrorCodeOf(err) != CodeChangeIDExpired {
		t.Errorf("resume after an id the feed dropped: %v, want CHANGE_ID_EXPIRED", err)
	}
}

// TestResumeBoundIsCheckedFirst: resuming from further back than
// MaxResumeBack changes is CHANGE_ID_EXPIRED before any change is read
// (the command monitor sees only the heads read), and no refusal names a
// position of the feed, which counts every organization's changes.
func TestResumeBoundIsCheckedFirst(t *testing.T) {
	var log filterLog
	s := monitoredStore(t, &log, time.Now, PushdownDetect)
	ctx := asAdmin(t)
	for i := range 3 {
		record(ctx, s, changedReferral(fmt.Sprint("r", i)), ChangeUpdated, nil)
	}
	head := int64(2 + MaxResumeBack)
	s.advanceHead(ctx, head) // as if that many had been recorded
	log.take()
	err := s.CheckResume(ctx, 1)
	if ErrorCodeOf(err) != CodeChangeIDExpired {
		t.Fatalf("resume %d changes back: %v, want CHANGE_ID_EXPIRED", head-1, err)
	}
	for _, f := range log.take() {
		if f.collection != "changeHeads" {
			t.Errorf("before refusing, sent %v; want only the heads read", f)
		}
	}
	if err := s.CheckResume(ctx, 2); err != nil {
		t.Errorf("resume MaxResumeBack changes back: %v, want it taken", err)
	}
	head += 4321 // a position no message has in it by chance
	s.advanceHead(ctx, head)
	for _, after := range []int64{1, head + 1} {
		err := s.CheckResume(ctx, after)
		if err == nil {
			t.Errorf("resume after %d taken, want CHANGE_ID_EXPIRED", after)
			continue
		}
		// Each word as written, and decoded as an opaque id would be.
		words := []string{err.Error()}
		for _, w := range strings.FieldsFunc(err.Error(), func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == ';' || r == ',' }) {
			if b, err := base64.RawURLEncoding.DecodeString(w); err == nil {
				words = append(words, string(b))
			}
		}
		for _, n := range []int64{head, head + 1, head - 1} {
			for _, w := range words {
				if strings.Contains(w, fmt.Sprint(n)) {
					t.Errorf("refusing %d: %q names the position %d", after, err, n)
				}
			}
		}
	}
}

// record records the change t of r on s as a write does, with an intent
// of its own first.
func record(ctx context.Context, s *Store, r *Referral, t ChangeType, fields []string) {
	in, err := s.intend(ctx, r.ID, r.Version, t, fields)
	if err != nil {
		panic(err)
	}
	s.recordChange(ctx, r, t, fields, in)
}

// changedReferral is a referral as a change may leave it, for recording.
func changedReferral(id string) *Referral {
	return &Referral{ID: id, Status: ReferralPending, ReferralSource: SourceP2P}
}

// TestPrepareReplacesAnEarlierFeed: the capped `changes` collection of the
// earlier feed (no document limit, ObjectID ids) is replaced by one the
// sequence-numbered feed can use.
func TestPrepareReplacesAnEarlierFeed(t *testing.T) {
	s := testStore.WithDatabase(fmt.Sprintf("test_%d", testDBSeq.Add(1)))
	t.Cleanup(func() { _ = s.Drop(context.Background()) })
	ctx := asAdmin(t)
	if err := s.db.CreateCollection(ctx, "changes", options.CreateCollection().SetCapped(true).SetSizeInBytes(32<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.changes.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "type", Value: "FEED_START"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	specs, err := s.db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "changes"}})
	if err != nil || len(specs) != 1 {
		t.Fatalf("changes collection: %v %v", specs, err)
	}
	if max, ok := specs[0].Options.Lookup("max").AsInt64OK(); !ok || max != retainedChanges {
		t.Errorf("changes options %v, want capped at %d documents", specs[0].Options, retainedChanges)
	}
	if n, _ := s.changes.CountDocuments(ctx, bson.D{}); n != 0 {
		t.Errorf("%d documents of the earlier feed kept", n)
	}
}

// TestTrimChangesRunsCompact: where the store does not trim capped
// collections itself (the embedded FerretDB), every trimEvery changes a
// process records run FerretDB's compact on the feed, which drops the
// documents beyond retainedChanges, oldest first; the command must succeed.
func TestTrimChangesRunsCompact(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	s, err := Connect(t.Context(), Options{URI: testURI, Database: fmt.Sprintf("test_%d", testDBSeq.Add(1)), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Drop(context.Background()); _ = s.Close(context.Background()) })
	if err := s.Prepare(asAdmin(t)); err != nil {
		t.Fatal(err)
	}
	if !s.feed.trimByCompact {
		t.Fatal("the embedded store was not recognised as one that needs compact")
	}
	s.trimChanges(asAdmin(t), trimEvery)
	s.feed.trimMu.Lock() // held by the trimming until it is done
	s.feed.trimMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logged.String(), "trim the change feed") {
		t.Errorf("compact failed: %s", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRecordingCatchesUpWithABusyProcess: a process that last recorded
// long ago records after another process has recorded many more changes
// than a writer tries numbers: its change is still recorded, next after
// the other's, and followers get every change once.
func TestRecordingCatchesUpWithABusyProcess(t *testing.T) {
	a := newTestStore(t)
	b := testStore.WithDatabase(a.db.Name())
	record(asAdmin(t), a, changedReferral("a-first"), ChangeUpdated, nil)
	for i := range 3 * maxSeqAttempts {
		record(asAdmin(t), b, changedReferral(fmt.Sprint("b-", i)), ChangeUpdated, nil)
	}
	record(asAdmin(t), a, changedReferral("a-second"), ChangeUpdated, nil)
	head, err := a.LatestChange(asAdmin(t))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := a.ChangesBetween(asAdmin(t), 0, head)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(changes); n != 3*maxSeqAttempts+2 || changes[n-1].ReferralID != "a-second" {
		t.Fatalf("the feed holds %d changes ending with %q, want %d ending with a-second", n, changes[n-1].ReferralID, 3*maxSeqAttempts+2)
	}
}

// TestResumeFromADroppedChange: resuming after a change the store has
// dropped (a capped collection trims by size as well as by count) is
// CHANGE_ID_EXPIRED, not a silent gap.
func TestResumeFromADroppedChange(t *testing.T) {
	s := newTestStore(t)
	for i := range 5 {
		record(asAdmin(t), s, changedReferral(fmt.Sprint("r", i)), ChangeUpdated, nil)
	}
	if _, err := s.changes.DeleteOne(asAdmin(t), bson.D{{Key: "_id", Value: changeKey(2)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckResume(asAdmin(t), 2); ErrorCodeOf(err) != CodeChangeIDExpired {
		t.Errorf("resume after a dropped change: %v, want %s", err, CodeChangeIDExpired)
	}
	if err := s.CheckResume(asAdmin(t), 3); err != nil {
		t.Errorf("resume after a held change: %v", err)
	}
}

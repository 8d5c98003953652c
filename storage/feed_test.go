package storage

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/changelog"
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
	setHead(t, s, 200_000) // as if that many had been recorded, past what the feed holds
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
	setHead(t, s, head) // as if that many had been recorded
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
	setHead(t, s, head)
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

// setHead writes the head of another process at seq, as if it had
// published that many changes.
func setHead(t testing.TB, s *Store, seq int64) {
	t.Helper()
	_, err := s.db.Collection(changelog.HeadCollection).UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "another process"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		t.Fatal(err)
	}
}

// changedReferral is a referral as a change may leave it, for recording.
func changedReferral(id string) *Referral {
	return &Referral{ID: id, Status: ReferralPending, ReferralSource: SourceP2P}
}

// TestResumeFromADroppedChange: resuming after a change the store has
// dropped (a capped collection trims by size as well as by count) is
// CHANGE_ID_EXPIRED, not a silent gap.
func TestResumeFromADroppedChange(t *testing.T) {
	s := newTestStore(t)
	for i := range 5 {
		record(asAdmin(t), s, changedReferral(fmt.Sprint("r", i)), ChangeUpdated, nil)
	}
	if _, err := s.changes.DeleteOne(asAdmin(t), bson.D{{Key: "_id", Value: changelog.Key(2)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckResume(asAdmin(t), 2); ErrorCodeOf(err) != CodeChangeIDExpired {
		t.Errorf("resume after a dropped change: %v, want %s", err, CodeChangeIDExpired)
	}
	if err := s.CheckResume(asAdmin(t), 3); err != nil {
		t.Errorf("resume after a held change: %v", err)
	}
}

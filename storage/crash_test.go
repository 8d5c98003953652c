package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests cut a store's write path at a step (see reach) as a kill -9
// would: from that moment the store writes nothing more, and the cut
// write returns only when the test ends. Then another store on the same
// database starts, as the restarted process.

// errCrashed unwinds a write cut by crashAt once the test ends.
var errCrashed = errors.New("the process died here")

// crashingStore opens a store on a fresh database on its own client and
// prepares it, as a process that is to die.
func crashingStore(t *testing.T) *Store {
	t.Helper()
	s, err := Connect(t.Context(), Options{URI: testURI, Database: fmt.Sprintf("test_%d", testDBSeq.Add(1)), Embedded: testEmbedded})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Drop(context.Background()) })
	if err := s.Prepare(asAdmin(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

// crashAt cuts s's write path the first time a write reaches step: that
// write, and every write of s after it, stops there for good. The
// returned channel is closed then. When the test ends, s's client is
// closed first, so nothing it held back reaches the store.
func crashAt(t *testing.T, s *Store, step string) <-chan struct{} {
	t.Helper()
	reached, dead := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var crashed atomic.Bool
	s.step = func(at string) {
		if at != step && !crashed.Load() {
			return
		}
		crashed.Store(true)
		once.Do(func() { close(reached) })
		<-dead
		panic(errCrashed)
	}
	t.Cleanup(func() { close(dead) })
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return reached
}

// dying runs write in the background, as a request the crash cuts.
func dying(write func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil && r != errCrashed {
				panic(r)
			}
		}()
		write()
	}()
}

// restart starts another store on dead's database, as the process started
// after dead was killed, with the clock now+shift.
func restart(t *testing.T, dead *Store, shift time.Duration) *Store {
	t.Helper()
	s, err := Connect(t.Context(), Options{URI: testURI, Database: dead.db.Name(), Embedded: testEmbedded,
		Now: func() time.Time { return time.Now().Add(shift) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Prepare(asAdmin(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

// feedOf returns every change s's feed has published, in order.
func feedOf(t *testing.T, s *Store) []Change {
	t.Helper()
	head, err := s.LatestChange(asAdmin(t))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := s.ChangesBetween(asAdmin(t), 0, head)
	if err != nil {
		t.Fatal(err)
	}
	return changes
}

// changesOf counts the changes of type typ to referral id in changes.
func changesOf(changes []Change, id string, typ ChangeType) int {
	n := 0
	for _, c := range changes {
		if c.ReferralID == id && c.Type == typ {
			n++
		}
	}
	return n
}

// TestEveryCommittedWriteGetsOneChange kills a process in the middle of a
// write, after its documents are written (before the change is
// recorded, or before the head is written) and restarts: the feed holds
// exactly one change for the write. The restarted process's clock is past
// abandonedAfter, so recovery is due however it decides.
func TestEveryCommittedWriteGetsOneChange(t *testing.T) {
	type write func(ctx context.Context, s *Store, r *Referral) error
	create := func(ctx context.Context, s *Store, r *Referral) error {
		_, err := s.CreateReferral(ctx, validReferralInput())
		return err
	}
	update := func(ctx context.Context, s *Store, r *Referral) error {
		_, err := s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{Details: &DetailsInput{Notes: ptr("cut")}})
		return err
	}
	status := func(ctx context.Context, s *Store, r *Referral) error {
		_, err := s.ChangeReferralStatus(ctx, r.ID, 1, ReferralActive, nil)
		return err
	}
	invite := func(ctx context.Context, s *Store, r *Referral) error {
		_, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"})
		return err
	}
	for _, tc := range []struct {
		name  string
		write write
		typ   ChangeType
		step  string
	}{
		{"CreateCutBeforeItsChange", create, ChangeCreated, stepWritten},
		{"UpdateCutBeforeItsChange", update, ChangeUpdated, stepWritten},
		{"StatusCutBeforeItsChange", status, ChangeStatus, stepWritten},
		{"InvitationCutBeforeItsChange", invite, ChangeParticipant, stepWritten},
		{"CreateCutBeforeItsHead", create, ChangeCreated, stepHead},
		{"UpdateCutBeforeItsHead", update, ChangeUpdated, stepHead},
		{"InvitationCutBeforeItsHead", invite, ChangeParticipant, stepHead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dead := crashingStore(t)
			ctx := asAdmin(t)
			r := newReferral(t, dead)
			reached := crashAt(t, dead, tc.step)
			dying(func() { _ = tc.write(ctx, dead, r) })
			<-reached
			again := restart(t, dead, abandonedAfter+time.Minute)
			changes := feedOf(t, again)
			if tc.typ == ChangeCreated {
				n := 0
				for _, c := range changes {
					if c.Type == ChangeCreated && c.ReferralID != r.ID {
						n++
					}
				}
				if n != 1 {
					t.Errorf("the feed holds %d CREATED changes of the cut create, want 1: %v", n, changes)
				}
				return
			}
			if n := changesOf(changes, r.ID, tc.typ); n != 1 {
				t.Errorf("the feed holds %d %s changes of referral %s, want 1: %v", n, tc.typ, r.ID, changes)
			}
		})
	}
}

// followFor runs FollowChanges on s from after until stop is called, and
// returns its deliveries; once stop returns, every change it delivered is
// in the channel.
func followFor(t *testing.T, s *Store, after int64) (<-chan Change, func()) {
	t.Helper()
	out := make(chan Change, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.FollowChanges(ctx, after, func(c Change) { out <- c })
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return out, stop
}

// TestRestartResumesAfterWhatWasReceived: a process is killed after
// storing a change and before writing its head, while a subscriber
// follows it. After the restart, resuming after the last change the
// subscriber received is taken, and a new subscription receives the next
// change only, not the one stored before it subscribed.
func TestRestartResumesAfterWhatWasReceived(t *testing.T) {
	dead := crashingStore(t)
	ctx := asAdmin(t)
	received, stop := followFor(t, dead, 0)
	newReferral(t, dead)
	newReferral(t, dead)
	reached := crashAt(t, dead, stepHead)
	dying(func() { newReferral(t, dead) })
	<-reached
	stop()
	var last int64
	for len(received) > 0 {
		last = (<-received).Seq
	}
	if last < 2 {
		t.Fatalf("the subscriber received up to change %d, want at least the 2 answered", last)
	}

	again := restart(t, dead, 0)
	if err := again.CheckResume(ctx, last); err != nil {
		t.Errorf("resuming after change %d, the last received: %v", last, err)
	}
	start, err := again.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh := follow(t, again, start)
	later := newReferral(t, again)
	if c := next(t, fresh); c.ReferralID != later.ID {
		t.Errorf("a new subscription first received change %d of %s, want the one made after it, of %s", c.Seq, c.ReferralID, later.ID)
	}
}

// TestRestartPublishesAStrandedChangeAtOnce: a process is killed after
// storing a change and before writing its head, while another process
// follows the feed. Once the killed one is restarted, the other delivers
// the change without any further write.
func TestRestartPublishesAStrandedChangeAtOnce(t *testing.T) {
	dead := crashingStore(t)
	ctx := asAdmin(t)
	other := restart(t, dead, 0) // a second process on the same store
	start, err := other.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deliveries := follow(t, other, start)
	reached := crashAt(t, dead, stepHead)
	dying(func() { _, _ = dead.CreateReferral(ctx, validReferralInput()) })
	<-reached
	restart(t, dead, 0)
	if c := next(t, deliveries); c.Type != ChangeCreated {
		t.Errorf("delivered %s, want the stranded CREATED", c.Type)
	}
}

// TestWritersAreAnsweredOncePublished: 8 writers record changes at once
// through one process, so that its writers share head updates. No writer
// is answered before the head covers its change: when the process is
// about to write a head, no more writers have been answered than the
// heads cover (the changes are numbered 1, 2, 3… here).
func TestWritersAreAnsweredOncePublished(t *testing.T) {
	s := crashingStore(t)
	ctx := asAdmin(t)
	var answered, early atomic.Int64
	s.step = func(at string) {
		if at != stepHead {
			return
		}
		head, err := s.log.Latest(ctx) // the highest head written
		if err != nil {
			panic(err)
		}
		if n := answered.Load(); n > head {
			early.Store(max(early.Load(), n-head))
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				record(ctx, s, changedReferral(fmt.Sprint("w", w, "-", i)), ChangeUpdated, nil)
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	if n := early.Load(); n > 0 {
		t.Errorf("up to %d writers were answered before a head covered their changes", n)
	}
}

package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"referrals/internal/testclock"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// TestSweepStoppedMidWrite cancels the expiry sweep as it sends the
// participant update of its first expiry, halfway through that expiry's
// write. The sweep finishes that expiry, starts no other and returns
// ctx's error; on the way out it sends nothing but commands by _id and on
// small collections (an undo filtered by more than _id reads
// every participant where only _id is indexed), and it leaves no write
// half done.
func TestSweepStoppedMidWrite(t *testing.T) {
	clock := testclock.At(testAnchor)
	var log filterLog
	ctx, stop := context.WithCancel(asAdmin(t))
	defer stop()
	var armed atomic.Bool
	var once sync.Once
	monitor := log.monitor()
	logStarted := monitor.Started
	monitor.Started = func(c context.Context, e *event.CommandStartedEvent) {
		logStarted(c, e)
		if coll, _ := e.Command.Lookup(e.CommandName).StringValueOK(); armed.Load() && e.CommandName == "update" && coll == "participants" {
			once.Do(stop)
		}
	}
	s := openTestStore(t, Options{Monitor: monitor, Now: clock.Now})
	refs, parts := demoGenerate(5, 200, testAnchor)
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	// Every invitation the demo left open expires within 14 days.
	clock.Advance(15 * 24 * time.Hour)
	var due []string
	for _, p := range parts {
		if p.Status == ParticipantInvited {
			due = append(due, p.ID)
		}
	}
	if len(due) < 3 {
		t.Fatalf("%d invitations due, want a few", len(due))
	}

	log.take()
	armed.Store(true)
	n, err := s.ExpireInvitations(ctx)
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("the stopped sweep expired %d, %v; want the one under way, context canceled", n, err)
	}
	small := map[string]bool{"invitationDue": true, "pendingWrites": true, "changeHeads": true} // changeHeads: a head per process
	for _, f := range log.take() {
		if !small[f.collection] && !idOnly(f) {
			t.Errorf("the stopped sweep sent %s", f)
		}
	}

	got, err := s.ParticipantsByID(asAdmin(t), due)
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, id := range due {
		p := got[id]
		if p.Status == ParticipantExpired {
			expired++
		}
		r, err := s.referralByID(asAdmin(t), p.ReferralID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.Participation {
			if e.ParticipantID == id && e.Status != p.Status {
				t.Errorf("participant %s is %s, its referral's entry %s", id, p.Status, e.Status)
			}
		}
	}
	if expired != 1 {
		t.Errorf("%d of %d invitations expired, want the one under way at the stop", expired, len(due))
	}
	if left, err := s.pending.CountDocuments(asAdmin(t), bson.D{}); err != nil || left != 0 {
		t.Errorf("%d writes (%v) left pending", left, err)
	}
	if left, err := s.due.CountDocuments(asAdmin(t), bson.D{}); err != nil || int(left) != len(due)-1 {
		t.Errorf("%d invitations (%v) still listed as due, want %d", left, err, len(due)-1)
	}
}

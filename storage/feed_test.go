package storage

import (
	"context"

	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestFollowChanges records changes through two stores sharing one
// database (two instances) while a follower runs, and checks each change
// arrives exactly once, in order.
func TestFollowChanges(t *testing.T) {
	a := newTestStore(t)
	b := testStore.WithDatabase(a.db.Name())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.FollowChanges(ctx, func(c Change) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, c.ReferralID)
		})
	}()
	time.Sleep(200 * time.Millisecond) // let the follower open its cursor
	var want []string
	for i := range 40 {
		id := fmt.Sprint("r", i)
		want = append(want, id)
		s := a
		if i%2 == 1 {
			s = b
		}
		s.recordChange(ctx, changedReferral(id), ChangeUpdated, []string{"details.notes"})
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // anything extra would show up now
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v\nwant      %v", got, want)
	}
}

// TestTailResumes ends a cursor part-way through the feed, as when the
// store drops it, and checks the next cursor delivers the rest exactly once.
func TestTailResumes(t *testing.T) {
	s := newTestStore(t)
	var last Change
	if err := s.changes.FindOne(t.Context(), map[string]any{}).Decode(&last); err != nil {
		t.Fatal(err)
	}
	seen := map[bson.ObjectID]time.Time{last.ID: last.At}
	var got []string
	for i := range 10 {
		s.recordChange(t.Context(), changedReferral(fmt.Sprint("r", i)), ChangeUpdated, nil)
	}
	// The first cursor stops after five changes.
	ctx, cancel := context.WithCancel(t.Context())
	from, _ := s.tail(ctx, last.At, seen, func(c Change) {
		got = append(got, c.ReferralID)
		if len(got) == 5 {
			cancel()
		}
	})
	for i := 10; i < 15; i++ {
		s.recordChange(t.Context(), changedReferral(fmt.Sprint("r", i)), ChangeUpdated, nil)
	}
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	s.tail(ctx, from, seen, func(c Change) {
		got = append(got, c.ReferralID)
		if len(got) == 15 {
			go func() { time.Sleep(300 * time.Millisecond); cancel() }() // room for duplicates to show
		}
	})
	var want []string
	for i := range 15 {
		want = append(want, fmt.Sprint("r", i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v\nwant      %v", got, want)
	}
}

// changedReferral is a referral as a change may leave it, for recording.
func changedReferral(id string) *Referral {
	return &Referral{ID: id, Status: ReferralPending, ReferralSource: SourceP2P}
}

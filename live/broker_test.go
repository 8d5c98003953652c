package live

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"referrals/storage"
	"referrals/storage/changelog"
	"referrals/storage/storagetest"
)

var testServer *storagetest.Server

func TestMain(m *testing.M) {
	storagetest.Main(m, nil, func(s *storagetest.Server) { testServer = s })
}

// TestChangeWindowIsBoundedInBytes: the changes the broker keeps for
// subscriptions to read are bounded in bytes as well as in number, so
// large referrals changed often cannot grow the heap without bound: the
// oldest go (a subscription that needs them reads the store or is told to
// resume) and the window's floor follows.
func TestChangeWindowIsBoundedInBytes(t *testing.T) {
	b := NewBroker(nil, slog.New(slog.DiscardHandler), Options{WindowBytes: 20_000})
	small, large := "n", strings.Repeat("n", 5_000)
	publish := func(seq int64, notes *string) {
		b.publish(storage.Change{Header: changelog.Header{Seq: seq}, After: &storage.Referral{ID: "r", Status: storage.ReferralActive, ReferralSource: storage.SourceP2P,
			Details: &storage.ReferralDetails{Notes: notes}}})
	}
	for seq := int64(1); seq <= 20; seq++ {
		publish(seq, &small)
	}
	if len(b.recent) != 20 || b.floor != 0 {
		t.Fatalf("20 small changes: %d kept, floor %d; want all", len(b.recent), b.floor)
	}
	for seq := int64(21); seq <= 40; seq++ {
		publish(seq, &large)
	}
	if b.bytes > b.keepB || len(b.recent) > 4 || len(b.recent) < 3 {
		t.Errorf("after large changes: %d kept, %d bytes; want 3 or 4 within %d", len(b.recent), b.bytes, b.keepB)
	}
	if want := b.recent[0].Seq - 1; b.floor != want || b.recent[len(b.recent)-1].Seq != 40 {
		t.Errorf("floor %d, window %d..%d", b.floor, b.recent[0].Seq, b.recent[len(b.recent)-1].Seq)
	}
}

// TestCatchUpIsChargedToTheIdentity: subscriptions catching up from the
// store read on their identity's budget: once one identity has spent it,
// its next resume waits, while another identity's resume is served.
func TestCatchUpIsChargedToTheIdentity(t *testing.T) {
	store := testServer.NewStore(t, nil)
	b := NewBroker(store, slog.New(slog.DiscardHandler), Options{Window: 4, CatchUpRate: rate.Every(time.Hour), CatchUpBurst: 20})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })

	admin := storage.WithCaller(t.Context(), storage.Caller{Subject: "writer", Role: storage.RoleAdmin})
	r, err := store.CreateReferral(admin, storage.ReferralInput{ReferralSource: storage.SourceP2P, CustomerProfile: &storage.CustomerProfileInput{
		Name: ptr("Budget Ltd"), Address: &storage.Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}})
	if err != nil {
		t.Fatal(err)
	}
	start, err := store.LatestChange(admin) // the creation: 15 changes follow, most older than the window
	if err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 15; v++ {
		if _, err := store.UpdateReferral(admin, r.ID, v, storage.ReferralPatch{Details: &storage.DetailsInput{Notes: ptr("n")}}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait, change by change, until the window has moved past the start.
	for {
		b.mu.Lock()
		floor, changed := b.floor, b.changed
		b.mu.Unlock()
		if floor > start+8 {
			break
		}
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			t.Fatalf("the window stayed at %d, want past %d", floor, start+8)
		}
	}

	resume := func(subject string) <-chan *Event {
		ctx, cancel := context.WithCancel(storage.WithCaller(t.Context(), storage.Caller{Subject: subject, Role: storage.RoleAdmin}))
		t.Cleanup(cancel)
		events, err := b.Events(ctx, nil, &start, "", &endless{t: t})
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
	count := func(events <-chan *Event, want int) int {
		got := 0
		for timeout := time.After(30 * time.Second); got < want; got++ {
			select {
			case <-events:
			case <-timeout:
				return got
			}
		}
		return got
	}
	if got := count(resume("spender"), 15); got != 15 {
		t.Fatalf("the first resume got %d changes, want 15", got)
	}
	resume("spender")
	for deadline := time.Now().Add(10 * time.Second); b.CatchUpsWaiting() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the identity's second resume does not wait for its budget")
		}
	}
	if got := count(resume("other"), 15); got != 15 {
		t.Errorf("another identity's resume got %d changes, want 15", got)
	}
}

// endless is a Stream whose events must not end with an error.
type endless struct{ t *testing.T }

func (endless) Sending(string) {}

func (e *endless) End(err error) { e.t.Errorf("the events ended: %v", err) }

func ptr[T any](v T) *T { return &v }

package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"referrals/graph"
	"referrals/internal/testclock"
	"referrals/live"
	"referrals/storage"
	"referrals/storage/embedded"
	"referrals/webhooks"
	"referrals/webhooks/egress"
)

// deliveryRig is a store on a movable clock with the API's executor and a
// deliverer over it, as the server wires them, for tests that move time.
type deliveryRig struct {
	store *storage.Store
	clock *testclock.Clock
	d     *webhooks.Deliverer
	admin context.Context
}

func newDeliveryRig(t testing.TB, opts webhooks.Options) *deliveryRig {
	t.Helper()
	return newDeliveryRigAt(t, opts, nil)
}

// newDeliveryRigAt is newDeliveryRig on the clock now (time.Now when nil:
// the rig's clock is then not moved).
func newDeliveryRigAt(t testing.TB, opts webhooks.Options, now func() time.Time) *deliveryRig {
	t.Helper()
	level := slog.LevelInfo
	if _, bench := t.(*testing.B); bench { // a line per attempt would drown the results
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
	embedded, err := embedded.Start(t.TempDir(), "", logger)
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.At(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
	if now == nil {
		now = clock.Now
	}
	store, err := storage.Connect(t.Context(), storage.Options{URI: embedded.URI(), Database: "referrals", Embedded: embedded, Logger: logger, Now: now})
	if err != nil {
		embedded.Stop()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var background sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		background.Wait()
		_ = store.Close(context.Background())
		embedded.Stop()
	})
	if err := store.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	broker := live.NewBroker(store, logger, live.Options{})
	renderer := &graph.EventRenderer{IDs: store.EventIDs()}
	opts.Logger = logger
	d := webhooks.New(store, renderer, opts)
	renderer.Exec = graph.NewExecutor(store, broker, logger, nil, graph.Options{Hooks: store, Deliverer: d})
	broker.OnChange(d.Kick)
	background.Go(func() { _ = broker.Run(ctx) })
	background.Go(func() { _ = d.Run(ctx) })
	admin := storage.WithCaller(ctx, storage.Caller{Subject: "admin", Role: storage.RoleAdmin})
	return &deliveryRig{store: store, clock: clock, d: d, admin: admin}
}

// hook registers a webhook for url as an admin.
func (r *deliveryRig) hook(t testing.TB, url string) *storage.Webhook {
	t.Helper()
	w := &storage.Webhook{ID: uuid.NewString(), URL: url, Secrets: []storage.WebhookSecret{{Secret: webhooks.NewSecret()}}}
	if err := r.store.CreateWebhook(r.admin, w); err != nil {
		t.Fatal(err)
	}
	return w
}

// create makes a referral as an admin.
func (r *deliveryRig) create(t testing.TB, name string) {
	t.Helper()
	_, err := r.store.CreateReferral(r.admin, storage.ReferralInput{ReferralSource: storage.SourcePartnerLed,
		CustomerProfile: &storage.CustomerProfileInput{Name: &name, Address: &storage.Address{AddressLine1: "1 Main Street", City: "Leeds", Country: "GB"}}})
	if err != nil {
		t.Fatal(err)
	}
}

// only returns the webhook's one delivery once it has attempts attempts.
func (r *deliveryRig) only(t *testing.T, webhookID string, attempts int) *storage.WebhookDelivery {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		p, err := r.store.Deliveries(r.admin, webhookID, nil, storage.PageArgs{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) == 1 && len(p.Items[0].Attempts) == attempts {
			return p.Items[0]
		}
	}
	t.Fatalf("no delivery with %d attempts within a minute", attempts)
	return nil
}

// TestWebhookRetryScheduleOnAClock: each failed attempt is followed by the
// next after the schedule's delay (within its jitter), nothing is
// attempted before it is due, and a webhook failing every attempt for
// DisableAfter is disabled with the reason.
func TestWebhookRetryScheduleOnAClock(t *testing.T) {
	rc := newReceiver(t, func(int, hookRequest) int { return http.StatusInternalServerError })
	rig := newDeliveryRig(t, webhooks.Options{Schedule: []time.Duration{0, time.Hour, 2 * time.Hour, 2 * time.Hour},
		DisableAfter: 150 * time.Minute, Egress: egress.Policy{AllowPrivate: true}})
	w := rig.hook(t, rc.URL)
	start := rig.clock.Now()
	rig.create(t, "Scheduled Ltd")
	rc.next(t)
	d := rig.only(t, w.ID, 1)
	next := d.NextAttemptAt
	if d.Status != storage.DeliveryFailing || next == nil || next.Before(start.Add(54*time.Minute)) || next.After(start.Add(66*time.Minute)) {
		t.Fatalf("after the first failure: %s, next attempt %v; want FAILING, due an hour later ±10%%", d.Status, next)
	}

	rig.clock.Advance(next.Sub(start) - time.Second) // not yet due
	rig.d.Kick()
	rig.clock.Advance(time.Second) // due
	rig.d.Kick()
	rc.next(t)
	d = rig.only(t, w.ID, 2)
	if got := d.Attempts[1].At; got.Before(*next) {
		t.Errorf("second attempt at %v, before it was due at %v", got, next)
	}
	if lag := d.NextAttemptAt.Sub(d.Attempts[1].At); lag < 108*time.Minute || lag > 132*time.Minute {
		t.Errorf("third attempt due %v after the second, want 2 h ±10%%", lag)
	}

	rig.clock.Advance(d.NextAttemptAt.Sub(rig.clock.Now()))
	rig.d.Kick()
	rc.next(t)
	d = rig.only(t, w.ID, 3)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		got, err := rig.store.Webhook(rig.admin, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Enabled {
			if got.DisabledReason == nil || !strings.Contains(*got.DisabledReason, "every attempt failed") {
				t.Errorf("disabled with reason %v", got.DisabledReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still enabled after failing for %v", rig.clock.Now().Sub(start))
		}
	}
	if d.Status != storage.DeliveryFailing {
		t.Errorf("delivery %s after its third of four attempts, want FAILING", d.Status)
	}
}

// rebinding resolves every name to public, until it is told to answer
// with the loopback address of the receiver (DNS rebinding).
type rebinding struct{ loopback atomic.Bool }

func (r *rebinding) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	if r.loopback.Load() {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("203.0.114.7")}, nil
}

// TestWebhookDialsOnlyPublicAddresses: a name that resolves to a public
// address when it is registered and to loopback when a delivery is made
// is refused at the dial: the attempt fails naming why and the loopback
// receiver gets nothing.
func TestWebhookDialsOnlyPublicAddresses(t *testing.T) {
	rc := newReceiver(t, nil)
	dns := &rebinding{}
	rig := newDeliveryRig(t, webhooks.Options{Schedule: []time.Duration{0}, Egress: egress.Policy{Resolver: dns}})
	url := "https://hooks.example.com:" + rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	if err := rig.d.CheckURL(rig.admin, url); err != nil {
		t.Fatalf("%s refused while it resolves to a public address: %v", url, err)
	}
	w := rig.hook(t, url)
	dns.loopback.Store(true)
	rig.create(t, "Rebound Ltd")
	d := rig.only(t, w.ID, 1)
	if a := d.Attempts[0]; a.ResponseStatus != nil || a.Error == nil || !strings.Contains(*a.Error, "loopback") || d.Status != storage.DeliveryFailed {
		t.Errorf("attempt %+v (%s), want it refused at the dial naming loopback", a, d.Status)
	}
	select {
	case r := <-rc.got:
		t.Errorf("the loopback receiver got %s", r.body)
	default:
	}
}

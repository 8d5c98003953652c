// Package webhooks delivers referral changes to the URLs integrators
// register: for each webhook, every change its owner's subscription would
// receive is recorded as a delivery in the store before its first
// attempt, POSTed signed as the Standard Webhooks specification says, and
// retried on a schedule until an attempt succeeds or the schedule ends.
//
// Any number of processes on one database deliver together: a delivery
// is made once per webhook and change (its _id holds both), and each
// attempt is claimed in the store before it is made, so no two processes
// make it at once. A process killed at any moment leaves every change
// behind a webhook's cursor with its delivery recorded, and every
// delivery's next attempt due, for whichever process runs next.
//
// It imports storage (webhooks, deliveries, the change feed) and egress
// (the only HTTP client deliveries leave by); what a delivery's body says
// of a change is the Renderer's, which the GraphQL layer provides.
package webhooks

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"referrals/storage"
	"referrals/webhooks/egress"
)

// DefaultSchedule is the delay before each attempt of a delivery: at once,
// then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the one before,
// each with up to a tenth of jitter (the Standard Webhooks schedule).
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Options configure a Deliverer.
type Options struct {
	// Timeout bounds one attempt (connection, TLS, response headers and
	// the first KiB of the body); 10 s when zero.
	Timeout time.Duration
	// Schedule is the delay before each attempt; DefaultSchedule when nil.
	Schedule []time.Duration
	// DisableAfter disables a webhook whose attempts have all failed for
	// that long; 5 days when zero.
	DisableAfter time.Duration
	// Egress decides where deliveries may go (see egress.Policy).
	Egress egress.Policy
	// Concurrency bounds the attempts in flight in this process (32 when
	// zero), PerWebhook those to one webhook (4 when zero): a slow or dead
	// endpoint holds its own slots, not the others'.
	Concurrency int
	PerWebhook  int
	// Poll is how often due retries are looked for when nothing wakes the
	// deliverer sooner (other processes' redeliveries); 5 s when zero.
	Poll time.Duration
	// Logger receives one line per attempt.
	Logger *slog.Logger
	// Registerer, when set, receives the delivery metrics.
	Registerer prometheus.Registerer
}

// Renderer says what a webhook receives of a change.
type Renderer interface {
	// Render returns the id and the data of change c as a subscription of
	// owner with filter would receive them, and ok false when it would
	// not receive it at all.
	Render(ctx context.Context, owner storage.Caller, filter *storage.ReferralFilter, c storage.Change) (id string, data json.RawMessage, ok bool, err error)
}

// Deliverer makes and attempts the deliveries of every webhook.
type Deliverer struct {
	store   *storage.Store
	render  Renderer
	opts    Options
	client  *http.Client
	logger  *slog.Logger
	metrics *metrics
	wake    chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // delivery ids attempted now by this process
	perHook  map[string]int  // attempts in flight by webhook
	total    int
	idle     chan struct{} // closed when an attempt ends (tests wait on it)
}

// New returns a Deliverer over store; Run starts it.
func New(store *storage.Store, render Renderer, opts Options) *Deliverer {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Schedule == nil {
		opts.Schedule = DefaultSchedule
	}
	if opts.DisableAfter == 0 {
		opts.DisableAfter = 5 * 24 * time.Hour
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 32
	}
	if opts.PerWebhook == 0 {
		opts.PerWebhook = 4
	}
	if opts.Poll == 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Deliverer{store: store, render: render, opts: opts, client: opts.Egress.Client(opts.Timeout), logger: opts.Logger,
		wake: make(chan struct{}, 1), inflight: map[string]bool{}, perHook: map[string]int{}, idle: make(chan struct{})}
	d.metrics = newMetrics(opts.Registerer, d)
	return d
}

// Kick makes Run look for changes and due attempts now: the feed calls it
// for each change, and tests after moving the clock.
func (d *Deliverer) Kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// CheckURL refuses a URL deliveries may not be made to.
func (d *Deliverer) CheckURL(ctx context.Context, url string) error {
	if err := d.opts.Egress.CheckURL(ctx, url); err != nil {
		return storage.Errorf(storage.CodeBadUserInput, "%s", err.Error())
	}
	return nil
}

// NewSecret returns a signing secret: whsec_ and the base64 of 32 random
// bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = crand.Read(b) // never fails (crypto/rand)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Run makes deliveries and attempts them until ctx ends; attempts in
// flight then end with ctx.
func (d *Deliverer) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-timer.C:
		}
		next := d.pass(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// pass makes the deliveries of the changes recorded since each webhook's
// cursor, starts the attempts that are due, and returns how long to wait
// before the next pass unless something wakes it.
func (d *Deliverer) pass(ctx context.Context) time.Duration {
	wait := d.opts.Poll
	hooks, err := d.store.AllWebhooks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.WarnContext(ctx, "read webhooks", "error", err)
		}
		return wait
	}
	head, err := d.store.LatestChange(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.WarnContext(ctx, "read the change feed's head for webhooks", "error", err)
		}
		return wait
	}
	for _, w := range hooks {
		if !w.Enabled {
			continue
		}
		if err := d.makeDeliveries(ctx, w, head); err != nil && ctx.Err() == nil {
			d.logger.WarnContext(ctx, "make webhook deliveries", "webhook_id", w.ID, "error", err)
		}
		if due := d.startDue(ctx, w); due > 0 && due < wait {
			wait = due
		}
	}
	return wait
}

// fanOutChunk is how many changes a webhook's deliveries are made for at
// a time.
const fanOutChunk = 100

// makeDeliveries records a delivery for each change after w's cursor up
// to head that w receives, then moves the cursor past them: a process
// that dies between the two leaves the cursor behind, and the next pass
// (in any process) makes the same deliveries again, which the store keeps
// once.
func (d *Deliverer) makeDeliveries(ctx context.Context, w *storage.Webhook, head int64) error {
	owner := Owner(w)
	for w.Cursor < head {
		upTo := min(head, w.Cursor+fanOutChunk)
		changes, err := d.store.ChangesBetween(ctx, w.Cursor, upTo)
		if err != nil {
			return err
		}
		var ds []*storage.WebhookDelivery
		for _, c := range changes {
			if len(w.Events) > 0 && !containsType(w.Events, c.Type) {
				continue
			}
			id, data, ok, err := d.render.Render(ctx, owner, w.Filter, c)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			body, err := json.Marshal(struct {
				Type      string          `json:"type"`
				Timestamp time.Time       `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}{EventType(c.Type), c.At.UTC(), data})
			if err != nil {
				return err
			}
			now := d.store.Now()
			ds = append(ds, &storage.WebhookDelivery{ID: w.ID + ":" + id, WebhookID: w.ID, EventID: id, EventType: EventType(c.Type), ReferralID: &c.ReferralID,
				Body: string(body), Status: storage.DeliveryPending, Seq: c.Seq, CreatedDateTime: now, NextAttemptAt: &now, Attempts: []storage.DeliveryAttempt{}})
		}
		if err := d.store.InsertDeliveries(ctx, ds); err != nil {
			return err
		}
		d.metrics.made.Add(float64(len(ds)))
		if err := d.store.AdvanceWebhookCursor(ctx, w.ID, upTo); err != nil {
			return err
		}
		w.Cursor = upTo
	}
	return nil
}

func containsType(types []storage.ChangeType, t storage.ChangeType) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

// EventType is the body's type of a change: referral.created,
// referral.updated, referral.status_changed, referral.participant_changed.
func EventType(t storage.ChangeType) string {
	return "referral." + strings.ToLower(string(t))
}

// PingType is the body's type of a ping.
const PingType = "webhook.ping"

// Owner is the caller whose view a webhook receives: its organization's
// partners, or an admin.
func Owner(w *storage.Webhook) storage.Caller {
	if w.OrganizationID == "" {
		return storage.Caller{Subject: "webhook:" + w.ID, Role: storage.RoleAdmin}
	}
	return storage.Caller{Subject: "webhook:" + w.ID, OrganizationID: w.OrganizationID, Role: storage.RolePartner}
}

// startDue starts the due attempts of w that its free slots allow, and
// returns how long until its next open delivery is due (0 when none is
// known).
func (d *Deliverer) startDue(ctx context.Context, w *storage.Webhook) time.Duration {
	d.mu.Lock()
	free := min(d.opts.PerWebhook-d.perHook[w.ID], d.opts.Concurrency-d.total)
	d.mu.Unlock()
	if free > 0 {
		due, err := d.store.DueDeliveries(ctx, w.ID, d.store.Now(), free+d.inflightOf(w.ID))
		if err != nil {
			if ctx.Err() == nil {
				d.logger.WarnContext(ctx, "find due webhook deliveries", "webhook_id", w.ID, "error", err)
			}
			return 0
		}
		for _, del := range due {
			if free == 0 {
				break
			}
			if d.start(ctx, w, del) {
				free--
			}
		}
	}
	next, err := d.store.NextDue(ctx, w.ID)
	if err != nil || next == nil {
		return 0
	}
	return max(next.Sub(d.store.Now()), time.Millisecond)
}

// inflightOf counts w's attempts in flight in this process, which the
// due deliveries read may include.
func (d *Deliverer) inflightOf(webhookID string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.perHook[webhookID]
}

// start claims the next attempt of del and makes it in the background;
// false when it is in flight here already or claimed elsewhere.
func (d *Deliverer) start(ctx context.Context, w *storage.Webhook, del *storage.WebhookDelivery) bool {
	d.mu.Lock()
	if d.inflight[del.ID] {
		d.mu.Unlock()
		return false
	}
	d.inflight[del.ID] = true
	d.perHook[w.ID]++
	d.total++
	d.mu.Unlock()
	ok, err := d.store.ClaimAttempt(ctx, del.ID, len(del.Attempts), d.lease())
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			d.logger.WarnContext(ctx, "claim a webhook attempt", "delivery_id", del.ID, "error", err)
		}
		d.done(w.ID, del.ID)
		return false
	}
	go func() {
		defer d.Kick() // its slot is free: look for more
		defer d.done(w.ID, del.ID)
		d.attempt(ctx, w, del)
	}()
	return true
}

// lease is how long a claimed attempt is another process's: longer than
// an attempt can take.
func (d *Deliverer) lease() time.Duration { return 2*d.opts.Timeout + time.Second }

func (d *Deliverer) done(webhookID, deliveryID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, deliveryID)
	d.perHook[webhookID]--
	if d.perHook[webhookID] == 0 {
		delete(d.perHook, webhookID)
	}
	d.total--
	close(d.idle)
	d.idle = make(chan struct{})
}

// jitter spreads a delay by up to a tenth either way.
func jitter(delay time.Duration) time.Duration {
	if delay <= 0 {
		return 0
	}
	return delay - delay/10 + rand.N(delay/5+1)
}

// NewSecret is the package's NewSecret, for the resolvers.
func (d *Deliverer) NewSecret() string { return NewSecret() }

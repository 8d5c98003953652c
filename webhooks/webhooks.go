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
	"slices"
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
	// Concurrency bounds the attempts in flight in this process (256 when
	// zero), PerWebhook those to one webhook (4 when zero), and a webhook
	// whose last attempt failed has one at a time: a slow or dead endpoint
	// holds one slot, not the others' (eight hanging webhooks holding four
	// each filled the 32 slots there were and held the others up).
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
	slots   chan struct{} // Concurrency: one per attempt in flight

	// state guards the failure record (FailingSince, Enabled) of the
	// webhooks being attempted, which their attempts update.
	state sync.Mutex

	mu       sync.Mutex
	hooks    map[string]*hookState // by webhook id, while a drainer runs
	inflight map[string]bool       // delivery ids attempted now by this process
}

// hookState is what a webhook's drainer works through: deliveries this
// process made and reserved for itself, then the store's due ones.
type hookState struct {
	mu       sync.Mutex
	webhook  *storage.Webhook
	reserved []*storage.WebhookDelivery
	running  bool // a drainer runs
	dirty    bool // work came since the drainer last looked
	slots    chan struct{}
	failing  chan struct{} // the one slot of a failing webhook
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
		opts.Concurrency = 256
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
		wake: make(chan struct{}, 1), slots: make(chan struct{}, opts.Concurrency), hooks: map[string]*hookState{}, inflight: map[string]bool{}}
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
// cursor, sets each webhook's drainer to attempt what is due, and returns
// how long to wait before the next pass unless something wakes it.
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
	rendered := renderCache{}
	for _, w := range hooks {
		if !w.Enabled {
			continue
		}
		made, err := d.makeDeliveries(ctx, w, head, rendered)
		if err != nil && ctx.Err() == nil {
			d.logger.WarnContext(ctx, "make webhook deliveries", "webhook_id", w.ID, "error", err)
		}
		d.drain(ctx, w, made)
		next, err := d.store.NextDue(ctx, w.ID)
		if err == nil && next != nil {
			wait = min(wait, max(next.Sub(d.store.Now()), time.Millisecond))
		}
	}
	return wait
}

// fanOutChunk is how many changes a webhook's deliveries are made for at
// a time.
const fanOutChunk = 100

// renderKey names what a change renders to for webhooks without a filter:
// the owner's organization and the change.
type renderKey struct {
	org string
	seq int64
}

type rendered struct {
	id   string
	data json.RawMessage
	ok   bool
}

// renderCache keeps, for one pass, each change's rendering for each owner,
// which the webhooks of one owner share.
type renderCache map[renderKey]rendered

// makeDeliveries records a delivery for each change after w's cursor up
// to head that w receives, then moves the cursor past them: a process
// that dies between the two leaves the cursor behind, and the next pass
// (in any process) makes the same deliveries again, which the store keeps
// once. The deliveries it recorded first are reserved for this process
// for a lease (their first attempt is due after it, for any other) and
// returned.
func (d *Deliverer) makeDeliveries(ctx context.Context, w *storage.Webhook, head int64, cache renderCache) ([]*storage.WebhookDelivery, error) {
	owner := Owner(w)
	var made []*storage.WebhookDelivery
	for w.Cursor < head {
		upTo := min(head, w.Cursor+fanOutChunk)
		changes, err := d.store.ChangesBetween(ctx, w.Cursor, upTo)
		if err != nil {
			return made, err
		}
		var ds []*storage.WebhookDelivery
		for _, c := range changes {
			if len(w.Events) > 0 && !slices.Contains(w.Events, c.Type) {
				continue
			}
			key := renderKey{owner.OrganizationID, c.Seq}
			r, hit := cache[key]
			if !hit || w.Filter != nil {
				r.id, r.data, r.ok, err = d.render.Render(ctx, owner, w.Filter, c)
				if err != nil {
					return made, err
				}
				if w.Filter == nil {
					cache[key] = r
				}
			}
			if !r.ok {
				continue
			}
			body, err := json.Marshal(struct {
				Type      string          `json:"type"`
				Timestamp time.Time       `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}{EventType(c.Type), c.At.UTC(), r.data})
			if err != nil {
				return made, err
			}
			now := d.store.Now()
			reservedUntil := now.Add(d.lease())
			ds = append(ds, &storage.WebhookDelivery{ID: w.ID + ":" + r.id, WebhookID: w.ID, EventID: r.id, EventType: EventType(c.Type), ReferralID: &c.ReferralID,
				Body: string(body), Status: storage.DeliveryPending, Seq: c.Seq, CreatedDateTime: now, NextAttemptAt: &reservedUntil, Attempts: []storage.DeliveryAttempt{}})
		}
		mine, err := d.store.InsertDeliveries(ctx, ds)
		if err != nil {
			return made, err
		}
		made = append(made, mine...)
		d.metrics.made.Add(float64(len(mine)))
		if err := d.store.AdvanceWebhookCursor(ctx, w.ID, upTo); err != nil {
			return made, err
		}
		w.Cursor = upTo
	}
	return made, nil
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

// drain hands w's reserved deliveries to its drainer, starting one unless
// it runs: the drainer attempts them, then whatever of w the store has
// due, at most PerWebhook at once, until nothing is left.
func (d *Deliverer) drain(ctx context.Context, w *storage.Webhook, reserved []*storage.WebhookDelivery) {
	d.mu.Lock()
	h, ok := d.hooks[w.ID]
	if !ok {
		h = &hookState{slots: make(chan struct{}, d.opts.PerWebhook), failing: make(chan struct{}, 1)}
		d.hooks[w.ID] = h
	}
	d.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.webhook = w
	h.reserved = append(h.reserved, reserved...)
	if h.running {
		h.dirty = true
		return
	}
	h.running = true
	go d.drainer(ctx, h)
}

// drainer attempts h's reserved deliveries, then the due ones the store
// holds, until there are none; then it ends.
func (d *Deliverer) drainer(ctx context.Context, h *hookState) {
	for ctx.Err() == nil {
		h.mu.Lock()
		w, batch := h.webhook, h.reserved
		h.reserved, h.dirty = nil, false
		h.mu.Unlock()
		if len(batch) == 0 {
			batch = d.due(ctx, w)
		}
		if len(batch) == 0 {
			h.mu.Lock()
			if !h.dirty {
				h.running = false
				h.mu.Unlock()
				return
			}
			h.mu.Unlock()
			continue
		}
		for _, del := range batch {
			d.state.Lock()
			failing := w.FailingSince != nil
			d.state.Unlock()
			if !d.take(ctx, h, failing) {
				break
			}
			if !d.start(ctx, w, del) {
				d.give(h, failing)
				continue
			}
			go func() {
				defer d.give(h, failing)
				defer d.done(del.ID)
				d.attempt(ctx, w, del)
			}()
		}
	}
	h.mu.Lock()
	h.running = false
	h.mu.Unlock()
}

// due returns w's deliveries the store has due and this process is not
// attempting.
func (d *Deliverer) due(ctx context.Context, w *storage.Webhook) []*storage.WebhookDelivery {
	d.mu.Lock()
	inflight := len(d.inflight)
	d.mu.Unlock()
	due, err := d.store.DueDeliveries(ctx, w.ID, d.store.Now(), 2*d.opts.PerWebhook+inflight)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.WarnContext(ctx, "find due webhook deliveries", "webhook_id", w.ID, "error", err)
		}
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := due[:0]
	for _, del := range due {
		if !d.inflight[del.ID] {
			out = append(out, del)
		}
	}
	return out
}

// take waits for a slot of h (its one slot too when it is failing) and
// one of the process; false when ctx ends.
func (d *Deliverer) take(ctx context.Context, h *hookState, failing bool) bool {
	held := []chan struct{}{}
	for _, slots := range []chan struct{}{h.slots, h.failing, d.slots} {
		if slots == h.failing && !failing {
			continue
		}
		select {
		case slots <- struct{}{}:
			held = append(held, slots)
		case <-ctx.Done():
			for _, s := range held {
				<-s
			}
			return false
		}
	}
	return true
}

func (d *Deliverer) give(h *hookState, failing bool) {
	<-d.slots
	if failing {
		<-h.failing
	}
	<-h.slots
}

// start marks del in flight here and makes sure no other process makes
// its next attempt: a delivery this process made and still holds the
// reservation of needs nothing more, any other is claimed in the store.
// It is false when del is in flight here already or claimed elsewhere.
func (d *Deliverer) start(ctx context.Context, w *storage.Webhook, del *storage.WebhookDelivery) bool {
	d.mu.Lock()
	if d.inflight[del.ID] {
		d.mu.Unlock()
		return false
	}
	d.inflight[del.ID] = true
	d.mu.Unlock()
	reserved := len(del.Attempts) == 0 && del.NextAttemptAt != nil && d.store.Now().Add(d.opts.Timeout).Before(*del.NextAttemptAt) &&
		del.Status == storage.DeliveryPending && del.Round == 0 && del.MadeHere
	if reserved {
		return true
	}
	ok, err := d.store.ClaimAttempt(ctx, del.ID, len(del.Attempts), d.lease())
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			d.logger.WarnContext(ctx, "claim a webhook attempt", "delivery_id", del.ID, "error", err)
		}
		d.done(del.ID)
		return false
	}
	return true
}

// lease is how long a reservation or claimed attempt is one process's:
// longer than an attempt can take.
func (d *Deliverer) lease() time.Duration { return 2*d.opts.Timeout + time.Second }

func (d *Deliverer) done(deliveryID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, deliveryID)
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

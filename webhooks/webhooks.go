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
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"referrals/storage"
	"referrals/webhooks/egress"
)

// defaultSchedule is the delay before each attempt of a delivery: at once,
// then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the one before,
// each with up to a tenth of jitter (the Standard Webhooks schedule).
var defaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Options configure a Deliverer.
type Options struct {
	// Timeout bounds one attempt (connection, TLS, response headers and
	// the first KiB of the body); 10 s when zero.
	Timeout time.Duration
	// Schedule is the delay before each attempt; defaultSchedule when nil.
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
		opts.Schedule = defaultSchedule
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

// NewSecret is the package's NewSecret, for the resolvers.
func (d *Deliverer) NewSecret() string { return NewSecret() }

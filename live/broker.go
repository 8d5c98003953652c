// Package live delivers referral changes as they happen: the broker that
// fans the store's change feed out to this process's subscriptions, the
// event each subscriber may see of a change (its filter, its redaction,
// its id for the subscriber's audience), and where a subscription
// resumes. The GraphQL subscription (package graph) and webhooks render
// what it gives.
//
// It imports storage only: the HTTP edge hands it what it needs (the
// Last-Event-ID header, the request id) as values.
package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/time/rate"

	"referrals/storage"
)

// recentChanges is how many of the latest changes the broker keeps in
// memory, for every subscription to read at its own pace: one that falls
// further behind is ended with SUBSCRIBER_TOO_SLOW, so that one slow
// client never holds the others up nor makes the server keep more.
const recentChanges = 1024

// recentBytes bounds the memory those changes take, each counted by the
// size of its referral as BSON: a window of large referrals keeps fewer.
const recentBytes = 16 << 20

// storeChunk is how many sequence numbers a subscription resuming from
// further back than recentChanges reads from the store at a time.
const storeChunk = 100

// Catching up from the store is charged to the identity (token subject)
// that resumes: its subscriptions together read at most catchUpRate
// changes a second once they have read catchUpBurst, however many they
// are, while other identities' go on unhindered. The burst lets one resume
// from as far back as allowed (storage.MaxResumeBack) start at once.
const (
	catchUpRate  = 1000
	catchUpBurst = storage.MaxResumeBack
)

// maxBudgets is how many identities' catch-up budgets the broker keeps
// before it forgets those that are full again (they owe nothing).
const maxBudgets = 1024

// Broker fans the store's change feed out to this process's subscribers:
// one feed reader, however many subscriptions. It keeps the latest
// recentChanges changes; each subscription reads them from its own
// position, which is how one resumes after an event.
type Broker struct {
	store  Feed
	logger *slog.Logger
	ready  chan struct{} // closed once Run has found where the feed starts

	mu      sync.Mutex
	keep    int              // Options.Window
	keepB   int              // Options.WindowBytes
	recent  []storage.Change // in sequence order
	sizes   []int            // of each of recent
	bytes   int              // the sum of sizes
	floor   int64            // recent holds every change numbered after floor
	changed chan struct{}    // closed when a change is added
	subs    int
	budgets map[string]*rate.Limiter // catching up from the store, by identity
	rate    rate.Limit               // Options.CatchUpRate
	burst   int                      // Options.CatchUpBurst
	waiting int                      // subscriptions waiting for their identity's budget
	notify  func()                   // called after each change is added (OnChange)
}

// OnChange makes the broker call f after each change it adds, before Run
// starts (the webhook deliverer is told of changes this way).
func (b *Broker) OnChange(f func()) { b.notify = f }

// Options size a broker's window and its catch-up budgets; a zero field
// takes its default (recentChanges, recentBytes, catchUpRate,
// catchUpBurst). Tests make them small to reach their edges.
type Options struct {
	Window       int        // changes kept in memory
	WindowBytes  int        // bytes those changes may take
	CatchUpRate  rate.Limit // changes a second one identity reads from the store
	CatchUpBurst int        // changes it reads before the rate applies
}

// NewBroker returns a broker over feed; Run starts it.
func NewBroker(feed Feed, logger *slog.Logger, opts Options) *Broker {
	b := &Broker{store: feed, logger: logger, ready: make(chan struct{}), changed: make(chan struct{}), keep: opts.Window, keepB: opts.WindowBytes,
		budgets: map[string]*rate.Limiter{}, rate: opts.CatchUpRate, burst: opts.CatchUpBurst}
	if b.keep == 0 {
		b.keep = recentChanges
	}
	if b.keepB == 0 {
		b.keepB = recentBytes
	}
	if b.rate == 0 {
		b.rate = catchUpRate
	}
	if b.burst == 0 {
		b.burst = catchUpBurst
	}
	return b
}

// feedRetry paces Run's attempts to find where the feed starts while the
// store does not answer.
const feedRetry = time.Second

// Run follows the change feed from its newest change until ctx ends.
func (b *Broker) Run(ctx context.Context) error {
	start, err := b.store.LatestChange(ctx)
	for err != nil {
		b.logger.WarnContext(ctx, "find the change feed's newest change", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(feedRetry):
		}
		start, err = b.store.LatestChange(ctx)
	}
	b.floor = start
	close(b.ready)
	return b.store.FollowChanges(ctx, start, b.publish)
}

// EventIDs returns the ids events are handed out and resumed with.
func (b *Broker) EventIDs() *storage.EventIDs { return b.store.EventIDs() }

// publish adds a change for the subscriptions to read. Its id is made for
// each subscriber's audience as it is sent.
func (b *Broker) publish(c storage.Change) {
	size := changeSize(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recent, b.sizes, b.bytes = append(b.recent, c), append(b.sizes, size), b.bytes+size
	drop := 0
	for n := len(b.recent); n-drop > 1 && (n-drop > b.keep || b.bytes > b.keepB); drop++ {
		b.bytes -= b.sizes[drop]
	}
	if drop > 0 {
		b.floor = b.recent[drop-1].Seq
		b.recent, b.sizes = b.recent[drop:], b.sizes[drop:]
		if cap(b.recent) > 4*b.keep { // let go of the arrays once they have grown
			b.recent = append(make([]storage.Change, 0, 2*b.keep), b.recent...)
			b.sizes = append(make([]int, 0, 2*b.keep), b.sizes...)
		}
	}
	close(b.changed)
	b.changed = make(chan struct{})
	if b.notify != nil {
		b.notify()
	}
}

// changeSize is about the memory c takes in the window: its referral as
// BSON, and a little for the rest.
func changeSize(c storage.Change) int {
	size := 256
	if c.After != nil {
		b, err := bson.Marshal(c.After)
		if err != nil { // a referral the store would refuse: its JSON is as large
			b, _ = json.Marshal(c.After)
		}
		size += len(b)
	}
	return size
}

// Subscribers returns how many subscriptions this process serves.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs
}

// CatchUpsWaiting returns how many subscriptions of this process wait for
// their identity's budget to catch up from the store.
func (b *Broker) CatchUpsWaiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

// Subscription is one subscriber's position in the feed.
type Subscription struct {
	b         *Broker
	pos       int64  // the sequence number of the last change read
	live      bool   // reading from memory (not catching up from the store): falling out of it ends the subscription
	identity  string // whose budget catching up from the store spends
	requestID string // of the request that subscribed, for the log
	once      sync.Once
}

// Subscribe starts a subscription of ctx's caller after the change
// numbered after, or, when after is nil, after the newest change recorded:
// a new subscription gets only changes recorded after it started.
// Resuming after a change the feed no longer holds, or from further back
// than storage.MaxResumeBack, is CodeChangeIDExpired, answered before any
// change is read.
// requestID names the subscribing request in the log.
func (b *Broker) Subscribe(ctx context.Context, after *int64, requestID string) (*Subscription, error) {
	select {
	case <-b.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := &Subscription{b: b, live: after == nil, identity: storage.CallerFrom(ctx).Subject, requestID: requestID}
	if after != nil {
		if err := b.store.CheckResume(ctx, *after); err != nil {
			return nil, err
		}
		s.pos = *after
	} else {
		latest, err := b.store.LatestChange(ctx)
		if err != nil {
			return nil, err
		}
		s.pos = latest
	}
	b.mu.Lock()
	b.subs++
	b.mu.Unlock()
	return s, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		s.b.subs--
		s.b.mu.Unlock()
	})
}

// Next returns the changes after the last one read, in order, waiting
// until there is one. It fails with CodeSubscriberTooSlow once the
// subscription has fallen more than recentChanges behind, and with ctx's
// error when ctx ends.
func (s *Subscription) Next(ctx context.Context) ([]storage.Change, error) {
	b := s.b
	for {
		b.mu.Lock()
		floor, changed := b.floor, b.changed
		if s.pos >= floor {
			s.live = true
			i := sort.Search(len(b.recent), func(i int) bool { return b.recent[i].Seq > s.pos })
			evs := b.recent[i:len(b.recent):len(b.recent)]
			b.mu.Unlock()
			if len(evs) > 0 {
				s.pos = evs[len(evs)-1].Seq
				return evs, nil
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		b.mu.Unlock()
		if s.live {
			b.mu.Lock()
			keep := b.keep
			b.mu.Unlock()
			b.logger.WarnContext(ctx, "dropped a subscriber that fell behind", "behind_more_than", keep)
			return nil, storage.Errorf(storage.CodeSubscriberTooSlow,
				"this subscription fell more than %d events behind and was ended; subscribe again with `after` set to the id of the last event you received", keep)
		}
		if evs, err := s.fromStore(ctx, floor); err != nil || len(evs) > 0 {
			return evs, err
		}
	}
}

// fromStore reads the next changes of a subscription that resumes from
// further back than the broker keeps, up to floor, once its identity's
// budget allows.
func (s *Subscription) fromStore(ctx context.Context, floor int64) ([]storage.Change, error) {
	upTo := min(floor, s.pos+storeChunk)
	if err := s.charge(ctx, int(upTo-s.pos)); err != nil {
		return nil, err
	}
	changes, err := s.b.store.ChangesBetween(ctx, s.pos, upTo)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		id := s.requestID
		s.b.logger.ErrorContext(ctx, "read changes to resume from", "request_id", id, "error", err)
		return nil, storage.Errorf(storage.CodeInternal, "internal error (request id %s)", id)
	}
	s.pos = upTo
	return changes, nil
}

// charge waits until the subscription's identity may read n more changes
// from the store (n is at most storeChunk, within the burst).
func (s *Subscription) charge(ctx context.Context, n int) error {
	r := s.b.budget(s.identity).ReserveN(time.Now(), n)
	d := r.Delay()
	if d == 0 {
		return nil
	}
	s.b.countWaiting(1)
	defer s.b.countWaiting(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel() // give back what it did not read
		return ctx.Err()
	}
}

// budget returns identity's catch-up budget.
func (b *Broker) budget(identity string) *rate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.budgets[identity]; ok {
		return l
	}
	if len(b.budgets) >= maxBudgets {
		now := time.Now()
		for id, l := range b.budgets {
			if l.TokensAt(now) >= float64(l.Burst()) {
				delete(b.budgets, id)
			}
		}
	}
	l := rate.NewLimiter(b.rate, b.burst)
	b.budgets[identity] = l
	return l
}

func (b *Broker) countWaiting(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting += n
}

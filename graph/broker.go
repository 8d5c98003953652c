package graph

import (
	"context"
	"log/slog"
	"sync"

	"referrals/graph/model"
	"referrals/storage"
)

// subscriberBuffer is how many changes a subscriber may fall behind before
// it is dropped, so that one slow client never holds up the others.
const subscriberBuffer = 64

// Broker fans the store's change feed out to this process's subscribers:
// one feed reader, however many subscriptions.
type Broker struct {
	store  ChangeFeed
	logger *slog.Logger

	mu   sync.Mutex
	subs map[chan *model.ReferralChange]struct{}
}

// NewBroker returns a broker over store; Run starts it.
func NewBroker(store ChangeFeed, logger *slog.Logger) *Broker {
	return &Broker{store: store, logger: logger, subs: map[chan *model.ReferralChange]struct{}{}}
}

// Run follows the change feed until ctx ends. It reads changed referrals
// as an admin; each subscription then shows only what its caller may see.
func (b *Broker) Run(ctx context.Context) error {
	ctx = storage.WithCaller(ctx, storage.Caller{Subject: "change-feed", Role: storage.RoleAdmin})
	return b.store.FollowChanges(ctx, func(c storage.Change) { b.publish(ctx, c) })
}

// publish offers a change, with the referral as the change left it, to
// every subscriber; a subscriber whose buffer is full is dropped. Only a
// change that lacks its referral (a change stream event whose document
// was deleted meanwhile) is read from the store.
func (b *Broker) publish(ctx context.Context, c storage.Change) {
	if b.Subscribers() == 0 {
		return
	}
	ref := c.After
	if ref == nil {
		refs, err := b.store.ReferralsByID(ctx, []string{c.ReferralID})
		if err != nil {
			b.logger.ErrorContext(ctx, "read a changed referral", "referral_id", c.ReferralID, "error", err)
			return
		}
		ref = refs[c.ReferralID]
	}
	ev := &model.ReferralChange{Change: c, Referral: ref}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			delete(b.subs, ch)
			close(ch)
			b.logger.WarnContext(ctx, "dropped a subscriber that fell behind", "buffer", subscriberBuffer)
		}
	}
}

// Subscribers returns how many subscriptions this process serves.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Subscribe returns a channel of changes, closed when the subscriber is
// dropped, and a function that ends the subscription.
func (b *Broker) Subscribe() (<-chan *model.ReferralChange, func()) {
	ch := make(chan *model.ReferralChange, subscriberBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

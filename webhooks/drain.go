package webhooks

import (
	"context"
	"math/rand/v2"
	"time"

	"referrals/storage"
)

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

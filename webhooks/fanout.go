package webhooks

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"referrals/storage"
)

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
			}{eventType(c.Type), c.At.UTC(), r.data})
			if err != nil {
				return made, err
			}
			now := d.store.Now()
			reservedUntil := now.Add(d.lease())
			ds = append(ds, &storage.WebhookDelivery{ID: w.ID + ":" + r.id, WebhookID: w.ID, EventID: r.id, EventType: eventType(c.Type), ReferralID: &c.ReferralID,
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

// eventType is the body's type of a change: referral.created,
// referral.updated, referral.status_changed, referral.participant_changed.
func eventType(t storage.ChangeType) string {
	return "referral." + strings.ToLower(string(t))
}

// pingType is the body's type of a ping.
const pingType = "webhook.ping"

// Owner is the caller whose view a webhook receives: its organization's
// partners, or an admin.
func Owner(w *storage.Webhook) storage.Caller {
	if w.OrganizationID == "" {
		return storage.Caller{Subject: "webhook:" + w.ID, Role: storage.RoleAdmin}
	}
	return storage.Caller{Subject: "webhook:" + w.ID, OrganizationID: w.OrganizationID, Role: storage.RolePartner}
}

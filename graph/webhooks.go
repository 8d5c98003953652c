package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/99designs/gqlgen/graphql"

	"referrals/graph/export"
	"referrals/live"
	"referrals/storage"
)

// WebhookStore is what the webhook resolvers read and write.
type WebhookStore interface {
	CreateWebhook(ctx context.Context, w *storage.Webhook) error
	Webhook(ctx context.Context, id string) (*storage.Webhook, error)
	Webhooks(ctx context.Context, args storage.PageArgs) (*storage.WebhookPage, error)
	UpdateWebhook(ctx context.Context, id string, p storage.WebhookPatch) (*storage.Webhook, error)
	RotateWebhookSecret(ctx context.Context, id, secret string) (*storage.Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	Delivery(ctx context.Context, id string) (*storage.WebhookDelivery, error)
	Deliveries(ctx context.Context, webhookID string, statuses []storage.DeliveryStatus, args storage.PageArgs) (*storage.DeliveryPage, error)
	Redeliver(ctx context.Context, id string) (*storage.WebhookDelivery, error)
}

// Deliverer is what the webhook resolvers ask of the deliverer (package
// webhooks): which URLs it may deliver to, a new secret, a ping, and a
// nudge when a delivery is due.
type Deliverer interface {
	CheckURL(ctx context.Context, url string) error
	NewSecret() string
	Ping(ctx context.Context, w *storage.Webhook) (*storage.WebhookDelivery, error)
	Kick()
}

// webhookEventQuery selects what a webhook delivery's data holds: the
// whole change, its referral as an export line has it.
var webhookEventQuery = fmt.Sprintf(`subscription WebhookEvent {
  referralChanged {
    id type referralId changedFields at
    referral {
      %s
    }
  }
}`, export.ReferralFields)

// preparedEventKey carries the one event a WebhookEvent operation renders.
type preparedEventKey struct{}

// EventRenderer renders webhook deliveries' data (webhooks.Renderer)
// through the executor, as the subscription of the webhook's owner would
// send the change: the same fields, values and redaction, by the same
// resolvers.
type EventRenderer struct {
	Exec graphql.GraphExecutor
	IDs  *storage.EventIDs
}

// Render returns the id and data of change c for owner's webhook with
// filter; ok is false when owner's subscription would not receive it.
func (e *EventRenderer) Render(ctx context.Context, owner storage.Caller, filter *storage.ReferralFilter, c storage.Change) (string, json.RawMessage, bool, error) {
	ev, ok := live.EventFor(owner, filter, e.IDs, c)
	if !ok {
		return "", nil, false, nil
	}
	ctx = context.WithValue(storage.WithCaller(ctx, owner), preparedEventKey{}, ev)
	ctx = graphql.StartOperationTrace(ctx)
	params := &graphql.RawParams{Query: webhookEventQuery, OperationName: "WebhookEvent",
		ReadTime: graphql.TraceTiming{Start: graphql.Now(), End: graphql.Now()}}
	opCtx, errs := e.Exec.CreateOperationContext(ctx, params)
	if errs != nil {
		return "", nil, false, fmt.Errorf("render a webhook event: %v", errs)
	}
	handler, ctx := e.Exec.DispatchOperation(ctx, opCtx)
	resp := handler(ctx)
	if resp == nil {
		return "", nil, false, errors.New("render a webhook event: no response")
	}
	if len(resp.Errors) > 0 {
		return "", nil, false, fmt.Errorf("render a webhook event: %v", resp.Errors)
	}
	var data struct {
		ReferralChanged json.RawMessage `json:"referralChanged"`
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		return "", nil, false, fmt.Errorf("render a webhook event: %w", err)
	}
	return ev.ID, data.ReferralChanged, true, nil
}

// preparedEvents is the channel of the one event a WebhookEvent operation
// renders, or nil for any other operation (clients cannot set it: it
// lives in the context only the renderer makes).
func preparedEvents(ctx context.Context) <-chan *live.Event {
	ev, ok := ctx.Value(preparedEventKey{}).(*live.Event)
	if !ok {
		return nil
	}
	ch := make(chan *live.Event, 1)
	ch <- ev
	close(ch)
	return ch
}

// checkWebhookInput validates what createWebhook and updateWebhook share:
// the URL as d would deliver to it, the filter and the description.
func checkWebhookInput(ctx context.Context, d Deliverer, url *string, filter *storage.ReferralFilter, description *string) error {
	if url != nil {
		if err := d.CheckURL(ctx, *url); err != nil {
			return err
		}
	}
	if err := filter.Validate(); err != nil {
		return err
	}
	return storage.CheckWebhookDescription(description)
}

// uniqueTypes drops repeated change types, keeping the first of each.
func uniqueTypes(ts []storage.ChangeType) []storage.ChangeType {
	out := []storage.ChangeType{}
	for _, t := range ts {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

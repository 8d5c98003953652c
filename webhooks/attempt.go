package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.mongodb.org/mongo-driver/v2/bson"

	"referrals/storage"
	"referrals/webhooks/egress"
)

// userAgent names the sender of deliveries.
const userAgent = "referrals-webhooks/1"

// attempt POSTs del to w once, records the attempt, and sets what follows:
// settled, the next attempt, or the webhook disabled. A next attempt due
// at once wakes Run.
func (d *Deliverer) attempt(ctx context.Context, w *storage.Webhook, del *storage.WebhookDelivery) {
	start := d.store.Now()
	a := storage.DeliveryAttempt{At: start}
	status, snippet, err := d.post(ctx, w, del, start)
	a.DurationMs = max(d.store.Now().Sub(start).Milliseconds(), 0)
	if status != 0 {
		a.ResponseStatus = &status
		a.ResponseBody = &snippet
	}
	if err != nil {
		msg := err.Error()
		a.Error = &msg
	}
	if ctx.Err() != nil {
		return // shutting down: the attempt is made again after the restart
	}
	ok := err == nil && status >= 200 && status < 300
	outcome := "failed"
	var next *time.Time
	settled := storage.DeliverySucceeded
	switch {
	case ok:
		outcome = "succeeded"
	case status == http.StatusGone:
		settled = storage.DeliveryFailed
	default:
		made := len(del.Attempts) + 1 - del.Round // attempts of this round, this one included
		if made < len(d.opts.Schedule) {
			t := d.store.Now().Add(jitter(d.opts.Schedule[made]))
			next, settled = &t, storage.DeliveryFailing
			outcome = "retrying"
		} else {
			settled = storage.DeliveryFailed
		}
	}
	if err := d.store.RecordAttempt(ctx, del.ID, a, settled, next); err != nil && ctx.Err() == nil {
		d.logger.ErrorContext(ctx, "record a webhook attempt", "delivery_id", del.ID, "error", err)
	}
	d.metrics.attempts.WithLabelValues(outcome).Inc()
	d.metrics.duration.Observe(float64(a.DurationMs) / 1000)
	attrs := []any{"delivery_id", del.ID, "webhook_id", w.ID, "event_type", del.EventType,
		"attempt", len(del.Attempts) + 1, "outcome", outcome, "duration_ms", a.DurationMs}
	if status != 0 {
		attrs = append(attrs, "response_status", status)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	if next != nil {
		attrs = append(attrs, "next_attempt_at", next.Format(time.RFC3339))
	}
	d.logger.InfoContext(ctx, "webhook attempt", attrs...)
	d.afterAttempt(ctx, w, ok, status, start)
	if next != nil && !next.After(d.store.Now()) {
		d.Kick()
	}
}

// afterAttempt keeps the webhook's failure record: a success clears it, a
// 410 disables the webhook, and failing for DisableAfter does too.
func (d *Deliverer) afterAttempt(ctx context.Context, w *storage.Webhook, ok bool, status int, at time.Time) {
	d.state.Lock()
	defer d.state.Unlock()
	var err error
	switch {
	case ok && w.FailingSince != nil:
		err = d.store.SetWebhookState(ctx, w.ID, nil, "failingSince")
		w.FailingSince = nil
	case ok:
	case status == http.StatusGone:
		err = d.disable(ctx, w, "the endpoint answered 410 Gone")
	case w.FailingSince == nil:
		err = d.store.SetWebhookState(ctx, w.ID, bson.D{{Key: "failingSince", Value: at}})
		w.FailingSince = &at
	case at.Sub(*w.FailingSince) >= d.opts.DisableAfter:
		err = d.disable(ctx, w, fmt.Sprintf("every attempt failed from %s to %s", w.FailingSince.Format(time.RFC3339), at.Format(time.RFC3339)))
	}
	if err != nil && ctx.Err() == nil {
		d.logger.ErrorContext(ctx, "update a webhook after an attempt", "webhook_id", w.ID, "error", err)
	}
}

func (d *Deliverer) disable(ctx context.Context, w *storage.Webhook, reason string) error {
	w.Enabled = false
	d.metrics.disabled.Inc()
	d.logger.WarnContext(ctx, "webhook disabled", "webhook_id", w.ID, "reason", reason)
	return d.store.SetWebhookState(ctx, w.ID, bson.D{{Key: "enabled", Value: false}, {Key: "disabledReason", Value: reason}}, "failingSince")
}

// post sends one attempt and returns the response's status (0 when there
// was none) and the first KiB of its body.
func (d *Deliverer) post(ctx context.Context, w *storage.Webhook, del *storage.WebhookDelivery, at time.Time) (int, string, error) {
	signature, err := sign(w.Secrets, del.EventID, at, []byte(del.Body))
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader([]byte(del.Body)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("webhook-id", del.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", signature)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", attemptError(err)
	}
	return resp.StatusCode, egress.ReadSnippet(resp.Body), nil
}

// attemptError says why an attempt got no response, without the URL
// (which the delivery log shows beside it).
func attemptError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Post ") {
		err = ue.Unwrap()
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return errors.New("timed out: " + err.Error())
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// sign returns the webhook-signature header of a message: a "v1,"
// signature for each secret still signing at at, separated by spaces, as
// the Standard Webhooks library makes them.
func sign(secrets []storage.WebhookSecret, id string, at time.Time, body []byte) (string, error) {
	var sigs []string
	for _, s := range secrets {
		if s.ExpiresAt != nil && !at.Before(*s.ExpiresAt) {
			continue
		}
		wh, err := standardwebhooks.NewWebhook(s.Secret)
		if err != nil {
			return "", fmt.Errorf("signing secret: %w", err)
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return "", errors.New("the webhook has no signing secret")
	}
	return strings.Join(sigs, " "), nil
}

// Ping records a webhook.ping delivery for w and makes its first attempt
// at once, returning the delivery as that attempt left it.
func (d *Deliverer) Ping(ctx context.Context, w *storage.Webhook) (*storage.WebhookDelivery, error) {
	id := "ping_" + uuid.NewString()
	now := d.store.Now()
	reservedUntil := now.Add(d.lease()) // its first attempt is this call's
	body := fmt.Sprintf(`{"type":%q,"timestamp":%q,"data":{"webhookId":%q}}`, pingType, now.Format(time.RFC3339Nano), w.ID)
	del := &storage.WebhookDelivery{ID: w.ID + ":" + id, WebhookID: w.ID, EventID: id, EventType: pingType, Body: body,
		Status: storage.DeliveryPending, CreatedDateTime: now, NextAttemptAt: &reservedUntil, Attempts: []storage.DeliveryAttempt{}}
	if _, err := d.store.InsertDeliveries(ctx, []*storage.WebhookDelivery{del}); err != nil {
		return nil, err
	}
	// A disabled webhook is pinged too: that is how one checks an
	// endpoint before enabling it again.
	if d.start(ctx, w, del) {
		d.attempt(context.WithoutCancel(ctx), w, del)
		d.done(del.ID)
	}
	return d.store.DeliveryByID(ctx, del.ID)
}

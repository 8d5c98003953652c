package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Webhook is a URL that receives the referral changes its owner may see,
// stored in `webhooks`. Package webhooks delivers to it; this file keeps
// webhooks and their deliveries.
type Webhook struct {
	ID string `bson:"_id"`
	// OrganizationID owns the webhook; "" for an admin's, which receive
	// every change.
	OrganizationID string       `bson:"organizationId"`
	URL            string       `bson:"url"`
	Events         []ChangeType `bson:"events"` // none: every type
	// Filter is the ReferralFilter the changes' referrals must match, as
	// for a subscription; nil matches all.
	Filter          *ReferralFilter `bson:"filter,omitempty"`
	Description     *string         `bson:"description,omitempty"`
	Enabled         bool            `bson:"enabled"`
	DisabledReason  *string         `bson:"disabledReason,omitempty"`
	CreatedDateTime time.Time       `bson:"createdDateTime"`
	// Secrets sign deliveries, newest first; a rotated-out one keeps
	// signing until its ExpiresAt.
	Secrets []WebhookSecret `bson:"secrets"`
	// Cursor is the sequence number of the last change the webhook's
	// deliveries were made for (see package webhooks).
	Cursor int64 `bson:"cursor"`
	// FailingSince is when the oldest failure not followed by a success
	// happened.
	FailingSince *time.Time `bson:"failingSince,omitempty"`
}

// WebhookSecret is one signing secret of a webhook (whsec_ + base64).
type WebhookSecret struct {
	Secret    string     `bson:"secret"`
	ExpiresAt *time.Time `bson:"expiresAt,omitempty"`
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// Delivery statuses: PENDING before its first attempt (or after a
// redelivery is asked for), FAILING while retries remain, and then
// SUCCEEDED or FAILED.
const (
	DeliveryPending   DeliveryStatus = "PENDING"
	DeliverySucceeded DeliveryStatus = "SUCCEEDED"
	DeliveryFailing   DeliveryStatus = "FAILING"
	DeliveryFailed    DeliveryStatus = "FAILED"
)

// WebhookDelivery is one event to deliver to one webhook, with its
// attempts, stored in `webhookDeliveries` before its first attempt.
type WebhookDelivery struct {
	// ID is the webhook's id and the event id, so that two processes
	// making the delivery of one change to one webhook make one.
	ID        string `bson:"_id"`
	WebhookID string `bson:"webhookId"`
	// EventID is the webhook-id header: the id a subscription of the
	// webhook's owner receives the change with.
	EventID   string `bson:"eventId"`
	EventType string `bson:"eventType"`
	// ReferralID is the referral the change is about ("" for a ping).
	ReferralID *string        `bson:"referralId,omitempty"`
	Body       string         `bson:"body"`
	Status     DeliveryStatus `bson:"status"`
	// Seq is the change's number (0 for a ping).
	Seq             int64     `bson:"seq"`
	CreatedDateTime time.Time `bson:"createdDateTime"`
	// NextAttemptAt is set while an attempt is due: missing once the
	// delivery succeeded or failed for good, so that the due deliveries
	// are found from an index of few entries.
	NextAttemptAt *time.Time        `bson:"nextAttemptAt,omitempty"`
	Attempts      []DeliveryAttempt `bson:"attempts"`
	// Round is the index in Attempts where the retry schedule starts: a
	// redelivery starts a new round.
	Round int `bson:"round"`
	// MadeHere marks a delivery this process recorded (InsertDeliveries):
	// until its NextAttemptAt, its first attempt is this process's.
	MadeHere bool `bson:"-"`
}

// DeliveryAttempt is one POST of a delivery.
type DeliveryAttempt struct {
	At             time.Time `bson:"at"`
	DurationMs     int64     `bson:"durationMs"`
	ResponseStatus *int      `bson:"responseStatus,omitempty"`
	Error          *string   `bson:"error,omitempty"`
	ResponseBody   *string   `bson:"responseBody,omitempty"`
}

// MaxWebhooksPerOwner bounds the webhooks of one organization (or of the
// admins): each costs a rendering of every change it may see.
const MaxWebhooksPerOwner = 20

// ErrNotFound is returned for a webhook or delivery that does not exist
// or is not the caller's to see.
var ErrNotFound = errors.New("not found")

// webhookScope is the webhooks c manages: an admin all, a partner its
// organization's.
func webhookScope(c Caller) bson.D {
	if c.IsAdmin() {
		return bson.D{}
	}
	return bson.D{{Key: "organizationId", Value: c.OrganizationID}}
}

// ownsWebhook reports whether c manages w.
func ownsWebhook(c Caller, w *Webhook) bool {
	return c.IsAdmin() || (c.OrganizationID != "" && w.OrganizationID == c.OrganizationID)
}

// CreateWebhook stores w, owned by ctx's caller, with its cursor at the
// newest change: it receives the changes recorded after it.
func (s *Store) CreateWebhook(ctx context.Context, w *Webhook) error {
	c := CallerFrom(ctx)
	if !c.IsAdmin() && c.OrganizationID == "" {
		return Errorf(CodeForbidden, "only an organization's partners or an admin may register webhooks")
	}
	w.OrganizationID = c.OrganizationID
	if c.IsAdmin() {
		w.OrganizationID = ""
	}
	if err := CheckWebhookDescription(w.Description); err != nil {
		return err
	}
	n, err := s.countDocuments(ctx, s.webhooks, bson.D{{Key: "organizationId", Value: w.OrganizationID}})
	if err != nil {
		return err
	}
	if n >= MaxWebhooksPerOwner {
		return Errorf(CodeBadUserInput, "at most %d webhooks per organization: delete one first", MaxWebhooksPerOwner)
	}
	head, err := s.LatestChange(ctx)
	if err != nil {
		return err
	}
	w.Cursor, w.CreatedDateTime, w.Enabled = head, s.Now(), true
	if _, err := s.webhooks.InsertOne(ctx, w); err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// Webhook returns the webhook id if ctx's caller manages it, else
// ErrNotFound (whether it exists or not).
func (s *Store) Webhook(ctx context.Context, id string) (*Webhook, error) {
	var w Webhook
	err := s.webhooks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&w)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook: %w", err)
	}
	if !ownsWebhook(CallerFrom(ctx), &w) {
		return nil, ErrNotFound
	}
	return &w, nil
}

// WebhookPage is a page of webhooks.
type WebhookPage struct {
	Items    []*Webhook
	Cursors  []string
	PageInfo PageInfo
}

// Webhooks pages through the webhooks ctx's caller manages, oldest first.
func (s *Store) Webhooks(ctx context.Context, args PageArgs) (*WebhookPage, error) {
	p, err := pageQuery[Webhook]{
		store: s, coll: s.webhooks, filter: webhookScope(CallerFrom(ctx)),
		order: sortOrder{Field: "createdDateTime"}, args: args,
		key: func(w *Webhook) (any, string) { return w.CreatedDateTime, w.ID },
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	return &WebhookPage{Items: p.items, Cursors: p.cursors, PageInfo: p.info}, nil
}

// AllWebhooks returns every webhook, for delivery.
func (s *Store) AllWebhooks(ctx context.Context) ([]*Webhook, error) {
	cur, err := s.webhooks.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("find webhooks: %w", err)
	}
	var out []*Webhook
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	return out, nil
}

// WebhookPatch holds the parts of a webhook to change; nil keeps one.
type WebhookPatch struct {
	URL         *string
	Events      *[]ChangeType
	Filter      *ReferralFilter // replaces the filter when SetFilter
	SetFilter   bool
	Description *string
	Enabled     *bool
}

// MaxWebhookDescription bounds a webhook's description, in characters.
const MaxWebhookDescription = 1000

// CheckWebhookDescription refuses a description over its bound, or with
// what stored text may not hold (see check.characters): it is free text
// with lines, as a referral's notes.
func CheckWebhookDescription(d *string) error {
	if d != nil && utf8.RuneCountInString(*d) > MaxWebhookDescription {
		return badInput("input.description", "at most %d characters, got %d", MaxWebhookDescription, utf8.RuneCountInString(*d))
	}
	var c check
	c.multiline("input.description", d, MaxWebhookDescription)
	if c.err != nil {
		return c.err
	}
	return nil
}

// UpdateWebhook changes the webhook id that ctx's caller manages and
// returns it as it is then. Enabling a disabled webhook clears its
// disabled reason and moves its cursor to the newest change: what was
// recorded while it was disabled is not delivered.
func (s *Store) UpdateWebhook(ctx context.Context, id string, p WebhookPatch) (*Webhook, error) {
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := CheckWebhookDescription(p.Description); err != nil {
		return nil, err
	}
	set, unset := bson.D{}, []string{}
	if p.URL != nil {
		set = append(set, bson.E{Key: "url", Value: *p.URL})
	}
	if p.Events != nil {
		set = append(set, bson.E{Key: "events", Value: *p.Events})
	}
	if p.SetFilter {
		if p.Filter != nil {
			set = append(set, bson.E{Key: "filter", Value: p.Filter})
		} else {
			unset = append(unset, "filter")
		}
	}
	if p.Description != nil {
		set = append(set, bson.E{Key: "description", Value: *p.Description})
	}
	if p.Enabled != nil {
		set = append(set, bson.E{Key: "enabled", Value: *p.Enabled})
		unset = append(unset, "disabledReason", "failingSince")
		if *p.Enabled && !w.Enabled {
			head, err := s.LatestChange(ctx)
			if err != nil {
				return nil, err
			}
			set = append(set, bson.E{Key: "cursor", Value: head})
		}
	}
	if len(set) == 0 && len(unset) == 0 {
		return w, nil // nothing given: nothing changes
	}
	if err := s.SetWebhookState(ctx, id, set, unset...); err != nil {
		return nil, err
	}
	return s.Webhook(ctx, id)
}

// webhookSecretOverlap is how long a rotated-out secret keeps signing.
const webhookSecretOverlap = 24 * time.Hour

// RotateWebhookSecret makes secret the signing secret of the webhook id
// that ctx's caller manages; the one before keeps signing for 24 hours,
// older ones stop.
func (s *Store) RotateWebhookSecret(ctx context.Context, id, secret string) (*Webhook, error) {
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	until := s.Now().Add(webhookSecretOverlap)
	secrets := []WebhookSecret{{Secret: secret}}
	if len(w.Secrets) > 0 {
		prev := w.Secrets[0]
		prev.ExpiresAt = &until
		secrets = append(secrets, prev)
	}
	if err := s.SetWebhookState(ctx, id, bson.D{{Key: "secrets", Value: secrets}}); err != nil {
		return nil, err
	}
	w.Secrets = secrets
	return w, nil
}

// SetWebhookState sets and unsets fields of webhook id, for whoever acts
// for no caller (the deliverer) or has checked the caller already.
func (s *Store) SetWebhookState(ctx context.Context, id string, set bson.D, unset ...string) error {
	update := bson.D{}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: set})
	}
	if len(unset) > 0 {
		u := bson.D{}
		for _, f := range unset {
			u = append(u, bson.E{Key: f, Value: ""})
		}
		update = append(update, bson.E{Key: "$unset", Value: u})
	}
	_, err := s.webhooks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update)
	if err != nil {
		return fmt.Errorf("update webhook %s: %w", id, err)
	}
	return nil
}

// AdvanceWebhookCursor moves the webhook's cursor to seq unless it is
// further already: several processes may make the same deliveries.
func (s *Store) AdvanceWebhookCursor(ctx context.Context, id string, seq int64) error {
	_, err := s.webhooks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$max", Value: bson.D{{Key: "cursor", Value: seq}}}})
	if err != nil {
		return fmt.Errorf("advance webhook %s: %w", id, err)
	}
	return nil
}

// DeleteWebhook deletes the webhook id that ctx's caller manages. Its
// deliveries stay in the log until the webhook's id is forgotten; open
// ones are not attempted any more.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if _, err := s.Webhook(ctx, id); err != nil {
		return err
	}
	if _, err := s.webhooks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// InsertDeliveries records deliveries before their first attempt and
// returns those it recorded, marked MadeHere: one another process
// recorded already is left as it is, and not returned.
func (s *Store) InsertDeliveries(ctx context.Context, ds []*WebhookDelivery) ([]*WebhookDelivery, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	docs := make([]any, len(ds))
	for i, d := range ds {
		docs[i] = d
	}
	_, err := s.deliveries.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	taken := map[int]bool{}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return nil, fmt.Errorf("record deliveries: %w", err)
			}
			taken[we.Index] = true
		}
	} else if err != nil {
		return nil, fmt.Errorf("record deliveries: %w", err)
	}
	mine := make([]*WebhookDelivery, 0, len(ds))
	for i, d := range ds {
		if !taken[i] {
			d.MadeHere = true
			mine = append(mine, d)
		}
	}
	return mine, nil
}

// Delivery returns the delivery id of a webhook ctx's caller manages.
func (s *Store) Delivery(ctx context.Context, id string) (*WebhookDelivery, error) {
	d, err := s.DeliveryByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.Webhook(ctx, d.WebhookID); err != nil {
		return nil, err
	}
	return d, nil
}

// DeliveryByID reads a delivery for the deliverer.
func (s *Store) DeliveryByID(ctx context.Context, id string) (*WebhookDelivery, error) {
	var d WebhookDelivery
	err := s.deliveries.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery: %w", err)
	}
	return &d, nil
}

// DeliveryPage is a page of a webhook's deliveries.
type DeliveryPage struct {
	Items    []*WebhookDelivery
	Cursors  []string
	PageInfo PageInfo
}

// Deliveries pages through the deliveries of webhookID, newest first,
// with one of statuses when some are given. The caller must manage the
// webhook (Webhook checks it).
func (s *Store) Deliveries(ctx context.Context, webhookID string, statuses []DeliveryStatus, args PageArgs) (*DeliveryPage, error) {
	filter := bson.D{{Key: "webhookId", Value: webhookID}}
	if len(statuses) > 0 {
		filter = append(filter, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}})
	}
	p, err := pageQuery[WebhookDelivery]{
		store: s, coll: s.deliveries, filter: filter,
		order: sortOrder{Field: "createdDateTime", Desc: true}, args: args,
		key: func(d *WebhookDelivery) (any, string) { return d.CreatedDateTime, d.ID },
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	return &DeliveryPage{Items: p.items, Cursors: p.cursors, PageInfo: p.info}, nil
}

// DueDeliveries returns at most limit deliveries of webhookID whose next
// attempt is due at now, the earliest first.
func (s *Store) DueDeliveries(ctx context.Context, webhookID string, now time.Time, limit int) ([]*WebhookDelivery, error) {
	q := pageQuery[WebhookDelivery]{
		store: s, coll: s.deliveries,
		filter: bson.D{{Key: "webhookId", Value: webhookID}, {Key: "nextAttemptAt", Value: bson.D{{Key: "$lte", Value: now}}}},
		order:  sortOrder{Field: "nextAttemptAt"},
	}
	return q.find(ctx, false, nil, limit)
}

// NextDue returns when the earliest open delivery of webhookID is due, or
// nil when none is open.
func (s *Store) NextDue(ctx context.Context, webhookID string) (*time.Time, error) {
	q := pageQuery[WebhookDelivery]{
		store: s, coll: s.deliveries,
		filter: bson.D{{Key: "webhookId", Value: webhookID}, {Key: "nextAttemptAt", Value: bson.D{{Key: "$ne", Value: nil}}}},
		order:  sortOrder{Field: "nextAttemptAt"},
	}
	ds, err := q.find(ctx, false, nil, 1)
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	return ds[0].NextAttemptAt, nil
}

// CountOpenDeliveries counts the deliveries of webhookID not yet settled.
func (s *Store) CountOpenDeliveries(ctx context.Context, webhookID string) (int64, error) {
	return s.countDocuments(ctx, s.deliveries, bson.D{{Key: "webhookId", Value: webhookID}, {Key: "nextAttemptAt", Value: bson.D{{Key: "$ne", Value: nil}}}})
}

// RecordAttempt appends an attempt to a delivery and sets where it stands
// then: next is its next attempt, nil when it is settled.
func (s *Store) RecordAttempt(ctx context.Context, id string, a DeliveryAttempt, status DeliveryStatus, next *time.Time) error {
	set := bson.D{{Key: "status", Value: status}}
	update := bson.D{{Key: "$push", Value: bson.D{{Key: "attempts", Value: a}}}}
	if next != nil {
		set = append(set, bson.E{Key: "nextAttemptAt", Value: *next})
	} else {
		update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "nextAttemptAt", Value: ""}}})
	}
	update = append(update, bson.E{Key: "$set", Value: set})
	if _, err := s.deliveries.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update); err != nil {
		return fmt.Errorf("record an attempt of %s: %w", id, err)
	}
	return nil
}

// SettleDelivery stops attempting a delivery without an attempt (its
// webhook was deleted or disabled): status stays as it was.
func (s *Store) SettleDelivery(ctx context.Context, id string, status DeliveryStatus) error {
	_, err := s.deliveries.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "status", Value: status}}},
		{Key: "$unset", Value: bson.D{{Key: "nextAttemptAt", Value: ""}}},
	})
	if err != nil {
		return fmt.Errorf("settle %s: %w", id, err)
	}
	return nil
}

// Redeliver makes a delivery of a webhook ctx's caller manages due now, in
// a new round of the retry schedule, keeping its attempts.
func (s *Store) Redeliver(ctx context.Context, id string) (*WebhookDelivery, error) {
	d, err := s.Delivery(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	_, err = s.deliveries.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: DeliveryPending}, {Key: "nextAttemptAt", Value: now}, {Key: "round", Value: len(d.Attempts)},
	}}})
	if err != nil {
		return nil, fmt.Errorf("redeliver %s: %w", id, err)
	}
	d.Status, d.NextAttemptAt, d.Round = DeliveryPending, &now, len(d.Attempts)
	return d, nil
}

// ClaimAttempt makes this process the only one to make attempt number n
// of a delivery, for lease: it inserts a claim keyed by the delivery, the
// attempt and a term. A term whose claim has expired (its holder died) is
// followed by the next one; a live claim means another process is making
// the attempt, and ClaimAttempt reports false.
func (s *Store) ClaimAttempt(ctx context.Context, deliveryID string, n int, lease time.Duration) (bool, error) {
	for term := 0; term < 100; term++ {
		key := fmt.Sprintf("webhook-attempt:%s:%d:%d", deliveryID, n, term)
		now := s.Now()
		_, err := s.claims.InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "at", Value: now}, {Key: "expiresAt", Value: now.Add(lease)}})
		if err == nil {
			return true, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return false, fmt.Errorf("claim %s: %w", key, err)
		}
		var held struct {
			ExpiresAt time.Time `bson:"expiresAt"`
		}
		err = s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&held)
		if errors.Is(err, mongo.ErrNoDocuments) { // expired and deleted by a TTL index: take the next term
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read claim %s: %w", key, err)
		}
		if now.Before(held.ExpiresAt) {
			return false, nil
		}
	}
	return false, nil
}

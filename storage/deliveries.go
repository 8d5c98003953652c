package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

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

// Delivery statuses: PENDING before its first attempt (or after a
// redelivery is asked for), FAILING while retries remain, and then
// SUCCEEDED or FAILED.
const (
	DeliveryPending   DeliveryStatus = "PENDING"
	DeliverySucceeded DeliveryStatus = "SUCCEEDED"
	DeliveryFailing   DeliveryStatus = "FAILING"
	DeliveryFailed    DeliveryStatus = "FAILED"
)

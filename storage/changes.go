package storage

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ChangeType says what happened to a referral.
type ChangeType string

// The kinds of change.
const (
	ChangeCreated     ChangeType = "CREATED"
	ChangeUpdated     ChangeType = "UPDATED"
	ChangeStatus      ChangeType = "STATUS_CHANGED"
	ChangeParticipant ChangeType = "PARTICIPANT_CHANGED"
)

// Change is one event of the change feed: which referral changed, how,
// which fields (as the API names them) and when; and the referral as this
// change left it, so that subscribers see each change's own state (its
// status and version, who takes part) however late they read it.
type Change struct {
	ID         bson.ObjectID `bson:"_id"`
	ReferralID string        `bson:"referralId"`
	Type       ChangeType    `bson:"type"`
	Fields     []string      `bson:"fields"`
	At         time.Time     `bson:"at"`
	// After is the referral as the change left it; nil only for a change
	// stream event whose document is gone by the time it is read.
	After *Referral `bson:"after,omitempty"`
}

// recordChange appends a change to the feed. The write it describes has
// already happened, so a failure is retried (the change's id makes a
// repeated insert harmless: a duplicate means the first one landed) and
// then logged, not returned: the caller's change stands.
//
// With change streams the feed comes from the referrals collection itself,
// so nothing is recorded.
func (s *Store) recordChange(ctx context.Context, after *Referral, t ChangeType, fields []string) {
	if s.changeStreams {
		return
	}
	referralID := after.ID
	c := Change{ID: bson.NewObjectID(), ReferralID: referralID, Type: t, Fields: fields, At: s.Now(), After: after}
	err := retryIdempotent(ctx, func(ctx context.Context) error {
		if _, err := s.changes.InsertOne(ctx, c); err != nil && !mongo.IsDuplicateKeyError(err) {
			return err
		}
		return nil
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "record change", "referral_id", referralID, "type", t, "error", err)
	}
}

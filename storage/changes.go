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
// which fields (as the API names them) and when.
type Change struct {
	ID         bson.ObjectID `bson:"_id"`
	ReferralID string        `bson:"referralId"`
	Type       ChangeType    `bson:"type"`
	Fields     []string      `bson:"fields"`
	At         time.Time     `bson:"at"`
}

// recordChange appends a change to the feed. The write it describes has
// already happened, so a failure is retried (the change's id makes a
// repeated insert harmless: a duplicate means the first one landed) and
// then logged, not returned: the caller's change stands.
//
// With change streams the feed comes from the referrals collection itself,
// so nothing is recorded.
func (s *Store) recordChange(ctx context.Context, referralID string, t ChangeType, fields []string) {
	if s.changeStreams {
		return
	}
	c := Change{ID: bson.NewObjectID(), ReferralID: referralID, Type: t, Fields: fields, At: s.Now()}
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

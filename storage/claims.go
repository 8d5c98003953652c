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

// versionClaimLifetime is how long a version claim is kept. It only has to
// outlive the writers racing for that version: a later, stale writer is
// still stopped by the conditional update. MongoDB's TTL monitor deletes
// expired claims; a store without one keeps them, harmlessly.
const versionClaimLifetime = 24 * time.Hour

// claim records that the caller, and nobody else, may perform the write
// named by key ("referral:<id>:v7"). It relies only on the uniqueness of
// _id, which every MongoDB-compatible store enforces atomically. It
// reports false when the key was claimed before. A claim with a lifetime
// expires; one without (an organization's participation, an answer) stays.
func (s *Store) claim(ctx context.Context, key string, lifetime time.Duration) (bool, error) {
	t := s.Now()
	doc := bson.D{{Key: "_id", Value: key}, {Key: "at", Value: t}}
	if lifetime > 0 {
		doc = append(doc, bson.E{Key: "expiresAt", Value: t.Add(lifetime)})
	}
	_, err := s.claims.InsertOne(ctx, doc)
	switch {
	case err == nil:
		return true, nil
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	}
	return false, fmt.Errorf("claim %s: %w", key, err)
}

// release gives up a claim whose write did not happen.
func (s *Store) release(ctx context.Context, key string) {
	_, _ = s.claims.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: key}})
}

// expireClaims creates the TTL index that deletes expired claims, where the
// store has TTL indexes: FerretDB answers NotImplemented, and then the
// claims are simply kept.
func (s *Store) expireClaims(ctx context.Context) error {
	ttl := mongo.IndexModel{Keys: bson.D{{Key: "expiresAt", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(0)}
	err := ensureIndexes(ctx, s.claims, []mongo.IndexModel{ttl})
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == codeNotImplemented {
		return nil
	}
	return err
}

// codeNotImplemented is the server error code for an unsupported feature.
const codeNotImplemented = 238

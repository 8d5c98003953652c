package storage

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// claim records that the caller, and nobody else, may perform the write
// named by key ("referral:<id>:v7"). It relies only on the uniqueness of
// _id, which every MongoDB-compatible store enforces atomically. It
// reports false when the key was claimed before.
func (s *Store) claim(ctx context.Context, key string) (bool, error) {
	_, err := s.claims.InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "at", Value: time.Now().UTC()}})
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

package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/retry"
)

// versionClaimLifetime is how long a version claim is kept. It only has to
// outlive the writers racing for that version: a later, stale writer is
// still stopped by the conditional update. MongoDB's TTL monitor deletes
// expired claims; a store without one keeps them, harmlessly.
const versionClaimLifetime = 24 * time.Hour

// claim records that the caller, and nobody else, may perform the write
// named by key ("referral:<id>:v7"). It relies only on the uniqueness of
// _id, which every MongoDB-compatible store enforces atomically. It
// reports false when the key was claimed before, unless that claim was
// left by a writer that died before its write (see recoverClaim). A claim
// with a lifetime expires; one without (an organization's participation,
// an answer) stays. A non-zero writer is recorded with the claim: the
// writer of an intent (see intentWritten).
func (s *Store) claim(ctx context.Context, key string, lifetime time.Duration, writer bson.ObjectID) (bool, error) {
	t := s.Now()
	doc := bson.D{{Key: "_id", Value: key}, {Key: "at", Value: t}}
	if lifetime > 0 {
		doc = append(doc, bson.E{Key: "expiresAt", Value: t.Add(lifetime)})
	}
	if !writer.IsZero() {
		doc = append(doc, bson.E{Key: "writer", Value: writer})
	}
	return s.insertClaim(ctx, doc)
}

// claimPending is claim for a write of several documents: the claim stays
// marked pending until settle, so that RecoverWrites can finish or undo
// the write of a process that died halfway, and publish its change once
// (the claim and its entry hold the write's intent, see intent; the
// caller records the change with it, then settles). RecoverWrites finds
// such claims by their entry in pendingWrites, which is written first, so
// a dead writer never leaves a pending claim without one. An entry left
// over (a claim refused or never inserted) is dropped by RecoverWrites.
// It returns nil when key is claimed already.
func (s *Store) claimPending(ctx context.Context, key string) (*intent, error) {
	in := s.newIntent(ctx, key)
	if _, err := s.pending.InsertOne(ctx, in); err != nil && !mongo.IsDuplicateKeyError(err) {
		return nil, fmt.Errorf("mark %s pending: %w", key, err)
	}
	claimed, err := s.insertClaim(ctx, bson.D{{Key: "_id", Value: key}, {Key: "at", Value: in.At}, {Key: "pending", Value: true},
		{Key: "writer", Value: in.Writer}, {Key: "from", Value: in.From}})
	if err != nil || !claimed {
		return nil, err
	}
	return in, nil
}

func (s *Store) insertClaim(ctx context.Context, doc bson.D) (bool, error) {
	key := doc[0].Value.(string)
	for attempt := 0; ; attempt++ {
		_, err := s.claims.InsertOne(ctx, doc)
		switch {
		case err == nil:
			return true, nil
		case !mongo.IsDuplicateKeyError(err):
			return false, fmt.Errorf("claim %s: %w", key, err)
		case attempt > 0:
			return false, nil
		}
		if freed, err := s.recoverClaim(ctx, key); err != nil || !freed {
			return false, err
		}
	}
}

// settle marks the multi-document write of a pending claim complete. If
// that fails, recovery later finds the write complete and settles it.
func (s *Store) settle(ctx context.Context, key string) {
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.claims.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "pending", Value: ""}}}})
		return err
	})
	if err != nil {
		s.logger.WarnContext(ctx, "settle a claim; recovery will", "claim", key, "error", err)
		return
	}
	s.unmarkPending(ctx, key)
}

// release gives up a claim whose write did not happen, and reports whether
// it did. A claim it cannot delete is freed by recovery (see recoverClaim)
// once it is old enough.
func (s *Store) release(ctx context.Context, key string) bool {
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
		return err
	})
	if err != nil {
		s.logger.WarnContext(ctx, "release a claim; recovery will", "claim", key, "error", err)
	}
	return err == nil
}

// releasePending is release for a pending claim, whose pendingWrites entry
// goes with it.
func (s *Store) releasePending(ctx context.Context, key string) {
	if s.release(ctx, key) {
		s.unmarkPending(ctx, key)
	}
}

// unmarkPending deletes the pendingWrites entry of a claim that is settled
// or gone. One it cannot delete, RecoverWrites drops later.
func (s *Store) unmarkPending(ctx context.Context, key string) {
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.pending.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
		return err
	})
	if err != nil {
		s.logger.WarnContext(ctx, "unmark a settled write; recovery will", "claim", key, "error", err)
	}
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

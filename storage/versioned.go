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

func staleVersion(id string, current, expected int64) *Error {
	return Errorf(CodeConflict, "referral %s is at version %d, not %d: read it again and retry", id, current, expected)
}

// versionIs matches expected, counting a missing version as 0.
func versionIs(expected int64) bson.E {
	if expected == 0 {
		return bson.E{Key: "version", Value: bson.D{{Key: "$in", Value: bson.A{0, nil}}}}
	}
	return bson.E{Key: "version", Value: expected}
}

// updateVersioned applies update to the referral id if it is at
// expectedVersion, adding updatedDateTime and version+1 to the same MongoDB
// update, and returns the referral as it is after it; an archived referral
// is refused. Where the store indexes only _id, it first reads the
// referral by _id to check its status and version (see updateRead).
// writer is the intent's, recorded with the version's claim.
func (s *Store) updateVersioned(ctx context.Context, id string, expectedVersion int64, update bson.D, writer bson.ObjectID) (*Referral, error) {
	if s.idOnly() {
		current, err := s.referralByID(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := refuseArchived("id", current); err != nil {
			return nil, err
		}
		if current.Version != expectedVersion {
			return nil, staleVersion(id, current.Version, expectedVersion)
		}
	}
	// Where the update is conditional, on the status too; archiving moves
	// the version, so where it is not, the claim of the version read keeps
	// the referral from being archived meanwhile. Either way a refused
	// update of an archived referral says so (see conflict).
	return s.updateRead(ctx, id, expectedVersion, update, writer, bson.E{Key: "status", Value: bson.D{{Key: "$nin", Value: storedForms([]ReferralStatus{ReferralArchived}, referralStatusPositions)}}})
}

// refuseArchived refuses a change to an archived referral, which is
// read-only.
func refuseArchived(field string, r *Referral) error {
	if r.Status == ReferralArchived {
		return badInput(field, "referral %s is ARCHIVED, and an archived referral is read-only", r.ID)
	}
	return nil
}

// updateRead is updateVersioned for a caller that has read the referral at
// version, or names the version it expects where the store indexes more
// than _id.
//
// Before updating, the writer claims the version it will create (see
// claim): on MongoDB the conditional update alone is atomic, but FerretDB
// v1 runs an update as a read and a separate write, so two writers could
// both match the old version and the later would overwrite the former. The
// claim lets exactly one writer per version through on every store.
//
// Where the store indexes more than _id the update is conditional on the
// version. Where it indexes only _id, a filter naming the version too would
// read every referral, so the update is keyed by _id alone and relies on
// the read: every writer that moved a referral to version+1 held that
// version's claim, and a claim is given back only when its write did not
// happen (or by recovery, when the referral never reached its version), so
// a referral read at version before the claim is still there. The version
// the update returns confirms it.
func (s *Store) updateRead(ctx context.Context, id string, version int64, update bson.D, writer bson.ObjectID, conds ...bson.E) (*Referral, error) {
	key := fmt.Sprintf("referral:%s:v%d", id, version+1)
	claimed, err := s.claim(ctx, key, versionClaimLifetime, writer)
	if err != nil {
		return nil, err
	}
	if !claimed {
		return nil, s.conflict(ctx, id, version)
	}
	filter := append(bson.D{{Key: "_id", Value: id}, versionIs(version)}, conds...)
	if s.idOnly() {
		filter = filter[:1]
	}
	var r Referral
	err = s.referrals.FindOneAndUpdate(ctx, filter, withVersionBump(update, s.Now()),
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&r)
	if err != nil {
		// Nothing was written, or the update may have been but was
		// conditional: give the version back for its rightful writer.
		// After an update by _id alone that may have been written, the
		// claim stays for recovery, which frees it if the referral never
		// reached the version.
		if errors.Is(err, mongo.ErrNoDocuments) || !s.idOnly() {
			s.release(ctx, key)
		}
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, s.conflict(ctx, id, version)
		}
		return nil, fmt.Errorf("update referral: %w", err)
	}
	if r.Version != version+1 {
		return nil, fmt.Errorf("referral %s went from version %d to %d under the claim of one write", id, version, r.Version)
	}
	return &r, nil
}

// updateCurrent applies the update that build makes from the referral as
// it is now, at whatever version it has, retrying when another writer gets
// in between (for writes whose client names no version, such as
// invitations). A nil update means there is nothing to change.
func (s *Store) updateCurrent(ctx context.Context, id string, build func(current *Referral) bson.D) (*Referral, error) {
	for attempt := 0; ; attempt++ {
		current, err := s.referralByID(ctx, id)
		if err != nil {
			return nil, err
		}
		update := build(current)
		if update == nil {
			return current, nil
		}
		r, err := s.updateRead(ctx, id, current.Version, update, bson.ObjectID{})
		if ErrorCodeOf(err) != CodeConflict || attempt == maxWriteAttempts {
			return r, err
		}
	}
}

// maxWriteAttempts bounds the retries of updateCurrent under contention.
const maxWriteAttempts = 20

// withVersionBump adds updatedDateTime t and version+1 to an update.
func withVersionBump(update bson.D, t time.Time) bson.D {
	out := bson.D{{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}}
	set := bson.D{{Key: "updatedDateTime", Value: t}}
	for _, op := range update {
		if op.Key == "$set" {
			set = append(op.Value.(bson.D), set...)
			continue
		}
		out = append(out, op)
	}
	return append(out, bson.E{Key: "$set", Value: set})
}

// conflict explains why a versioned write did not apply.
func (s *Store) conflict(ctx context.Context, id string, expectedVersion int64) error {
	current, err := s.referralByID(ctx, id)
	if err != nil {
		return err
	}
	if err := refuseArchived("id", current); err != nil {
		return err
	}
	if current.Version == expectedVersion {
		return Errorf(CodeConflict, "another write to referral %s at version %d is under way: read it again and retry", id, expectedVersion)
	}
	return staleVersion(id, current.Version, expectedVersion)
}

// referralByID reads one referral; a missing one is CodeNotFound.
func (s *Store) referralByID(ctx context.Context, id string) (*Referral, error) {
	var r Referral
	err := s.referrals.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, Errorf(CodeNotFound, "no referral with id %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read referral: %w", err)
	}
	return &r, nil
}

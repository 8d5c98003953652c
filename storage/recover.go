package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/retry"
)

// abandonedAfter is how old an unfinished write must be before another
// writer or RecoverWrites finishes or undoes it. Each step of a write is
// one operation bounded by opTimeout and the steps follow one another at
// once, so a writer that has not finished after four of them is dead (or
// has lost the store).
const abandonedAfter = 4 * opTimeout

// recoverBatch bounds how many abandoned writes one RecoverWrites handles.
const recoverBatch = 500

// A write of several documents claims its key first (claimPending), writes
// the documents, records the change and settles the claim:
//
//   - an invitation: "participation:<referral>:<organization>", then the
//     participant, then the entry in the referral's participation;
//   - an answer or an expiry: "answer:<participant>", then the
//     participant's status, then its entry's status.
//
// A pending claim is listed in pendingWrites from before it is made until
// it is settled or undone, so that finding abandoned writes reads only
// that small collection, never every claim ever made. The other writes
// list there their intent (see intent).
//
// The participant is the record of what was done and the referral's entry
// a copy of it, so a write whose participant was written is finished (the
// entry is made to agree and the change recorded), and one whose
// participant was not is undone (the claim is deleted). A versioned update
// ("referral:<id>:v<n>") writes one document: a claim whose version the
// referral never reached is deleted.

// RecoverWrites finishes or undoes the writes that a process left
// halfway, once they are abandonedAfter old, and publishes their changes
// exactly once. It runs at start and with every expiry sweep; a writer
// that runs into such a write's claim recovers it at once. Safe to run on
// every instance at once.
func (s *Store) RecoverWrites(ctx context.Context) error {
	return s.recoverWrites(ctx, s.Now().Add(-abandonedAfter))
}

// recoverWrites is RecoverWrites for the writes begun at or before
// cutoff.
func (s *Store) recoverWrites(ctx context.Context, cutoff time.Time) error {
	cur, err := s.pending.Find(ctx, bson.D{
		{Key: "at", Value: bson.D{{Key: "$lte", Value: cutoff}}},
	}, options.Find().SetLimit(recoverBatch))
	if err != nil {
		return fmt.Errorf("find abandoned writes: %w", err)
	}
	var marks []intent
	if err := cur.All(ctx, &marks); err != nil {
		return fmt.Errorf("read abandoned writes: %w", err)
	}
	return s.recovering(ctx, marks, func(held []intent, rec map[bson.ObjectID]int64) error {
		for _, m := range held {
			if m.owned() {
				if err := s.recoverIntent(ctx, m, rec); err != nil {
					return err
				}
				continue
			}
			c, found, err := s.readClaim(ctx, m.Key)
			switch {
			case err != nil:
				return err
			case !found || !c.Pending:
				s.unmarkPending(ctx, m.Key) // its write was settled or undone
			default:
				if _, err := s.recoverClaimDoc(ctx, c, cutoff, rec); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// recovering runs f on those of entries (pendingWrites entries) whose
// recovery claim it gets, so that of the processes recovering a write at
// once only one publishes its change, with recordedBy's answer for them,
// read once it holds the claims: a recovery that finished meanwhile has
// published its change or settled its write by then. A recovery claim
// whose holder died is freed abandonedAfter later (see recoverClaimDoc).
func (s *Store) recovering(ctx context.Context, entries []intent, f func(held []intent, rec map[bson.ObjectID]int64) error) error {
	var held []intent
	defer func() {
		for _, e := range held {
			s.release(ctx, recoveryKey(e.Key))
		}
	}()
	for _, e := range entries {
		ok, err := s.claim(ctx, recoveryKey(e.Key), versionClaimLifetime, bson.ObjectID{})
		if err != nil {
			return err
		}
		if ok {
			held = append(held, e)
		}
	}
	if len(held) == 0 {
		return nil
	}
	// A pending claim's own fields name its writer (its entry may be an
	// earlier writer's, left over).
	writers := make([]intent, 0, len(held))
	for _, e := range held {
		if !e.owned() {
			c, found, err := s.readClaim(ctx, e.Key)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			e.Writer, e.From = c.Writer, c.From
		}
		writers = append(writers, e)
	}
	rec, err := s.recordedBy(ctx, writers)
	if err != nil {
		return err
	}
	return f(held, rec)
}

// recoveryKey is the claim of the recovery of the pendingWrites entry key.
func recoveryKey(key string) string { return "recover:" + key }

// markPendingClaims lists in pendingWrites the pending claims of a
// database whose claims were made before pendingWrites existed. It reads
// every claim, once.
func (s *Store) markPendingClaims(ctx context.Context) error {
	cur, err := s.claims.Find(ctx, bson.D{{Key: "pending", Value: true}})
	if err != nil {
		return fmt.Errorf("find pending claims: %w", err)
	}
	var claims []claimDoc
	if err := cur.All(ctx, &claims); err != nil {
		return fmt.Errorf("read pending claims: %w", err)
	}
	marks := make([]any, len(claims))
	for i, c := range claims {
		marks[i] = bson.D{{Key: "_id", Value: c.Key}, {Key: "at", Value: c.At}}
	}
	return insertNew(ctx, s.pending, marks)
}

// insertNew inserts docs, leaving out those whose _id is taken.
func insertNew(ctx context.Context, coll *mongo.Collection, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("insert into %s: %w", coll.Name(), err)
	}
	return nil
}

// claimDoc is a claim as stored; a pending claim's pendingWrites entry
// has its _id, at, writer and from (see claimPending).
type claimDoc struct {
	Key     string        `bson:"_id"`
	At      time.Time     `bson:"at"`
	Pending bool          `bson:"pending"`
	Writer  bson.ObjectID `bson:"writer,omitempty"`
	From    int64         `bson:"from,omitempty"`
}

// readClaim reads the claim key; found is false when there is none.
func (s *Store) readClaim(ctx context.Context, key string) (c claimDoc, found bool, err error) {
	err = s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read claim %s: %w", key, err)
	}
	return c, true, nil
}

// recoverClaim finishes or undoes the write of the claim key if its writer
// abandoned it. It reports whether the claim is gone, so the key may be
// claimed again; a claim whose write happened, or may still happen, stays.
func (s *Store) recoverClaim(ctx context.Context, key string) (freed bool, err error) {
	c, found, err := s.readClaim(ctx, key)
	if err != nil || !found {
		return !found && err == nil, err // not found: released meanwhile
	}
	cutoff := s.Now().Add(-abandonedAfter)
	if !c.Pending || c.At.After(cutoff) {
		return s.recoverClaimDoc(ctx, c, cutoff, nil)
	}
	err = s.recovering(ctx, []intent{{Key: key}}, func(_ []intent, rec map[bson.ObjectID]int64) error {
		c, found, err := s.readClaim(ctx, key)
		if err == nil && found {
			freed, err = s.recoverClaimDoc(ctx, c, cutoff, rec)
		}
		freed = freed || !found
		return err
	})
	return freed, err
}

// recoverClaimDoc is recoverClaim for the claim c as read, abandoned if
// made at or before cutoff; rec is recordedBy's answer for a pending
// claim's writer, read under its recovery claim.
func (s *Store) recoverClaimDoc(ctx context.Context, c claimDoc, cutoff time.Time, rec map[bson.ObjectID]int64) (freed bool, err error) {
	if c.At.After(cutoff) {
		return false, nil
	}
	kind, rest, _ := strings.Cut(c.Key, ":")
	switch kind {
	case "recover": // its recoverer died
		return s.dropClaim(ctx, c)
	case "referral":
		return s.recoverVersion(ctx, c, rest)
	case "participation":
		referralID, orgID, _ := strings.Cut(rest, ":")
		var p Participant
		err := s.participants.FindOne(ctx, bson.D{{Key: "referralId", Value: referralID}, {Key: "organizationId", Value: orgID}}).Decode(&p)
		return s.recoverParticipant(ctx, c, &p, err, false, rec)
	case "answer":
		var p Participant
		err := s.participants.FindOne(ctx, bson.D{{Key: "_id", Value: rest}}).Decode(&p)
		// A participant still Invited was never answered.
		return s.recoverParticipant(ctx, c, &p, err, err == nil && p.Status == ParticipantInvited, rec)
	}
	return false, nil
}

// recoverVersion frees the claim "<id>:v<n>" of a versioned update when
// the referral never reached version n: its writer claimed the version but
// did not update.
func (s *Store) recoverVersion(ctx context.Context, c claimDoc, idVersion string) (bool, error) {
	i := strings.LastIndex(idVersion, ":v")
	if i < 0 {
		return false, nil
	}
	version, err := strconv.ParseInt(idVersion[i+2:], 10, 64)
	if err != nil {
		return false, nil
	}
	r, err := s.referralByID(ctx, idVersion[:i])
	if err != nil || r.Version >= version {
		return false, nil
	}
	return s.dropClaim(ctx, c)
}

// recoverParticipant undoes the write of claim c when its participant was
// not found (findErr) or not written, and finishes it otherwise. An
// invitation's claim only adds a missing entry; an answer's also makes the
// entry's status agree (only its own writer changes that status). The
// change of a pending claim is published once: the one its writer
// recorded (rec) if it did, else one recorded now.
func (s *Store) recoverParticipant(ctx context.Context, c claimDoc, p *Participant, findErr error, notWritten bool, rec map[bson.ObjectID]int64) (bool, error) {
	switch {
	case errors.Is(findErr, mongo.ErrNoDocuments) || notWritten:
		return s.dropClaim(ctx, c)
	case findErr != nil:
		return false, fmt.Errorf("read participant of claim %s: %w", c.Key, findErr)
	}
	after, changed, err := s.putParticipation(ctx, p, strings.HasPrefix(c.Key, "participation:"), nil)
	if err != nil {
		return false, err
	}
	if !c.Pending {
		if changed { // a settled write whose entry recovery put back
			s.recordChange(ctx, after, ChangeParticipant, []string{"participants"}, s.newIntent(ctx, c.Key))
		}
		return false, nil
	}
	in := &intent{Key: c.Key, Writer: c.Writer}
	if seq, recorded := rec[c.Writer]; recorded && !c.Writer.IsZero() {
		if err := s.log.Publish(ctx, seq); err != nil {
			return false, err
		}
	} else {
		if c.Writer.IsZero() { // claimed by an earlier version
			in.Writer = bson.NewObjectID()
		}
		if !s.recordChange(ctx, after, ChangeParticipant, []string{"participants"}, in) {
			return false, nil // still pending: recovered again later
		}
	}
	s.logger.InfoContext(ctx, "finished an abandoned write", "claim", c.Key)
	s.settle(ctx, c.Key)
	return false, nil
}

// dropClaim deletes claim c unless it was claimed anew meanwhile, and its
// pendingWrites entry when it was pending.
func (s *Store) dropClaim(ctx context.Context, c claimDoc) (bool, error) {
	if _, err := s.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: c.Key}, {Key: "at", Value: c.At}}); err != nil {
		return false, fmt.Errorf("undo claim %s: %w", c.Key, err)
	}
	if c.Pending {
		s.unmarkPending(ctx, c.Key)
	}
	s.logger.InfoContext(ctx, "undid an abandoned write", "claim", c.Key)
	return true, nil
}

// putParticipation applies participationUpdate to p's referral and
// returns the referral after it, and whether that changed it. refuse, when
// not nil, may refuse the update by the referral it is written over (that
// version: a write racing it is seen).
func (s *Store) putParticipation(ctx context.Context, p *Participant, missingOnly bool, refuse func(*Referral) error) (after *Referral, changed bool, err error) {
	var refused error
	after, err = s.updateCurrent(ctx, p.ReferralID, func(r *Referral) bson.D {
		if refuse != nil {
			if refused = refuse(r); refused != nil {
				return nil
			}
		}
		update := participationUpdate(r, p, missingOnly)
		changed = update != nil
		return update
	})
	if err == nil && refused != nil {
		return nil, false, refused
	}
	return after, changed, err
}

// participationUpdate is the update that adds p's entry to r's
// participation if it is missing or, unless missingOnly, makes it agree
// with p; nil when there is nothing to do.
func participationUpdate(r *Referral, p *Participant, missingOnly bool) bson.D {
	list := slices.Clone(r.Participation)
	want := p.Participation()
	switch i := slices.IndexFunc(list, func(e Participation) bool { return e.ParticipantID == p.ID }); {
	case i < 0:
		list = append(list, want)
	case missingOnly || list[i] == want:
		return nil
	default:
		list[i] = want
	}
	return bson.D{{Key: "$set", Value: bson.D{{Key: "participation", Value: list}}}}
}

// undoInvitation takes back an invitation whose referral could not be
// updated: the participant, then the claim. What it cannot delete stays,
// with the claim pending, for recovery to finish.
func (s *Store) undoInvitation(ctx context.Context, key, participantID string) {
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.participants.DeleteOne(ctx, bson.D{{Key: "_id", Value: participantID}})
		return err
	})
	if err != nil {
		s.logger.WarnContext(ctx, "undo an invitation; recovery will finish it", "claim", key, "error", err)
		return
	}
	s.releasePending(ctx, key)
}

// undoAnswer takes back an answer (to) whose referral could not be
// updated: the participant's status, then the claim. What it cannot undo
// stays, with the claim pending, for recovery to finish.
func (s *Store) undoAnswer(ctx context.Context, key string, p *Participant, to ParticipantStatus) {
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.participants.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.ID}, {Key: "status", Value: to}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: ParticipantInvited}}}})
		return err
	})
	if err != nil {
		s.logger.WarnContext(ctx, "undo an answer; recovery will finish it", "claim", key, "error", err)
		return
	}
	p.Status = ParticipantInvited
	s.markDue(ctx, p) // the sweep may have dropped it while the answer stood
	s.releasePending(ctx, key)
}

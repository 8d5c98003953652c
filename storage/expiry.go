package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/retry"
)

// dueEntry lists an open invitation in invitationDue: its participant and
// when it expires. Finding due invitations reads only this collection,
// which holds only open invitations, never every participant.
type dueEntry struct {
	ParticipantID string    `bson:"_id"`
	Due           time.Time `bson:"due"`
}

// markDue lists the invitation p in invitationDue, before p is written: a
// listed invitation that was never written is dropped by the sweep. An
// invitation without expiration needs no entry.
func (s *Store) markDue(ctx context.Context, p *Participant) error {
	if p.ExpirationDateTime == nil {
		return nil
	}
	_, err := s.due.InsertOne(ctx, dueEntry{p.ID, *p.ExpirationDateTime})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("list the invitation as due: %w", err)
	}
	return nil
}

// unmarkDue drops the entries in invitationDue of the participants ids,
// whose invitations are answered or expired, in one command. One it cannot
// drop, the sweep drops when it comes due.
func (s *Store) unmarkDue(ctx context.Context, ids ...string) {
	if len(ids) == 0 {
		return
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	if len(ids) == 1 {
		filter = bson.D{{Key: "_id", Value: ids[0]}}
	}
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.due.DeleteMany(ctx, filter)
		return err
	})
	if err != nil {
		s.logger.WarnContext(ctx, "unlist answered invitations; the sweep will", "participant_ids", ids, "error", err)
	}
}

// markOpenInvitations lists in invitationDue the open invitations of a
// database whose participants were written before invitationDue existed.
// It reads every participant, once.
func (s *Store) markOpenInvitations(ctx context.Context) error {
	cur, err := s.participants.Find(ctx,
		bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: storedForms([]ParticipantStatus{ParticipantInvited}, participantStatusPositions)}}}},
		options.Find().SetProjection(bson.D{{Key: "status", Value: 1}, {Key: "expirationDateTime", Value: 1}}))
	if err != nil {
		return fmt.Errorf("find open invitations: %w", err)
	}
	var open []*Participant
	if err := cur.All(ctx, &open); err != nil {
		return fmt.Errorf("read open invitations: %w", err)
	}
	return insertNew(ctx, s.due, dueEntries(open))
}

// dueEntries returns the invitationDue entries of the invited participants
// among parts that expire.
func dueEntries(parts []*Participant) []any {
	var out []any
	for _, p := range parts {
		if p.Status == ParticipantInvited && p.ExpirationDateTime != nil {
			out = append(out, dueEntry{p.ID, *p.ExpirationDateTime})
		}
	}
	return out
}

// ExpireInvitations records as Expired the invitations past their
// expiration, so that filters on participant status agree with what readers
// see (which already reads them as EXPIRED). It finds them in
// invitationDue, expires each in a fixed number of commands by _id, and
// pauses between batches (see expireBatch). It stops with ctx's error as
// soon as ctx ends, between two invitations; the one being expired then is
// finished first (see expireInvitation). Safe to run on every instance at
// once. It returns how many it expired.
func (s *Store) ExpireInvitations(ctx context.Context) (int, error) {
	if err := s.RecoverWrites(ctx); err != nil { // so the sweep sees whole writes
		return 0, err
	}
	cur, err := s.due.Find(ctx, bson.D{{Key: "due", Value: bson.D{{Key: "$lte", Value: s.Now()}}}})
	if err != nil {
		return 0, fmt.Errorf("find expired invitations: %w", err)
	}
	var due []dueEntry
	if err := cur.All(ctx, &due); err != nil {
		return 0, fmt.Errorf("read expired invitations: %w", err)
	}
	n := 0
	for i, batch := range slices.Collect(slices.Chunk(due, expireBatch)) {
		if i > 0 {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-time.After(expirePause):
			}
		}
		expired, err := s.expireAll(ctx, batch)
		n += expired
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// expireAll expires the invitations of batch one after another, checking
// ctx before each, and unlists those it expired in one command. It
// returns how many it expired.
func (s *Store) expireAll(ctx context.Context, batch []dueEntry) (int, error) {
	var done []string
	defer func() { s.unmarkDue(ctx, done...) }()
	for _, e := range batch {
		if err := ctx.Err(); err != nil {
			return len(done), err
		}
		expired, err := s.expireInvitation(ctx, e)
		if err != nil {
			return len(done), err
		}
		if expired {
			done = append(done, e.ParticipantID)
		}
	}
	return len(done), nil
}

// expireInvitation expires the invitation of due entry e if it is still
// open, and drops the entry of one that was answered, or never written.
// Once the expiry's write has begun it is finished whether or not ctx
// ends: a few commands by _id. Cut short, the write would be undone by an
// update whose filter is more than _id, which reads every participant
// where only _id is indexed (past opTimeout at 100,000 referrals, and
// retried), holding a stopping server for minutes.
func (s *Store) expireInvitation(ctx context.Context, e dueEntry) (bool, error) {
	var p Participant
	err := s.participants.FindOne(ctx, bson.D{{Key: "_id", Value: e.ParticipantID}}).Decode(&p)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		// Listed by an invitation that was undone, or is still being
		// written (then leave it until that write is surely over).
		if s.Now().Sub(e.Due) >= abandonedAfter {
			s.unmarkDue(ctx, e.ParticipantID)
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read an expired invitation: %w", err)
	case p.Status != ParticipantInvited:
		s.unmarkDue(ctx, p.ID) // answered; its writer did not get to unlist it
		return false, nil
	case p.EffectiveStatus(s.Now()) != ParticipantExpired:
		return false, nil
	}
	return s.settleInvitation(context.WithoutCancel(ctx), &p, ParticipantExpired)
}

// expirySweepInterval is how often invitations past their expiration are
// recorded as expired; until then they already read as EXPIRED.
const expirySweepInterval = time.Minute

// SweepExpiredInvitations records expired invitations now and every
// expirySweepInterval until ctx ends (the server runs it in the
// background).
func (s *Store) SweepExpiredInvitations(ctx context.Context) {
	tick := time.NewTicker(expirySweepInterval)
	defer tick.Stop()
	for {
		n, err := s.ExpireInvitations(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.Error("expire invitations", "error", err)
		} else if n > 0 {
			s.logger.Info("invitations expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Expiry sweep pacing: it expires expireBatch invitations, then pauses
// expirePause, so that a sweep of thousands leaves the store to requests
// between batches.
const (
	expireBatch = 50
	expirePause = 50 * time.Millisecond
)

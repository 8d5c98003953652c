package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"referrals/storage/retry"
)

// A write and its change must not be separable by a crash, and MongoDB
// writes one document atomically, not two. So a writer first records its
// intent in pendingWrites, the small collection RecoverWrites reads; then
// it writes; then it records the change, publishes it (its head) and drops
// the intent. A process that dies anywhere in between leaves the intent,
// and recovery publishes the change exactly once (see recoverIntent):
//
//   - the change was recorded (its Writer is the intent's): it is
//     published, if no head covers it yet;
//   - the write happened but its change was not recorded: the change is
//     recorded now, under the intent's Writer, with the referral as
//     recovery reads it;
//   - the write did not happen: the intent is dropped (with, for a
//     create, the participants an import wrote before the referral).
//
// A write of several documents carries its intent in its pending claim
// (see claimPending), which its writer settles after publishing.
type intent struct {
	Key    string        `bson:"_id"`
	At     time.Time     `bson:"at"`
	Writer bson.ObjectID `bson:"writer,omitempty"`
	// From is the feed's published head when the intent was recorded:
	// its change, if recorded, is numbered after it.
	From int64 `bson:"from,omitempty"`
	// What an intent of its own (key intentPrefix) says of its write:
	// the referral, the version the write gives it (1 for a create), and
	// the change.
	ReferralID string     `bson:"referralId,omitempty"`
	Version    int64      `bson:"version,omitempty"`
	Type       ChangeType `bson:"type,omitempty"`
	Fields     []string   `bson:"fields,omitempty"`
}

// intentPrefix starts the key of an intent of its own in pendingWrites;
// the other entries there are pending claims' (see claimPending).
const intentPrefix = "change:"

// owned reports whether in is an intent of its own, which recordChange
// drops, rather than a pending claim's.
func (in *intent) owned() bool { return strings.HasPrefix(in.Key, intentPrefix) }

// newIntent returns an intent keyed key with a fresh writer, numbered
// after the feed's published head.
func (s *Store) newIntent(ctx context.Context, key string) *intent {
	from := s.log.Known(ctx)
	w := bson.NewObjectID()
	if key == "" {
		key = intentPrefix + w.Hex()
	}
	return &intent{Key: key, At: s.Now(), Writer: w, From: from}
}

// intend records, before a write of the referral id that gives it
// version, that the write is to record the change t of fields.
func (s *Store) intend(ctx context.Context, id string, version int64, t ChangeType, fields []string) (*intent, error) {
	in := s.newIntent(ctx, "")
	in.ReferralID, in.Version, in.Type, in.Fields = id, version, t, fields
	if _, err := s.pending.InsertOne(ctx, in); err != nil {
		return nil, fmt.Errorf("record the change to come: %w", err)
	}
	return in, nil
}

// giveUp drops the intent of a write refused with err when err says the
// write did not happen (a coded error: a conflict, a missing referral);
// after any other error the write may have happened, and recovery looks.
func (s *Store) giveUp(ctx context.Context, in *intent, err error) {
	if ErrorCodeOf(err) != CodeInternal {
		s.unmarkPending(ctx, in.Key)
	}
}

// dropIntents deletes intents of their own whose changes are published,
// in one command. One it cannot delete, RecoverWrites finds published.
func (s *Store) dropIntents(ctx context.Context, published []*intent) {
	var keys []string
	for _, in := range published {
		keys = append(keys, in.Key)
	}
	if len(keys) == 0 {
		return
	}
	filter := bson.D{{Key: "_id", Value: keys[0]}}
	if len(keys) > 1 {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}
	}
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.pending.DeleteMany(ctx, filter)
		return err
	})
	if err != nil {
		s.logger.WarnContext(ctx, "drop the intents of published changes; recovery will", "error", err)
	}
}

// recordedBy returns the sequence numbers of the changes recorded by the
// writers of entries, among those numbered after the lowest From of them
// up to the highest change recorded. Only recovery reads this, and only
// when it has entries to recover: after a restart, a few changes.
func (s *Store) recordedBy(ctx context.Context, entries []intent) (map[bson.ObjectID]int64, error) {
	want := map[bson.ObjectID]bool{}
	from := int64(-1)
	for _, e := range entries {
		if !e.Writer.IsZero() {
			want[e.Writer] = true
			if from < 0 || e.From < from {
				from = e.From
			}
		}
	}
	out := map[bson.ObjectID]int64{}
	if len(want) == 0 {
		return out, nil
	}
	top, err := s.log.Top(ctx)
	if err != nil {
		return nil, err
	}
	for after := from; after < top && len(out) < len(want); after += recoverChunk {
		changes, err := s.ChangesBetween(ctx, after, min(top, after+recoverChunk))
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			if want[c.Writer] {
				out[c.Writer] = c.Seq
			}
		}
	}
	return out, nil
}

// recoverChunk is how many changes recordedBy reads at a time.
const recoverChunk = 1000

// recoverIntent publishes the change of the intent of its own e, whose
// writer died, exactly once (see intent); rec is recordedBy's answer.
// The caller holds e's recovery claim.
func (s *Store) recoverIntent(ctx context.Context, e intent, rec map[bson.ObjectID]int64) error {
	if seq, ok := rec[e.Writer]; ok {
		if err := s.log.Publish(ctx, seq); err != nil {
			return err
		}
		s.unmarkPending(ctx, e.Key)
		return nil
	}
	r, written, err := s.intentWritten(ctx, e)
	if err != nil {
		return err
	}
	if !written {
		if e.Type == ChangeCreated {
			// An imported referral's participants are written before it
			// (see createImported): those of one never created go too.
			if _, err := s.participants.DeleteMany(ctx, bson.D{{Key: "referralId", Value: e.ReferralID}}); err != nil {
				return fmt.Errorf("drop the participants of a referral never created: %w", err)
			}
		}
		s.unmarkPending(ctx, e.Key)
		return nil
	}
	if s.recordChange(ctx, r, e.Type, e.Fields, &e) {
		s.logger.InfoContext(ctx, "recorded the change of an abandoned write", "referral_id", e.ReferralID, "type", e.Type)
	}
	return nil
}

// intentWritten reads the referral of intent e and tells whether e's
// write happened: the referral exists (a create), or reached e's version
// under the version claim of e's writer (an update: only that claim's
// holder moves the referral to that version).
func (s *Store) intentWritten(ctx context.Context, e intent) (*Referral, bool, error) {
	r, err := s.referralByID(ctx, e.ReferralID)
	switch {
	case ErrorCodeOf(err) == CodeNotFound:
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case e.Version <= 1:
		return r, true, nil
	case r.Version < e.Version:
		return nil, false, nil
	}
	c, found, err := s.readClaim(ctx, fmt.Sprintf("referral:%s:v%d", e.ReferralID, e.Version))
	if err != nil {
		return nil, false, err
	}
	return r, found && c.Writer == e.Writer, nil
}

// Steps of the write path where a test may cut it, as a crash would.
const (
	stepWritten = "written" // the documents are written, the change not recorded
	stepHead    = "head"    // the change is stored, no head covers it yet
	// an imported referral's participants are written, the referral not
	stepParticipants = "participants"
	// an import is about to update a stored referral it has read
	stepImportUpdate = "import update"
)

// reach runs the test hook at step, if any.
func (s *Store) reach(step string) {
	if s.step != nil {
		s.step(step)
	}
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"referrals/storage/retry"

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

// changeSkipped marks a sequence number the feed gave up waiting for (its
// writer died between taking the number and recording the change). The
// marker takes the number for good, so a late writer records its change
// under another one; readers pass over it.
const changeSkipped ChangeType = "SKIPPED"

// Change is one event of the change feed: which referral changed, how,
// which fields (as the API names them) and when; and the referral as this
// change left it, so that subscribers see each change's own state (its
// status and version, who takes part) however late they read it.
type Change struct {
	// Seq numbers the changes of one store densely from 1, in the order
	// readers deliver them.
	Seq int64 `bson:"seq"`
	// Key is Seq as the document's _id (see changeKey).
	Key        string        `bson:"_id"`
	ReferralID string        `bson:"referralId"`
	Type       ChangeType    `bson:"type"`
	Fields     []string      `bson:"fields"`
	At         time.Time     `bson:"at"`
	After      *Referral     `bson:"after,omitempty"`
	Writer     bson.ObjectID `bson:"writer"` // tells a writer's own retried insert from another's
}

// changeKey is the _id of the change with sequence number seq: a string,
// because FerretDB filters a string or ObjectID _id in SQLite instead of
// decoding every document, of 20 digits, so that keys sort as numbers do.
func changeKey(seq int64) string { return fmt.Sprintf("%020d", seq) }

// maxSeqAttempts bounds how often a writer takes a new sequence number
// because other processes took the ones it tried.
const maxSeqAttempts = 100

// errSeqTaken: another writer (or a reader's skip marker) holds the
// sequence number a writer tried.
var errSeqTaken = errors.New("sequence number taken")

// recordChange appends a change to the feed under the next free sequence
// number, publishes it (advances this process's head past it) and hands
// it to this process's feed reader; then it drops the intent in, which
// the writer recorded before its write (see intend), unless a pending
// claim holds it (its writer settles the claim). The write it describes
// has already happened, so a failure is retried (see insertChange) and
// then logged, not returned: the caller's change stands, and its intent
// stays for RecoverWrites to publish. It reports whether the change is
// published.
//
// No writer returns, and no reader sees the change, before a head covers
// it: what a client was told of is what a restarted process, or another
// one, finds in the feed.
//
// The writers of a process record one change at a time, in the order they
// queue: a change is never stored before one numbered lower by the same
// process, so none waits on another's slow insert for its delivery. The
// first writer of a queue records the changes queued behind it too, and
// publishes them with one head update, then passes the job on (group
// commit).
func (s *Store) recordChange(ctx context.Context, after *Referral, t ChangeType, fields []string, in *intent) bool {
	return s.recordChanges(ctx, []changeToRecord{{after, t, fields, in}})[0]
}

// changeToRecord is a change recordChanges records: the referral as the
// write left it, what changed and the writer's intent.
type changeToRecord struct {
	after  *Referral
	t      ChangeType
	fields []string
	in     *intent
}

// recordChanges records the changes of several writes of one writer (an
// import's batch) as recordChange records one: queued together, in
// order, so that one leader stores them in one command and publishes
// them with one head. It reports for each whether it is published.
func (s *Store) recordChanges(ctx context.Context, cs []changeToRecord) []bool {
	f := s.feed
	mine := make([]*queued, len(cs))
	f.mu.Lock()
	for i, c := range cs {
		mine[i] = &queued{c: Change{ReferralID: c.after.ID, Type: c.t, Fields: c.fields, At: s.Now(), After: c.after, Writer: c.in.Writer},
			in: c.in, lead: make(chan struct{}), done: make(chan struct{})}
		f.queue = append(f.queue, mine[i])
	}
	if !f.recording && len(mine) > 0 {
		f.recording = true
		close(mine[0].lead)
	}
	f.mu.Unlock()
	out := make([]bool, len(mine))
	for i, p := range mine {
		select {
		case <-p.done:
		case <-p.lead:
			s.recordQueue(ctx)
		}
		<-p.done
		out[i] = p.published
	}
	return out
}

// recordQueue records every change queued, as the writer whose turn it
// is (see recordChange), and passes the turn on.
func (s *Store) recordQueue(ctx context.Context) {
	f := s.feed
	f.mu.Lock()
	batch := f.queue
	f.queue = nil
	f.mu.Unlock()
	released := false
	defer func() { // also when storeChange panics: no writer may wait for ever
		if !released {
			for _, q := range batch {
				close(q.done)
			}
		}
		f.mu.Lock()
		if len(f.queue) > 0 {
			close(f.queue[0].lead)
		} else {
			f.recording = false
		}
		f.mu.Unlock()
	}()
	stored := s.storeChanges(ctx, batch)
	if len(stored) == 0 {
		return
	}
	s.reach(stepHead)
	published := s.advanceHead(ctx, stored[len(stored)-1].c.Seq) == nil
	for _, q := range stored {
		// Delivered even when the head could not be written: this
		// process's next head covers it, and its intent stays meanwhile.
		f.recorded(q.c)
		q.published = published
	}
	released = true
	for _, q := range batch {
		close(q.done)
	}
	if published {
		s.dropIntents(ctx, stored)
	}
	s.trimChanges(ctx, len(stored))
}

// storeChanges stores the changes of batch under the next free sequence
// numbers, in order, and returns those it stored. A batch of several
// goes first in one command under consecutive numbers (an import's
// batch: one insert instead of one each); what that does not store goes
// one at a time through storeChange.
func (s *Store) storeChanges(ctx context.Context, batch []*queued) []*queued {
	n, known := 0, true
	if len(batch) > 1 {
		n, known = s.storeRun(ctx, batch)
	}
	stored := batch[:n:n]
	if !known {
		// Whether the rest were stored is unknown: their intents stay,
		// and recovery publishes each exactly once.
		return stored
	}
	for _, q := range batch[n:] {
		if seq, ok := s.storeChange(ctx, q.c); ok {
			q.c.Seq, q.c.Key = seq, changeKey(seq)
			stored = append(stored, q)
		}
	}
	return stored
}

// storeRun inserts the changes of batch under consecutive sequence
// numbers in one ordered insert and returns how many, from the first,
// it stored: all, or those before the first the store refused (a number
// another process holds, or a failure). It finds what an insert whose
// answer was lost stored by reading the numbers back: an ordered insert
// stores a prefix, so no gap is left above the head. The numbers of the
// rest are given back for storeChange to try again; known is false when
// the numbers could not be read back.
func (s *Store) storeRun(ctx context.Context, batch []*queued) (n int, known bool) {
	docs := make([]any, len(batch))
	keys := make([]string, len(batch))
	for i, q := range batch {
		q.c.Seq = s.takeSeq(ctx)
		q.c.Key, keys[i] = changeKey(q.c.Seq), changeKey(q.c.Seq)
		docs[i] = q.c
	}
	n, known = len(batch), true
	if batch[n-1].c.Seq-batch[0].c.Seq == int64(n-1) {
		_, err := s.changes.InsertMany(ctx, docs)
		if err == nil {
			return n, true
		}
		n, known = s.storedPrefix(ctx, batch, keys)
	} else {
		n = 0 // a number was taken meanwhile: one at a time
	}
	for i := len(batch) - 1; i >= n; i-- {
		s.feed.abandon(batch[i].c.Seq, true)
	}
	return n, known
}

// storedPrefix is how many changes of batch, from the first, are stored
// under their keys by their own writers; known is false when they could
// not be read.
func (s *Store) storedPrefix(ctx context.Context, batch []*queued, keys []string) (int, bool) {
	held, err := findByID(ctx, s, s.changes, keys, nil, true, func(c *Change) string { return c.Key })
	if err != nil {
		s.logger.WarnContext(ctx, "read back a batch of changes; recovery will publish what it stored", "error", err)
		return 0, false
	}
	for i, q := range batch {
		if c := held[keys[i]]; c == nil || c.Writer != q.c.Writer {
			return i, true
		}
	}
	return len(batch), true
}

// queued is a change waiting for its process to record it.
type queued struct {
	c         Change
	in        *intent
	published bool          // set before done is closed
	lead      chan struct{} // closed when this writer is to record the queue
	done      chan struct{} // closed once c is published or given up
}

// storeChange inserts c under the next free sequence number, which it
// returns; the caller publishes it.
func (s *Store) storeChange(ctx context.Context, c Change) (int64, bool) {
	for range maxSeqAttempts {
		c.Seq = s.takeSeq(ctx)
		c.Key = changeKey(c.Seq)
		err := s.insertChange(ctx, c)
		if errors.Is(err, errSeqTaken) {
			// Another process is ahead: jump to the highest head rather
			// than trying its numbers one by one, which a busy process can
			// outrun for ever.
			s.feed.abandon(c.Seq, false)
			if _, err := s.refreshKnown(ctx); err != nil {
				s.logger.WarnContext(ctx, "read the change feed's heads", "error", err)
			}
			continue
		}
		if err != nil {
			// The next change tries the number again (see abandon).
			s.feed.abandon(c.Seq, true)
			s.logger.ErrorContext(ctx, "record change", "referral_id", c.ReferralID, "type", c.Type, "seq", c.Seq, "error", err)
			return 0, false
		}
		return c.Seq, true
	}
	s.logger.ErrorContext(ctx, "record change: every sequence number tried was taken", "referral_id", c.ReferralID, "type", c.Type, "attempts", maxSeqAttempts)
	return 0, false
}

// insertChange inserts c. _id uniqueness decides who holds a sequence
// number on every MongoDB-compatible store, so a duplicate key means
// errSeqTaken, unless it is this writer's own earlier attempt that landed
// although its answer was lost.
func (s *Store) insertChange(ctx context.Context, c Change) error {
	tried, taken := false, false
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := s.changes.InsertOne(ctx, c)
		if !mongo.IsDuplicateKeyError(err) {
			tried = true
			return err
		}
		if tried {
			var held Change
			if err := s.changes.FindOne(ctx, bson.D{{Key: "_id", Value: c.Key}}).Decode(&held); err != nil {
				return err
			}
			taken = held.Writer != c.Writer
			return nil
		}
		taken = true
		return nil
	})
	if err == nil && taken {
		return errSeqTaken
	}
	return err
}

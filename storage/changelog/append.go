package changelog

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"referrals/storage/retry"
)

// maxSeqAttempts bounds how often a writer takes a new sequence number
// because other processes took the ones it tried.
const maxSeqAttempts = 100

// errSeqTaken: another writer (or a reader's skip marker) holds the
// sequence number a writer tried.
var errSeqTaken = errors.New("sequence number taken")

// queued is an entry waiting for its process to record it.
type queued[E any] struct {
	e         E
	published bool          // set before done is closed
	lead      chan struct{} // closed when this writer is to record the queue
	done      chan struct{} // closed once e is published or given up
}

// Append records entries (their Writer set, each its writer's) under the
// next free sequence numbers, in order, publishes them (advances this
// process's head past them) and hands them to this process's reader. It
// reports for each whether it is published. The writes they describe
// have already happened, so a failure is retried (see insert) and then
// logged, not returned: the writer's intent stays for its recovery to
// publish (Publish, Top), and it drops the intents of those published.
//
// No writer returns, and no reader sees an entry, before a head covers
// it: what a client was told of is what a restarted process, or another
// one, finds in the log.
//
// The writers of a process record one queue at a time, in the order they
// queue: an entry is never stored before one numbered lower by the same
// process, so none waits on another's slow insert for its delivery. The
// first writer of a queue records the entries queued behind it too, and
// publishes them with one head update, then passes the job on (group
// commit). Several entries of one call (an import's batch) are queued
// together and stored in one command where the numbers allow.
func (l *Log[E, P]) Append(ctx context.Context, entries []E) []bool {
	mine := make([]*queued[E], len(entries))
	l.mu.Lock()
	for i, e := range entries {
		mine[i] = &queued[E]{e: e, lead: make(chan struct{}), done: make(chan struct{})}
		l.queue = append(l.queue, mine[i])
	}
	if !l.recording && len(mine) > 0 {
		l.recording = true
		close(mine[0].lead)
	}
	l.mu.Unlock()
	out := make([]bool, len(mine))
	for i, q := range mine {
		select {
		case <-q.done:
		case <-q.lead:
			l.recordQueue(ctx)
		}
		<-q.done
		out[i] = q.published
	}
	return out
}

// recordQueue records every entry queued, as the writer whose turn it is
// (see Append), and passes the turn on.
func (l *Log[E, P]) recordQueue(ctx context.Context) {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	l.mu.Unlock()
	released := false
	defer func() { // also when storing panics: no writer may wait for ever
		if !released {
			for _, q := range batch {
				close(q.done)
			}
		}
		l.mu.Lock()
		if len(l.queue) > 0 {
			close(l.queue[0].lead)
		} else {
			l.recording = false
		}
		l.mu.Unlock()
	}()
	stored := l.store(ctx, batch)
	if len(stored) == 0 {
		return
	}
	if l.opts.BeforeHead != nil {
		l.opts.BeforeHead()
	}
	published := l.advanceHead(ctx, P(&stored[len(stored)-1].e).Head().Seq) == nil
	for _, q := range stored {
		// Delivered even when the head could not be written: this
		// process's next head covers it, and its intent stays meanwhile.
		l.recorded(q.e)
		q.published = published
	}
	released = true
	for _, q := range batch {
		close(q.done)
	}
	l.trim(ctx, len(stored))
}

// store stores the entries of batch under the next free sequence
// numbers, in order, and returns those it stored. A batch of several goes
// first in one command under consecutive numbers (one insert instead of
// one each); what that does not store goes one at a time through
// storeOne.
func (l *Log[E, P]) store(ctx context.Context, batch []*queued[E]) []*queued[E] {
	n, known := 0, true
	if len(batch) > 1 {
		n, known = l.storeRun(ctx, batch)
	}
	stored := batch[:n:n]
	if !known {
		// Whether the rest were stored is unknown: their intents stay,
		// and recovery publishes each exactly once.
		return stored
	}
	for _, q := range batch[n:] {
		if l.storeOne(ctx, &q.e) {
			stored = append(stored, q)
		}
	}
	return stored
}

// storeRun inserts the entries of batch under consecutive sequence
// numbers in one ordered insert and returns how many, from the first, it
// stored: all, or those before the first the store refused (a number
// another process holds, or a failure). It finds what an insert whose
// answer was lost stored by reading the numbers back: an ordered insert
// stores a prefix, so no gap is left above the head. The numbers of the
// rest are given back for storeOne to try again; known is false when the
// numbers could not be read back.
func (l *Log[E, P]) storeRun(ctx context.Context, batch []*queued[E]) (n int, known bool) {
	docs := make([]any, len(batch))
	keys := make([]string, len(batch))
	for i, q := range batch {
		h := P(&q.e).Head()
		h.Seq = l.takeSeq(ctx)
		h.Key, keys[i] = Key(h.Seq), Key(h.Seq)
		docs[i] = &q.e
	}
	n, known = len(batch), true
	first, last := P(&batch[0].e).Head().Seq, P(&batch[n-1].e).Head().Seq
	if last-first == int64(n-1) {
		_, err := l.changes.InsertMany(ctx, docs)
		if err == nil {
			return n, true
		}
		n, known = l.storedPrefix(ctx, batch, keys)
	} else {
		n = 0 // a number was taken meanwhile: one at a time
	}
	for i := len(batch) - 1; i >= n; i-- {
		l.abandon(P(&batch[i].e).Head().Seq, true)
	}
	return n, known
}

// storedPrefix is how many entries of batch, from the first, are stored
// under their keys by their own writers; known is false when they could
// not be read.
func (l *Log[E, P]) storedPrefix(ctx context.Context, batch []*queued[E], keys []string) (int, bool) {
	held, err := l.opts.ReadKeys(ctx, keys)
	if err != nil {
		l.opts.Logger.WarnContext(ctx, "read back a batch of changes; recovery will publish what it stored", "error", err)
		return 0, false
	}
	for i, q := range batch {
		if e := held[keys[i]]; e == nil || P(e).Head().Writer != P(&q.e).Head().Writer {
			return i, true
		}
	}
	return len(batch), true
}

// storeOne inserts e under the next free sequence number, which it sets
// in e's header; the caller publishes it.
func (l *Log[E, P]) storeOne(ctx context.Context, e *E) bool {
	h := P(e).Head()
	for range maxSeqAttempts {
		h.Seq = l.takeSeq(ctx)
		h.Key = Key(h.Seq)
		err := l.insert(ctx, e)
		if errors.Is(err, errSeqTaken) {
			// Another process is ahead: jump to the highest head rather
			// than trying its numbers one by one, which a busy process can
			// outrun for ever.
			l.abandon(h.Seq, false)
			if _, err := l.Latest(ctx); err != nil {
				l.opts.Logger.WarnContext(ctx, "read the change feed's heads", "error", err)
			}
			continue
		}
		if err != nil {
			// The next entry tries the number again (see abandon).
			l.abandon(h.Seq, true)
			l.opts.Logger.ErrorContext(ctx, "record change", "change", e, "seq", h.Seq, "error", err)
			return false
		}
		return true
	}
	l.opts.Logger.ErrorContext(ctx, "record change: every sequence number tried was taken", "change", e, "attempts", maxSeqAttempts)
	return false
}

// insert inserts e. _id uniqueness decides who holds a sequence number on
// every MongoDB-compatible store, so a duplicate key means errSeqTaken,
// unless it is this writer's own earlier attempt that landed although its
// answer was lost.
func (l *Log[E, P]) insert(ctx context.Context, e *E) error {
	h := P(e).Head()
	tried, taken := false, false
	err := retry.Idempotent(ctx, func(ctx context.Context) error {
		_, err := l.changes.InsertOne(ctx, e)
		if !mongo.IsDuplicateKeyError(err) {
			tried = true
			return err
		}
		if tried {
			var held Header
			if err := l.changes.FindOne(ctx, bson.D{{Key: "_id", Value: h.Key}}).Decode(&held); err != nil {
				return err
			}
			taken = held.Writer != h.Writer
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

package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ChangeFeed names the mechanism FollowChanges uses.
func (s *Store) ChangeFeed() string {
	return "sequence-numbered changes collection, polled every " + pollInterval.String()
}

// LatestChange returns the sequence number of the newest change
// published (the highest head: a process answers a write, or delivers
// its change, only once its head covers it), 0 when there is none.
func (s *Store) LatestChange(ctx context.Context) (int64, error) {
	return s.refreshKnown(ctx)
}

// FollowChanges calls deliver, in sequence order and once each, with every
// change numbered after `after`, recorded by this process or any other
// sharing the store, until ctx ends. A number taken but not recorded is
// waited for gapTimeout (on the store's clock), then skipped, which is
// logged. One Store has one follower at a time.
func (s *Store) FollowChanges(ctx context.Context, after int64, deliver func(Change)) error {
	f := s.feed
	f.mu.Lock()
	if f.following {
		f.mu.Unlock()
		return errors.New("the change feed already has a follower in this process")
	}
	f.following = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.following, f.local = false, map[int64]Change{}
		f.mu.Unlock()
	}()
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	r := reader{s: s, next: after + 1, deliver: deliver}
	for {
		r.catchUp(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
		case <-poll.C:
			if _, err := s.refreshKnown(ctx); err != nil && ctx.Err() == nil {
				s.logger.WarnContext(ctx, "read the change feed's heads", "error", err)
			}
		}
	}
}

// reader is FollowChanges' position in the feed.
type reader struct {
	s       *Store
	next    int64     // the sequence number to deliver next
	missing time.Time // when next was first found missing from the store
	tried   time.Time // when the store was last asked for next
	deliver func(Change)
}

// catchUp delivers what can be delivered in order, and stops at a number
// that is not recorded yet.
func (r *reader) catchUp(ctx context.Context) {
	for ctx.Err() == nil {
		f := r.s.feed
		f.mu.Lock()
		c, local := f.local[r.next]
		delete(f.local, r.next)
		for seq := range f.local { // recorded before this follower's start
			if seq < r.next {
				delete(f.local, seq)
			}
		}
		wait := f.inflight[r.next] || r.next > f.known
		f.mu.Unlock()
		switch {
		case local:
			r.advance(c)
		case wait:
			return
		default:
			if !r.fetch(ctx) {
				return
			}
		}
	}
}

// fetch reads the change numbered next, recorded by another process (or
// by this one before its reader started), and delivers it; after
// gapTimeout without one, it takes the number with a skip marker. It
// reports whether next moved on.
func (r *reader) fetch(ctx context.Context) bool {
	if now := r.s.Now(); !r.missing.IsZero() && now.Sub(r.tried) < pollInterval {
		return false // asked just now: every change recorded here wakes the reader
	}
	r.tried = r.s.Now()
	c, found, err := r.s.readChange(ctx, r.next)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			r.s.logger.WarnContext(ctx, "read a change", "seq", r.next, "error", err)
		}
		return false
	case found:
		r.advance(c)
		return true
	case r.missing.IsZero():
		r.missing = r.s.Now()
		return false
	case r.s.Now().Sub(r.missing) < gapTimeout:
		return false
	}
	skipped, err := r.s.skipChange(ctx, r.next)
	if err != nil {
		r.s.logger.WarnContext(ctx, "skip a change never recorded", "seq", r.next, "error", err)
		return false
	}
	if skipped {
		r.s.logger.WarnContext(ctx, "skipped a sequence number whose change was never recorded", "seq", r.next, "waited", gapTimeout)
		r.next, r.missing = r.next+1, time.Time{}
	}
	return true // recorded meanwhile (or skipped): read it on the next pass
}

func (r *reader) advance(c Change) {
	if c.Type != changeSkipped {
		r.deliver(c)
	}
	r.next, r.missing = c.Seq+1, time.Time{}
}

// readChange reads the change numbered seq.
func (s *Store) readChange(ctx context.Context, seq int64) (Change, bool, error) {
	var c Change
	err := s.changes.FindOne(ctx, bson.D{{Key: "_id", Value: changeKey(seq)}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read change %d: %w", seq, err)
	}
	return c, true, nil
}

// skipChange takes seq with a skip marker, unless a change holds it.
func (s *Store) skipChange(ctx context.Context, seq int64) (bool, error) {
	_, err := s.changes.InsertOne(ctx, Change{Seq: seq, Key: changeKey(seq), Type: changeSkipped, Fields: []string{}, At: s.Now()})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, err
}

// CheckResume tells whether a subscription may resume after the change
// numbered `after`: CodeChangeIDExpired when more than MaxResumeBack
// changes were recorded since, when the feed no longer holds that change,
// or when it has no such change yet. Only the first of those is known
// before reading the change itself. The messages name no position: the
// feed's numbers count every organization's changes.
func (s *Store) CheckResume(ctx context.Context, after int64) error {
	head, err := s.LatestChange(ctx)
	if err != nil {
		return err
	}
	if after < head-MaxResumeBack {
		return Errorf(CodeChangeIDExpired, "a subscription resumes at most %d changes (of all organizations) after its id, and more have been recorded since that event; subscribe without a resume id and read the current state", MaxResumeBack)
	}
	if after > head {
		return Errorf(CodeChangeIDExpired, "this feed has no event with that id; subscribe without a resume id and read the current state")
	}
	// The change itself must still be held: the store may have dropped
	// older changes sooner (a capped collection trims by size too), and
	// then the changes after it may be gone as well.
	if _, held, err := s.readChange(ctx, after); err != nil {
		return err
	} else if !held {
		return Errorf(CodeChangeIDExpired, "the feed no longer holds the event with that id, nor perhaps those after it; subscribe without a resume id and read the current state")
	}
	return nil
}

// ChangesBetween reads the changes numbered after `after` up to upTo, in
// order, in one selection by _id (point reads where the store answers
// nothing else from an index and the embedded read planner does not serve
// it): numbers with no change (skipped, or dropped since) are passed over.
// It serves subscriptions that resume from further back than a reader
// keeps in memory, a chunk at a time.
func (s *Store) ChangesBetween(ctx context.Context, after, upTo int64) ([]Change, error) {
	keys := make([]string, 0, max(upTo-after, 0))
	for seq := after + 1; seq <= upTo; seq++ {
		keys = append(keys, changeKey(seq))
	}
	byKey, err := findByID(ctx, s, s.changes, keys, nil, s.idOnly(), func(c *Change) string { return c.Key })
	if err != nil {
		return nil, fmt.Errorf("read changes %d to %d: %w", after+1, upTo, err)
	}
	out := make([]Change, 0, len(byKey))
	for _, k := range keys {
		if c := byKey[k]; c != nil && c.Type != changeSkipped {
			out = append(out, *c)
		}
	}
	return out, nil
}

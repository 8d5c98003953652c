package changelog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Follow calls deliver, in sequence order and once each, with every entry
// numbered after `after`, recorded by this process or any other sharing
// the log, until ctx ends. A number taken but not recorded is waited for
// gapTimeout (on the log's clock), then skipped, which is logged. One Log
// has one follower at a time.
func (l *Log[E, P]) Follow(ctx context.Context, after int64, deliver func(E)) error {
	l.mu.Lock()
	if l.following {
		l.mu.Unlock()
		return errors.New("the change feed already has a follower in this process")
	}
	l.following = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.following, l.local = false, map[int64]E{}
		l.mu.Unlock()
	}()
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	r := reader[E, P]{l: l, next: after + 1, deliver: deliver}
	for {
		r.catchUp(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		case <-poll.C:
			if _, err := l.Latest(ctx); err != nil && ctx.Err() == nil {
				l.opts.Logger.WarnContext(ctx, "read the change feed's heads", "error", err)
			}
		}
	}
}

// reader is Follow's position in the log.
type reader[E any, P Entry[E]] struct {
	l       *Log[E, P]
	next    int64     // the sequence number to deliver next
	missing time.Time // when next was first found missing from the store
	tried   time.Time // when the store was last asked for next
	deliver func(E)
}

// catchUp delivers what can be delivered in order, and stops at a number
// that is not recorded yet.
func (r *reader[E, P]) catchUp(ctx context.Context) {
	for ctx.Err() == nil {
		l := r.l
		l.mu.Lock()
		e, local := l.local[r.next]
		delete(l.local, r.next)
		for seq := range l.local { // recorded before this follower's start
			if seq < r.next {
				delete(l.local, seq)
			}
		}
		wait := l.inflight[r.next] || r.next > l.known
		l.mu.Unlock()
		switch {
		case local:
			r.advance(e)
		case wait:
			return
		default:
			if !r.fetch(ctx) {
				return
			}
		}
	}
}

// fetch reads the entry numbered next, recorded by another process (or by
// this one before its reader started), and delivers it; after gapTimeout
// without one, it takes the number with a skip marker. It reports whether
// next moved on.
func (r *reader[E, P]) fetch(ctx context.Context) bool {
	now := r.l.opts.Now
	if !r.missing.IsZero() && now().Sub(r.tried) < pollInterval {
		return false // asked just now: every entry recorded here wakes the reader
	}
	r.tried = now()
	e, found, err := r.l.Read(ctx, r.next)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			r.l.opts.Logger.WarnContext(ctx, "read a change", "seq", r.next, "error", err)
		}
		return false
	case found:
		r.advance(e)
		return true
	case r.missing.IsZero():
		r.missing = now()
		return false
	case now().Sub(r.missing) < gapTimeout:
		return false
	}
	skipped, err := r.l.skip(ctx, r.next)
	if err != nil {
		r.l.opts.Logger.WarnContext(ctx, "skip a change never recorded", "seq", r.next, "error", err)
		return false
	}
	if skipped {
		r.l.opts.Logger.WarnContext(ctx, "skipped a sequence number whose change was never recorded", "seq", r.next, "waited", gapTimeout)
		r.next, r.missing = r.next+1, time.Time{}
	}
	return true // recorded meanwhile (or skipped): read it on the next pass
}

func (r *reader[E, P]) advance(e E) {
	if !P(&e).Skipped() {
		r.deliver(e)
	}
	r.next, r.missing = P(&e).Head().Seq+1, time.Time{}
}

// Read reads the entry numbered seq; found is false when the log holds
// none (not recorded yet, or dropped since). A skip marker is found.
func (l *Log[E, P]) Read(ctx context.Context, seq int64) (e E, found bool, err error) {
	err = l.changes.FindOne(ctx, bson.D{{Key: "_id", Value: Key(seq)}}).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read change %d: %w", seq, err)
	}
	return e, true, nil
}

// skip takes seq with a skip marker, unless an entry holds it.
func (l *Log[E, P]) skip(ctx context.Context, seq int64) (bool, error) {
	var marker E
	P(&marker).Skip(l.opts.Now())
	*P(&marker).Head() = Header{Seq: seq, Key: Key(seq)}
	_, err := l.changes.InsertOne(ctx, &marker)
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, err
}

// Between reads the entries numbered after `after` up to upTo, in order,
// in one selection by _id (ReadKeys): numbers with no entry (skipped, or
// dropped since) are passed over. It serves readers that resume from
// further back than they keep in memory, a chunk at a time.
func (l *Log[E, P]) Between(ctx context.Context, after, upTo int64) ([]E, error) {
	keys := make([]string, 0, max(upTo-after, 0))
	for seq := after + 1; seq <= upTo; seq++ {
		keys = append(keys, Key(seq))
	}
	byKey, err := l.opts.ReadKeys(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read changes %d to %d: %w", after+1, upTo, err)
	}
	out := make([]E, 0, len(byKey))
	for _, k := range keys {
		if e := byKey[k]; e != nil && !P(e).Skipped() {
			out = append(out, *e)
		}
	}
	return out, nil
}

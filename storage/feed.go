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

// Change feed tuning.
const (
	// changesCapBytes bounds the capped `changes` collection; at 1–2 KB a
	// change (the referral as the change left it included) it holds the
	// last ~20,000 changes, far more than a reader can fall behind between
	// reconnects.
	changesCapBytes = 32 << 20
	// resumeMargin is how far back in time a reopened cursor looks, so
	// changes from instances whose clocks lag a little are not skipped;
	// changes already delivered are recognised by id and dropped.
	resumeMargin = 5 * time.Second
	// reopenDelay paces reopening a cursor the store closed or could not
	// open.
	reopenDelay = 50 * time.Millisecond
	// awaitTime is how long one getMore waits for a new change.
	awaitTime = time.Second
	// cursorLifetime is how long one cursor is read before it is reopened,
	// and a cursor is also reopened once a getMore waited in vain. FerretDB
	// gives a capped collection's documents their order before they are
	// committed, and its tailable cursor skips one committed after a later
	// one it has returned; the reopened cursor reads the last resumeMargin
	// again, so a change committed up to resumeMargin-cursorLifetime late
	// is still delivered.
	cursorLifetime = time.Second
)

// feedStart marks the beginning of the feed. FerretDB closes a tailable
// cursor whose first batch is empty, so the collection must never be.
const feedStart ChangeType = "FEED_START"

// prepareFeed picks the change feed: the deployment's change streams where
// it offers them, else the capped `changes` collection, created with its
// first document when missing.
func (s *Store) prepareFeed(ctx context.Context) error {
	if s.changeStreams = s.detectChangeStreams(ctx); s.changeStreams {
		return nil
	}
	names, err := s.db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: s.changes.Name()}})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	if len(names) == 0 {
		err := s.db.CreateCollection(ctx, s.changes.Name(), options.CreateCollection().SetCapped(true).SetSizeInBytes(changesCapBytes))
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // 48: created meanwhile by another instance
			return fmt.Errorf("create the changes collection: %w", err)
		}
	}
	n, err := s.changes.EstimatedDocumentCount(ctx)
	if err != nil {
		return fmt.Errorf("count changes: %w", err)
	}
	if n == 0 {
		if _, err := s.changes.InsertOne(ctx, Change{ID: bson.NewObjectID(), Type: feedStart, At: s.Now(), Fields: []string{}}); err != nil {
			return fmt.Errorf("start the changes collection: %w", err)
		}
	}
	return nil
}

// FollowChanges calls deliver, in order, with every change recorded after
// it starts, by this instance or any other sharing the store, until ctx
// ends. It tails the capped `changes` collection with an awaitData cursor;
// when the store closes the cursor, and every cursorLifetime, it reopens
// one from a little before where it left off, dropping what it already
// delivered, so there are no gaps or duplicates. (A change committed late
// comes after later ones.)
//
// Where the deployment offers change streams, it watches the referrals
// collection instead (see followStream).
func (s *Store) FollowChanges(ctx context.Context, deliver func(Change)) error {
	if s.changeStreams {
		return s.followStream(ctx, deliver)
	}
	var last Change
	err := s.changes.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Decode(&last)
	if err != nil {
		return fmt.Errorf("find the latest change: %w", err)
	}
	seen := map[bson.ObjectID]time.Time{last.ID: last.At}
	from := last.At
	for ctx.Err() == nil {
		var ended bool
		if from, ended = s.tail(ctx, from, seen, deliver); !ended {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(reopenDelay):
		}
	}
	return nil
}

// tail reads one tailable cursor until it ends, waits in vain or has lived
// cursorLifetime, and returns where the next one must start and whether
// the store ended it (or it could not be opened).
func (s *Store) tail(ctx context.Context, from time.Time, seen map[bson.ObjectID]time.Time, deliver func(Change)) (time.Time, bool) {
	// FerretDB closes a tailable cursor whose first batch is short, and the
	// changes already seen since from are all still there: as many at once
	// make a reopened cursor skip them in one batch.
	batch := int32(max(1, len(seen)))
	opts := options.Find().SetCursorType(options.TailableAwait).SetBatchSize(batch).SetMaxAwaitTime(awaitTime)
	cur, err := s.changes.Find(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$gte", Value: from}}}}, opts)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.WarnContext(ctx, "open the change feed", "error", err)
		}
		return from, true
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for opened := time.Now(); time.Since(opened) < cursorLifetime && cur.TryNext(ctx); {
		var c Change
		if err := cur.Decode(&c); err != nil {
			s.logger.ErrorContext(ctx, "decode a change", "error", err)
			continue
		}
		if _, dup := seen[c.ID]; dup {
			continue
		}
		seen[c.ID] = c.At
		if c.Type != feedStart {
			deliver(c)
		}
		if start := c.At.Add(-resumeMargin); start.After(from) {
			from = start
			for id, at := range seen {
				if at.Before(from) {
					delete(seen, id)
				}
			}
		}
	}
	return from, cur.Err() != nil || cur.ID() == 0
}

package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"referrals/storage/embedded/sqlplan"
)

// pointReadConcurrency bounds the reads by _id one batch has in flight. On
// 2 cores more do not finish sooner: 250 reads took 157, 153, 126 and
// 118 ms with 1, 4, 8 and 16 in flight.
const pointReadConcurrency = 8

// idOnly reports whether the store answers only {_id: v} from an index.
// Batched reads by id are then point reads: one read by _id took 0.5 ms
// on the embedded store, a query naming several ids ($in) 90 µs per
// participant and 220 µs per referral in the collection (10,000
// referrals: 2.3 s and 2.2 s), so point reads cost less from a few hundred
// documents on, and little below.
func (s *Store) idOnly() bool { return s.pushdown == PushdownIDOnly }

// findByID returns the documents of coll with the given ids, keyed by key:
// one selection (findByKey) of the ids ANDed with scope; or, with point and
// no read planner for coll, one read by {_id: id} alone per id,
// concurrently, where scope is not applied: the caller checks the same
// rule in Go on every document it keeps. Unknown ids are absent.
func findByID[T any](ctx context.Context, s *Store, coll *mongo.Collection, ids []string, scope bson.D, point bool, key func(*T) string) (map[string]*T, error) {
	if !point || s.planTable(coll) != nil {
		filter := and(bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, scope)
		return findByKey(ctx, s, coll, filter, len(ids), key)
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	out := make(map[string]*T, len(ids))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pointReadConcurrency)
	for _, id := range ids {
		g.Go(func() error {
			doc := new(T)
			err := coll.FindOne(gctx, bson.D{{Key: "_id", Value: id}}).Decode(doc)
			if errors.Is(err, mongo.ErrNoDocuments) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s %s: %w", coll.Name(), id, err)
			}
			mu.Lock()
			defer mu.Unlock()
			out[key(doc)] = doc
			return nil
		})
	}
	return out, g.Wait()
}

// findByKey returns the documents of coll matching filter, keyed by key:
// one selection of the embedded read planner, or one find whose batch size
// covers every expected document, so the result arrives in one round trip
// instead of the driver's default first batch of 101.
func findByKey[T any, K comparable](ctx context.Context, s *Store, coll *mongo.Collection, filter bson.D, expected int, key func(*T) K) (map[K]*T, error) {
	var docs []*T
	done, err := s.planned(ctx, coll, "by key", func(t *sqlplan.Table, db *sql.DB) error {
		raws, err := t.Documents(ctx, db, filter, sqlplan.Order{Path: "_id"})
		if err == nil {
			docs, err = decodeAll[T](raws)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !done {
		cur, err := coll.Find(ctx, filter, options.Find().SetBatchSize(batchSizeFor(expected)))
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", coll.Name(), err)
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("read %s: %w", coll.Name(), err)
		}
	}
	out := make(map[K]*T, len(docs))
	for _, d := range docs {
		out[key(d)] = d
	}
	return out, nil
}

// batchSizeFor returns a first-batch size for a query expected to return
// about n documents, with room for more. MongoDB still caps a batch at 16 MiB.
func batchSizeFor(n int) int32 {
	return int32(max(101, 8*n))
}

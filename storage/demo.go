package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// Empty reports whether the store holds no referral. One document is
// enough to tell, and cheap everywhere: a count reads the whole collection
// on stores that index only _id.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	err := s.referrals.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for referrals: %w", err)
	}
	return false, nil
}

// LoadReferrals writes referrals and participants as they are into a
// store nothing reads from yet (the server loads the demo data before it
// serves): as InsertReferrals, but from bulkLoad referrals on the
// embedded store, FerretDB writes the documents alone, and the read
// planner's indexes and side tables are then built in one sorted pass
// each, rather than kept row by row through random B-tree inserts. It
// reports false, having written nothing of its own, when another process
// loaded the same referrals first.
func (s *Store) LoadReferrals(ctx context.Context, refs []Referral, parts []Participant) (bool, error) {
	bulk := s.planner != nil && len(refs) >= bulkLoad
	if bulk {
		if err := s.dropPlanner(ctx); err != nil {
			return false, err
		}
	}
	err := s.InsertReferrals(ctx, refs, parts)
	if bulk {
		if openErr := s.openPlanner(ctx); openErr != nil {
			return false, errors.Join(err, openErr)
		}
	}
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, err
}

// bulkLoad is the number of referrals from which LoadReferrals builds the
// read planner's schema after the documents rather than with them.
const bulkLoad = 5000

// insertBatch is how many documents one insert command of InsertReferrals
// carries: each is one transaction on the embedded store, which holds its
// write lock meanwhile, so requests wait at most one batch.
const insertBatch = 500

// InsertReferrals writes referrals and participants as they are, and lists
// the open invitations among them in invitationDue.
func (s *Store) InsertReferrals(ctx context.Context, refs []Referral, parts []Participant) error {
	open := make([]*Participant, len(parts))
	for i := range parts {
		open[i] = &parts[i]
	}
	// Concurrently: the store writes one batch at a time, and meanwhile
	// the next is encoded (a third of seeding's time at 10,000).
	var g errgroup.Group
	g.Go(func() error { return insertAll(ctx, s.due, dueEntries(open)) })
	g.Go(func() error { return insertAll(ctx, s.referrals, toAny(refs)) })
	g.Go(func() error { return insertAll(ctx, s.participants, toAny(parts)) })
	return g.Wait()
}

// insertAll inserts docs insertBatch at a time.
func insertAll(ctx context.Context, coll *mongo.Collection, docs []any) error {
	for batch := range slices.Chunk(docs, insertBatch) {
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			return fmt.Errorf("insert %s: %w", coll.Name(), err)
		}
	}
	return nil
}

func toAny[T any](docs []T) []any {
	out := make([]any, len(docs))
	for i := range docs {
		out[i] = docs[i]
	}
	return out
}

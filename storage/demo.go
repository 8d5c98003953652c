package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// GenerateDemo returns n realistic referrals and their participants,
// created during the year before anchor, oldest first and evenly spread
// over it, as a pipeline fills. The same seed gives the same referrals
// whatever the anchor (statuses, sources, amounts, names, tags,
// participants); only their dates move with it. SeedDemo anchors at the
// seeding day, so recent invitations are still open whenever a store is
// seeded.
func GenerateDemo(seed uint64, n int, anchor time.Time) ([]Referral, []Participant) {
	g := demoGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), anchor: anchor.UTC()}
	var refs []Referral
	var parts []Participant
	year := 365 * 24 * time.Hour
	start := g.anchor.Add(-year)
	for i := range n {
		// The i-th of n equal slices of the year.
		from := start.Add(time.Duration(float64(year) * float64(i) / float64(n)))
		to := start.Add(time.Duration(float64(year) * float64(i+1) / float64(n)))
		r, ps := g.referral(g.between(from, to))
		refs = append(refs, r)
		parts = append(parts, ps...)
	}
	return refs, parts
}

// SeedDemo fills an empty store with GenerateDemo(seed, n). A store that
// already holds a referral is left untouched; it reports whether it wrote.
func (s *Store) SeedDemo(ctx context.Context, seed uint64, n int) (bool, error) {
	if n <= 0 {
		return false, nil
	}
	// One document is enough to tell, and cheap everywhere: a count reads
	// the whole collection on stores that index only _id.
	err := s.referrals.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return false, fmt.Errorf("look for referrals: %w", err)
	}
	refs, parts := GenerateDemo(seed, n, s.Now().Truncate(24*time.Hour))
	bulk := s.planner != nil && n >= bulkLoad
	if bulk {
		// A bulk load: FerretDB writes the documents alone, and the read
		// planner's indexes and side tables are then built in one sorted
		// pass each, rather than kept row by row through random B-tree
		// inserts. Nothing selects meanwhile: the server seeds before it
		// serves, and the store's files are this process's.
		if err := s.dropPlanner(ctx); err != nil {
			return false, err
		}
	}
	err = s.InsertReferrals(ctx, refs, parts)
	if bulk {
		if openErr := s.openPlanner(ctx); openErr != nil {
			return false, errors.Join(err, openErr)
		}
	}
	if err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return false, nil // another instance seeded the same store first
		}
		return false, err
	}
	return true, nil
}

// bulkLoad is the number of demo referrals from which seeding builds the
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

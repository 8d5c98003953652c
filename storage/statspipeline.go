package storage

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// aggregateAll runs the aggregations of plan in MongoDB: the deal value
// sums, the tallies of status and deal value type, and, when asked for,
// the rows of the extremes.
func (s *Store) aggregateAll(ctx context.Context, plan *statsPlan) (rows statsRows, err error) {
	sums, tally, extremes := &rows.sums, &rows.tally, &rows.extremes
	var g errgroup.Group
	g.Go(func() (err error) {
		*sums, err = s.aggregateStats(ctx, plan.pipeline(bson.D{}, "$details.dealValueCents", maxStatsCombinations+1))
		return err
	})
	g.Go(func() (err error) {
		*tally, err = s.aggregateStats(ctx, plan.pipeline(bson.D{
			{Key: "s", Value: "$status"},
			{Key: "t", Value: bson.D{{Key: "$type", Value: "$details.dealValueCents"}}},
		}, 1, 0))
		return err
	})
	if plan.extremes() {
		g.Go(func() (err error) {
			*extremes, err = s.aggregateStats(ctx, plan.extremesPipeline())
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return statsRows{}, err
	}
	if len(rows.sums) > maxStatsCombinations {
		return statsRows{}, tooManyGroups()
	}
	return rows, nil
}

// planStats validates q and builds its $match and group key.
func (s *Store) planStats(ctx context.Context, q StatsQuery) (*statsPlan, error) {
	if q.First != nil && (*q.First < 0 || *q.First > MaxStatsGroups) {
		return nil, badInput("first", "must be between 0 and %d, got %d", MaxStatsGroups, *q.First)
	}
	if o := q.Order; o != nil {
		if err := checkEnum("order.field", o.Field, statsOrderFields); err != nil {
			return nil, err
		}
		if o.Direction != nil {
			if err := checkEnum("order.direction", *o.Direction, orderDirections); err != nil {
				return nil, err
			}
		}
	}
	sources, err := statsSources(q.GroupBy)
	if err != nil {
		return nil, err
	}
	match, err := s.referralQuery(ctx, q.Filter)
	if err != nil {
		return nil, err
	}
	if slices.Contains(q.GroupBy, DimCustomerCountry) {
		// A partner sees the country only where its participation is
		// Accepted; grouping by it covers those referrals alone, as
		// filtering by it does.
		match = and(match, customerDetailsScope(CallerFrom(ctx)))
	}
	key := bson.D{}
	for i, src := range sources {
		key = append(key, bson.E{Key: fmt.Sprintf("f%d", i), Value: "$" + src.path})
	}
	return &statsPlan{q: q, match: match, sources: sources, key: key}, nil
}

var statsOrderFields = []StatsOrderField{
	StatsByKey, StatsByCount, StatsByWon, StatsByLost, StatsByWinRate,
	StatsByDealValueSum, StatsByDealValueAvg, StatsByDealValueMin, StatsByDealValueMax,
}

// pipeline groups the matching referrals by the grouped values (k) and
// extra, with one accumulator: the $sum of sum (a path or 1). A positive
// limit bounds the rows.
func (p *statsPlan) pipeline(extra bson.D, sum any, limit int) mongo.Pipeline {
	id := append(bson.D{{Key: "k", Value: p.key}}, extra...)
	pipe := mongo.Pipeline{
		{{Key: "$match", Value: p.match}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: id}, {Key: "n", Value: bson.D{{Key: "$sum", Value: sum}}}}}},
	}
	if limit > 0 {
		pipe = append(pipe, bson.D{{Key: "$limit", Value: limit}})
	}
	return pipe
}

// extremes reports whether the query asks for the minimum and maximum
// deal values, or orders by them.
func (p *statsPlan) extremes() bool {
	o := p.q.Order
	return p.q.Extremes || (o != nil && (o.Field == StatsByDealValueMin || o.Field == StatsByDealValueMax))
}

// extremesPipeline groups the matching referrals with a deal value by the
// grouped values and the deal value: each group's smallest and largest
// are among its rows (there is no portable $min or $max).
func (p *statsPlan) extremesPipeline() mongo.Pipeline {
	pipe := p.pipeline(bson.D{{Key: "v", Value: "$details.dealValueCents"}}, 1, 0)
	pipe[0] = bson.D{{Key: "$match", Value: and(p.match, bson.D{{Key: string(OrderByDealValue), Value: bson.D{{Key: "$ne", Value: nil}}}})}}
	return pipe
}

// statsRows are the rows of the three aggregations of a statistics query:
// the deal value sums, the tallies and the extremes.
type statsRows struct{ sums, tally, extremes []statsRow }

// statsRow is one row an aggregation returns: the group key and its one
// accumulator.
type statsRow struct {
	ID struct {
		K bson.Raw      `bson:"k"`
		S bson.RawValue `bson:"s"`
		T string        `bson:"t"`
		V bson.RawValue `bson:"v"`
	} `bson:"_id"`
	N bson.RawValue `bson:"n"`
}

func (s *Store) aggregateStats(ctx context.Context, pipe mongo.Pipeline) ([]statsRow, error) {
	// A first batch as large as the rows of a grouping may be, so a
	// statistics query costs the same commands whatever the data's size
	// (the extremes' rows, one per distinct value, may still need more).
	cur, err := s.referrals.Aggregate(ctx, pipe, options.Aggregate().SetBatchSize(int32(maxStatsCombinations+1)))
	if err != nil {
		return nil, fmt.Errorf("aggregate referral statistics: %w", err)
	}
	var rows []statsRow
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read referral statistics: %w", err)
	}
	return rows, nil
}

// exactInt reads a count or a sum of cents. $sum turns to a double when
// the sum leaves int64, which would no longer be exact.
func exactInt(v bson.RawValue) (int64, error) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	}
	return 0, Errorf(CodeBadUserInput, "a deal value sum exceeds %s, the largest amount that can be added up exactly; narrow the filter", Money(1<<63-1))
}

func addSum(m *StatsMeasures, r *statsRow) error {
	n, err := exactInt(r.N)
	m.DealValue.addSum(n, err == nil)
	return nil
}

func addTally(m *StatsMeasures, r *statsRow) error {
	n, err := exactInt(r.N)
	if err != nil {
		return err
	}
	m.Count += int(n)
	if r.ID.T == "missing" || r.ID.T == "null" {
		m.DealValue.Missing += int(n)
	} else {
		m.DealValue.Count += int(n)
	}
	if !r.ID.S.IsZero() {
		status, err := readEnum(referralStatusPositions)(r.ID.S)
		if err != nil {
			return err
		}
		switch ReferralStatus(status) {
		case ReferralWon:
			m.Won += int(n)
		case ReferralLost:
			m.Lost += int(n)
		}
	}
	return nil
}

func addExtremes(m *StatsMeasures, r *statsRow) error {
	v, err := exactInt(r.ID.V)
	if err != nil {
		return fmt.Errorf("a stored deal value is BSON %s", r.ID.V.Type)
	}
	d := &m.DealValue
	if d.Minimum == nil || Money(v) < *d.Minimum {
		d.Minimum = new(Money(v))
	}
	if d.Maximum == nil || Money(v) > *d.Maximum {
		d.Maximum = new(Money(v))
	}
	return nil
}

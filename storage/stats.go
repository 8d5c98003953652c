package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// StatsDimension is what referral statistics can be grouped by; its value
// is the API's name.
type StatsDimension string

// The statistics dimensions.
const (
	DimStatus                  StatsDimension = "STATUS"
	DimReferralSource          StatsDimension = "REFERRAL_SOURCE"
	DimCustomerCountry         StatsDimension = "CUSTOMER_COUNTRY"
	DimIndustryFocus           StatsDimension = "INDUSTRY_FOCUS"
	DimProducts                StatsDimension = "PRODUCTS"
	DimServiceTypes            StatsDimension = "SERVICE_TYPES"
	DimSolutions               StatsDimension = "SOLUTIONS"
	DimParticipantOrganization StatsDimension = "PARTICIPANT_ORGANIZATION"
	DimParticipantStatus       StatsDimension = "PARTICIPANT_STATUS"
	DimCreatedMonth            StatsDimension = "CREATED_MONTH"
	DimCreatedQuarter          StatsDimension = "CREATED_QUARTER"
	DimClosingMonth            StatsDimension = "CLOSING_MONTH"
	DimClosingQuarter          StatsDimension = "CLOSING_QUARTER"
)

// StatsOrderField is what statistics groups can be ordered by.
type StatsOrderField string

// The statistics orders.
const (
	StatsByKey          StatsOrderField = "KEY"
	StatsByCount        StatsOrderField = "COUNT"
	StatsByWon          StatsOrderField = "WON"
	StatsByLost         StatsOrderField = "LOST"
	StatsByWinRate      StatsOrderField = "WIN_RATE"
	StatsByDealValueSum StatsOrderField = "DEAL_VALUE_SUM"
	StatsByDealValueAvg StatsOrderField = "DEAL_VALUE_AVERAGE"
	StatsByDealValueMin StatsOrderField = "DEAL_VALUE_MINIMUM"
	StatsByDealValueMax StatsOrderField = "DEAL_VALUE_MAXIMUM"
)

// StatsOrder orders statistics groups; ties are broken by key.
type StatsOrder struct {
	Field     StatsOrderField
	Direction *OrderDirection
}

// Sizes of statistics results.
const (
	// DefaultStatsGroups is how many groups a statistics query returns
	// unless it says.
	DefaultStatsGroups = 50
	// MaxStatsGroups is the most groups one statistics query returns.
	MaxStatsGroups = 500
)

// maxStatsSplits bounds the group keys the rows of the statistics of one
// operation (its aliases together, see WithStatsBudget) are split into (a
// row's lists make the product of their lengths; a plain grouping, one
// per row): on the embedded store, where SQL joins each referral with its
// lists' elements, 300,000 took 1.8–2.0 s at 100,000 referrals (products ×
// solutions). A variable so that a test can lower it.
var maxStatsSplits int64 = 500_000

type statsBudgetKey struct{}

// splitBudget is what is left of the group keys an operation's statistics
// may split their rows into.
type splitBudget struct {
	mu   sync.Mutex
	left int64
}

// spend charges n keys; false when they are more than was left.
func (b *splitBudget) spend(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left -= n
	return b.left >= 0
}

// within runs f with what is left and charges what f used. Aliases
// running at once spend the budget one after the other, so that together
// they never split more than it (the planner stops at what is left, not
// after counting first).
func (b *splitBudget) within(f func(left int64) (used int64, err error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	used, err := f(max(b.left, 0))
	b.left -= used
	if err == nil && b.left < 0 {
		err = tooManyGroups()
	}
	return err
}

// WithStatsBudget gives the statistics queries run with ctx (an
// operation's aliases) one budget of maxStatsSplits group keys together,
// so that one request cannot multiply the bound by repeating a grouping.
// Without it each query has the budget alone.
func WithStatsBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, statsBudgetKey{}, &splitBudget{left: maxStatsSplits})
}

// statsBudget is the budget of ctx's operation, or a budget of one query.
func statsBudget(ctx context.Context) *splitBudget {
	if b, ok := ctx.Value(statsBudgetKey{}).(*splitBudget); ok {
		return b
	}
	return &splitBudget{left: maxStatsSplits}
}

// maxStatsCombinations bounds the groups one statistics query may add up:
// the distinct combinations of grouped values, lists split into their
// elements (MongoDB's aggregation returns one row for each combination
// with lists whole, which this bounds too). A variable so that a test can
// lower it.
var maxStatsCombinations = 10_000

// StatsQuery asks for referral statistics: the referrals matching Filter
// (within what the caller sees), grouped by GroupBy.
type StatsQuery struct {
	Filter  *ReferralFilter
	GroupBy []StatsDimension
	Order   *StatsOrder
	First   *int
	// Extremes asks for the minimum and maximum deal values, which take
	// one more aggregation; ordering by them asks for them too.
	Extremes bool
}

// ReferralStats are the groups of a statistics query, in order, and the
// total over every matching referral.
type ReferralStats struct {
	Groups []*ReferralStatsGroup
	// GroupCount is the number of groups there are, returned or not.
	GroupCount int
	Total      *StatsMeasures
}

// ReferralStatsGroup is one group: the values its referrals share and their measures.
type ReferralStatsGroup struct {
	Key      *StatsKey
	Measures *StatsMeasures
}

// StatsKey holds the value of each grouped dimension; dimensions not
// grouped by, and referrals without a value for one, are nil.
type StatsKey struct {
	Status                    *ReferralStatus
	ReferralSource            *ReferralSource
	CustomerCountry           *string
	IndustryFocus             *string
	Products                  *string
	ServiceTypes              *string
	Solutions                 *string
	ParticipantOrganizationID *string
	ParticipantStatus         *ParticipantStatus
	CreatedMonth              *string
	CreatedQuarter            *string
	ClosingMonth              *string
	ClosingQuarter            *string
}

// StatsMeasures are the measures of a set of referrals.
type StatsMeasures struct {
	Count     int
	Won       int
	Lost      int
	DealValue DealValueStats
}

// WinRate is Won / (Won + Lost), or nil when none is won or lost.
func (m *StatsMeasures) WinRate() *float64 {
	if m.Won+m.Lost == 0 {
		return nil
	}
	r := float64(m.Won) / float64(m.Won+m.Lost)
	return &r
}

// DealValueStats are the deal values of a set of referrals; referrals
// without one are counted in Missing and nowhere else.
type DealValueStats struct {
	// sum adds up the deal values in cents; sumExceeded is set once it
	// leaves int64, where it is no longer exact (see Sum).
	sum         Money
	sumExceeded bool
	Count       int
	Missing     int
	// Minimum and Maximum are nil when there is no deal value or when the
	// query did not ask for them (StatsQuery.Extremes).
	Minimum *Money
	Maximum *Money
}

// AddValue counts one deal value of v cents in the sum.
func (d *DealValueStats) AddValue(v Money) { d.addSum(int64(v), true) }

// addSum adds n cents to the sum; exact is false when the store could not
// add them up exactly (its $sum left int64 for a double).
func (d *DealValueStats) addSum(n int64, exact bool) {
	sum := int64(d.sum) + n
	if !exact || (n > 0 && sum < int64(d.sum)) || (n < 0 && sum > int64(d.sum)) {
		d.sumExceeded = true
		return
	}
	d.sum = Money(sum)
}

// Sum is the exact sum of the deal values, or nil when it exceeds the
// largest amount (Money) that can be added up exactly. Only that group's
// sum and average are then null: one huge amount must not take the other
// measures, or the other groups, with it.
func (d *DealValueStats) Sum() *Money {
	if d.sumExceeded {
		return nil
	}
	sum := d.sum
	return &sum
}

// Average is Sum / Count rounded to the cent (halves away from zero), or
// nil when no referral has a deal value or the sum is not exact.
func (d *DealValueStats) Average() *Money {
	if d.Count == 0 || d.sumExceeded {
		return nil
	}
	q, r := int64(d.sum)/int64(d.Count), int64(d.sum)%int64(d.Count)
	if 2*r >= int64(d.Count) {
		q++
	}
	avg := Money(q)
	return &avg
}

// statsDimension describes how one dimension is grouped: the document path
// whose values group it, whether that is a list (a referral then counts
// once in the group of each distinct element), how a stored value reads
// (enums may be stored by position) and where it goes in a StatsKey.
type statsDimension struct {
	path string
	list bool
	read func(bson.RawValue) (string, error)
	set  func(*StatsKey, string)
	// order is the order of the values when sorting by key (lexical when
	// nil); an enum's is the order of its stored positions.
	order []string
}

func readString(v bson.RawValue) (string, error) {
	s, ok := v.StringValueOK()
	if !ok {
		return "", fmt.Errorf("a grouped value is BSON %s, not a string", v.Type)
	}
	return s, nil
}

func readEnum[E ~string](positions []E) func(bson.RawValue) (string, error) {
	return func(v bson.RawValue) (string, error) {
		var e E
		err := unmarshalEnum(&e, positions, byte(v.Type), v.Value)
		return string(e), err
	}
}

func names[E ~string](values []E) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

func setString(f func(*StatsKey) **string) func(*StatsKey, string) {
	return func(k *StatsKey, v string) { *f(k) = &v }
}

var statsDimensions = map[StatsDimension]statsDimension{
	DimStatus: {path: "status", read: readEnum(referralStatusPositions), order: names(referralStatusPositions),
		set: func(k *StatsKey, v string) { s := ReferralStatus(v); k.Status = &s }},
	DimReferralSource: {path: "referralSource", read: readEnum(referralSourcePositions), order: names(referralSourcePositions),
		set: func(k *StatsKey, v string) { s := ReferralSource(v); k.ReferralSource = &s }},
	DimCustomerCountry: {path: "customerProfile.address.country", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.CustomerCountry })},
	DimIndustryFocus: {path: "details.requirements.industryFocus", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.IndustryFocus })},
	DimProducts: {path: "details.requirements.products", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.Products })},
	DimServiceTypes: {path: "details.requirements.serviceTypes", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ServiceTypes })},
	DimSolutions: {path: "details.requirements.solutions", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.Solutions })},
	DimParticipantOrganization: {path: "participation.organizationId", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ParticipantOrganizationID })},
	DimParticipantStatus: {path: "participation.status", list: true, read: readEnum(participantStatusPositions), order: names(participantStatusPositions),
		set: func(k *StatsKey, v string) { s := ParticipantStatus(v); k.ParticipantStatus = &s }},
	DimCreatedMonth: {path: "periods.createdMonth", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.CreatedMonth })},
	DimCreatedQuarter: {path: "periods.createdQuarter", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.CreatedQuarter })},
	DimClosingMonth: {path: "periods.closingMonth", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ClosingMonth })},
	DimClosingQuarter: {path: "periods.closingQuarter", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ClosingQuarter })},
}

// statsSource is one field of the group key the store returns, and the
// dimensions (indexes in the query's GroupBy) it fills.
type statsSource struct {
	path string
	dims []int
	// values reads the field of one row: the alternatives of the values of
	// its dimensions (one for a single value, one per distinct element of
	// a list, none for an empty list).
	values func(bson.RawValue) ([][]*string, error)
	// positions are an enum's values by the position they may be stored
	// as; nil for other values.
	positions []string
}

// statsSources plans the group key of dims. Organization and participant
// status together come from the same participation entry ("org/Status"),
// so a referral counts under each organization with that organization's
// status, not under every pair.
func statsSources(dims []StatsDimension) ([]statsSource, error) {
	var sources []statsSource
	seen := map[StatsDimension]bool{}
	org, status := slices.Index(dims, DimParticipantOrganization), slices.Index(dims, DimParticipantStatus)
	for i, d := range dims {
		def, ok := statsDimensions[d]
		if !ok {
			return nil, badInput(fmt.Sprintf("groupBy[%d]", i), "%q is not a statistics dimension", string(d))
		}
		if seen[d] {
			return nil, badInput(fmt.Sprintf("groupBy[%d]", i), "%s is named twice", string(d))
		}
		seen[d] = true
		switch {
		case org >= 0 && status >= 0 && i == status:
			// filled with the organization
		case org >= 0 && status >= 0 && i == org:
			readStatus := statsDimensions[DimParticipantStatus].read
			sources = append(sources, statsSource{path: "participation.orgStatus", dims: []int{org, status},
				values: listValues(func(v bson.RawValue) ([]*string, error) {
					s, err := readString(v)
					// The status, one of a fixed set, follows the last "/".
					cut := strings.LastIndexByte(s, '/')
					orgID, st := s[:max(cut, 0)], s[cut+1:]
					if err == nil && cut < 0 {
						err = fmt.Errorf("participation entry %q is not organization/status", s)
					}
					if err == nil {
						st, err = readStatus(bson.RawValue{Type: bson.TypeString, Value: bsonString(st)})
					}
					return []*string{&orgID, &st}, err
				})})
		case def.list:
			sources = append(sources, statsSource{path: def.path, dims: []int{i}, positions: def.order, values: listValues(func(v bson.RawValue) ([]*string, error) {
				s, err := def.read(v)
				return []*string{&s}, err
			})})
		default:
			sources = append(sources, statsSource{path: def.path, dims: []int{i}, values: func(v bson.RawValue) ([][]*string, error) {
				if v.IsZero() || v.Type == bson.TypeNull {
					return [][]*string{{nil}}, nil
				}
				s, err := def.read(v)
				return [][]*string{{&s}}, err
			}})
		}
	}
	return sources, nil
}

// StatsListDimensions is how many lists a grouping by dims splits the
// referrals by (organization and participant status together are one):
// each reads every matching referral's elements once more.
func StatsListDimensions(dims []StatsDimension) int {
	n := 0
	for _, d := range dims {
		if statsDimensions[d].list && !(d == DimParticipantStatus && slices.Contains(dims, DimParticipantOrganization)) {
			n++
		}
	}
	return n
}

// bsonString encodes s as a BSON string value.
func bsonString(s string) []byte {
	_, b, _ := bson.MarshalValue(s)
	return b
}

// listValues reads a list field, one alternative per distinct element; a
// missing or null list has none.
func listValues(read func(bson.RawValue) ([]*string, error)) func(bson.RawValue) ([][]*string, error) {
	return func(v bson.RawValue) ([][]*string, error) {
		arr, ok := v.ArrayOK()
		if !ok {
			if v.IsZero() || v.Type == bson.TypeNull {
				return nil, nil
			}
			one, err := read(v) // a single value stored where a list belongs
			return [][]*string{one}, err
		}
		elems, err := arr.Values()
		if err != nil {
			return nil, err
		}
		var out [][]*string
		seen := map[string]bool{}
		for _, e := range elems {
			vals, err := read(e)
			if err != nil {
				return nil, err
			}
			id := keyString(vals)
			if !seen[id] {
				seen[id] = true
				out = append(out, vals)
			}
		}
		return out, nil
	}
}

// keyString identifies a combination of values (nil included) in a map.
func keyString(vals []*string) string {
	var b strings.Builder
	for _, v := range vals {
		if v == nil {
			b.WriteString("\x01")
		} else {
			b.WriteString("\x02" + *v)
		}
		b.WriteByte(0)
	}
	return b.String()
}

// statsPlan is a statistics query ready to run.
type statsPlan struct {
	q       StatsQuery
	match   bson.D
	sources []statsSource
	key     bson.D // the group key of the grouped dimensions
}

// ReferralStats adds up the referrals matching q.Filter that the caller
// sees, grouped by q.GroupBy, in MongoDB. Each referral counts once in
// each group it belongs to, and once in the total. A bad filter, order,
// size or dimension, or a grouping of more than maxStatsCombinations
// combinations, is a CodeBadUserInput error.
//
// Every aggregation $groups with one accumulator, because FerretDB v1
// computes only the first accumulator of a $group (the others come back
// 0); list dimensions are grouped whole and split here, because its
// $unwind drops every other field of the document (the embedded store's
// planner splits them in SQL instead). See the README.
func (s *Store) ReferralStats(ctx context.Context, q StatsQuery) (*ReferralStats, error) {
	plan, err := s.planStats(ctx, q)
	if err != nil {
		return nil, err
	}
	if slices.Contains(q.GroupBy, DimParticipantStatus) {
		// Groups are of stored statuses: an invitation past its
		// expiration reads EXPIRED before the sweep records it.
		if err := s.expireLapsed(ctx); err != nil {
			return nil, err
		}
	}
	groups, total, done, err := s.plannedStats(ctx, plan)
	if err != nil {
		return nil, err
	}
	if !done {
		if groups, err = s.aggregateAll(ctx, plan); err != nil {
			return nil, err
		}
		total = groups // lists are grouped whole: each referral is in one row
	}
	// Rows the planner split are charged by its count before it built
	// them; rows with whole lists are charged as they are split.
	var budget *splitBudget
	if !done {
		budget = statsBudget(ctx)
	}
	acc := newStatsAccumulator(len(q.GroupBy), budget)
	for _, each := range []struct {
		groups, total []statsRow
		add           func(m *StatsMeasures, r *statsRow) error
	}{{groups.sums, total.sums, addSum}, {groups.tally, total.tally, addTally}, {groups.extremes, total.extremes, addExtremes}} {
		for i := range each.total {
			if err := each.add(&acc.total, &each.total[i]); err != nil {
				return nil, err
			}
		}
		for i := range each.groups {
			if err := acc.add(plan.sources, &each.groups[i], each.add); err != nil {
				return nil, err
			}
		}
	}
	return acc.result(q)
}

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

// statsAccumulator adds rows up into groups and the total.
type statsAccumulator struct {
	dims   int
	groups map[string]*statsGroupAcc
	total  StatsMeasures
	// budget is what is left of the keys the rows may be split into (a
	// row's lists make the product of their lengths); nil when the rows
	// were split, and charged, before.
	budget *splitBudget
}

// tooManyGroups refuses a grouping that splits the referrals into more
// groups than one query may add up.
func tooManyGroups() error {
	return badInput("groupBy", "the referrals fall into more than %d groups of these dimensions; group by fewer or narrow the filter", maxStatsCombinations)
}

type statsGroupAcc struct {
	key []*string
	m   StatsMeasures
}

func newStatsAccumulator(dims int, budget *splitBudget) *statsAccumulator {
	return &statsAccumulator{dims: dims, groups: map[string]*statsGroupAcc{}, budget: budget}
}

// add adds one row to every group its values make: the combinations of
// each source's alternatives.
func (a *statsAccumulator) add(sources []statsSource, r *statsRow, add func(*StatsMeasures, *statsRow) error) error {
	all := make([][][]*string, len(sources))
	split := 1
	for i, src := range sources {
		alts, err := src.values(r.ID.K.Lookup(fmt.Sprintf("f%d", i)))
		if err != nil {
			return fmt.Errorf("read a statistics row: %w", err)
		}
		all[i] = alts
		// Counted before any group is built: one row's lists split it
		// into the product of their lengths.
		if split *= max(len(alts), 1); split > maxStatsCombinations {
			return tooManyGroups()
		}
	}
	if a.budget != nil && !a.budget.spend(int64(split)) {
		return tooManyGroups()
	}
	keys := [][]*string{make([]*string, a.dims)}
	for i, src := range sources {
		alts := all[i]
		var next [][]*string
		for _, k := range keys {
			for _, alt := range alts {
				k2 := slices.Clone(k)
				for j, d := range src.dims {
					k2[d] = alt[j]
				}
				next = append(next, k2)
			}
		}
		keys = next
	}
	for _, k := range keys {
		id := keyString(k)
		g := a.groups[id]
		if g == nil {
			if len(a.groups) == maxStatsCombinations {
				return tooManyGroups()
			}
			g = &statsGroupAcc{key: k}
			a.groups[id] = g
		}
		if err := add(&g.m, r); err != nil {
			return err
		}
	}
	return nil
}

// result orders the groups and keeps the first q.First.
func (a *statsAccumulator) result(q StatsQuery) (*ReferralStats, error) {
	groups := make([]*statsGroupAcc, 0, len(a.groups))
	for _, g := range a.groups {
		groups = append(groups, g)
	}
	order := StatsOrder{Field: StatsByCount}
	if q.Order != nil {
		order = *q.Order
	}
	desc := order.Direction == nil || *order.Direction == Descending
	measure := statsMeasureOf[order.Field]
	slices.SortFunc(groups, func(x, y *statsGroupAcc) int {
		if measure != nil {
			if c := compareMeasure(measure(&x.m), measure(&y.m), desc); c != 0 {
				return c
			}
		}
		// Ties of a measure go by key ascending; the order by key follows
		// the direction.
		return compareKeys(q.GroupBy, x.key, y.key, measure == nil && desc)
	})
	n := DefaultStatsGroups
	if q.First != nil {
		n = *q.First
	}
	out := &ReferralStats{GroupCount: len(groups), Total: &a.total}
	for _, g := range groups[:min(n, len(groups))] {
		key := &StatsKey{}
		for i, d := range q.GroupBy {
			if g.key[i] != nil {
				statsDimensions[d].set(key, *g.key[i])
			}
		}
		out.Groups = append(out.Groups, &ReferralStatsGroup{Key: key, Measures: &g.m})
	}
	return out, nil
}

// statsMeasureOf reads the measure each order sorts by, as a float (nil
// for none); nil for the order by key.
var statsMeasureOf = map[StatsOrderField]func(*StatsMeasures) *float64{
	StatsByCount:        func(m *StatsMeasures) *float64 { return new(float64(m.Count)) },
	StatsByWon:          func(m *StatsMeasures) *float64 { return new(float64(m.Won)) },
	StatsByLost:         func(m *StatsMeasures) *float64 { return new(float64(m.Lost)) },
	StatsByWinRate:      func(m *StatsMeasures) *float64 { return m.WinRate() },
	StatsByDealValueSum: func(m *StatsMeasures) *float64 { return moneyFloat(m.DealValue.Sum()) },
	StatsByDealValueAvg: func(m *StatsMeasures) *float64 { return moneyFloat(m.DealValue.Average()) },
	StatsByDealValueMin: func(m *StatsMeasures) *float64 { return moneyFloat(m.DealValue.Minimum) },
	StatsByDealValueMax: func(m *StatsMeasures) *float64 { return moneyFloat(m.DealValue.Maximum) },
}

// moneyFloat is m for ordering only (amounts up to 2^53 cents compare
// exactly).
func moneyFloat(m *Money) *float64 {
	if m == nil {
		return nil
	}
	return new(float64(*m))
}

// compareMeasure orders by a measure; groups without one come last either way.
func compareMeasure(x, y *float64, desc bool) int {
	switch {
	case x == nil && y == nil:
		return 0
	case x == nil:
		return 1
	case y == nil:
		return -1
	case desc:
		return cmp.Compare(*y, *x)
	}
	return cmp.Compare(*x, *y)
}

// compareKeys orders keys dimension by dimension: enums in the
// specification's order, other values by character code (reversed when
// desc), nil last either way.
func compareKeys(dims []StatsDimension, x, y []*string, desc bool) int {
	for i, d := range dims {
		a, b := x[i], y[i]
		switch {
		case a == nil && b == nil:
			continue
		case a == nil:
			return 1
		case b == nil:
			return -1
		}
		var c int
		if order := statsDimensions[d].order; order != nil {
			c = cmp.Compare(slices.Index(order, *a), slices.Index(order, *b))
		} else {
			c = strings.Compare(*a, *b)
		}
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

package storage

import (
	"context"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
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

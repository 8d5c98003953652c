package storage

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

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

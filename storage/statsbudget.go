package storage

import (
	"context"
	"sync"
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

// tooManyGroups refuses a grouping that splits the referrals into more
// groups than one query may add up.
func tooManyGroups() error {
	return badInput("groupBy", "the referrals fall into more than %d groups of these dimensions; group by fewer or narrow the filter", maxStatsCombinations)
}

package storage

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"referrals/storage/embedded/sqlplan"
)

// plannedStats computes the rows of the three statistics aggregations of
// plan (see ReferralStats) in one SQL statement of the planner, grouping
// by the grouped values, the status and whether there is a deal value.
// Lists are split in SQL: a list dimension is grouped by each distinct
// element, read from the side table, so the rows are the groups
// themselves (one per combination of elements) and the total comes from
// rows of its own. It returns false when the store has no planner or it
// cannot translate the filter.
func (s *Store) plannedStats(ctx context.Context, plan *statsPlan) (groups, total statsRows, done bool, err error) {
	done, err = s.planned(ctx, s.referrals, "statistics", func(t *sqlplan.Table, db *sql.DB) error {
		where, args, err := t.Where(plan.match)
		if err != nil {
			return err
		}
		side := sqlplan.Quote(t.SideTable())
		// m: the matching referrals' grouped scalars (k0, k1, …), id,
		// status and deal value.
		var cols, keys, joins []string
		for i, src := range plan.sources {
			f, ok := t.Fields[src.path]
			switch {
			case !ok:
				return fmt.Errorf("%w: group by %s", sqlplan.ErrUnsupported, src.path)
			case f.Array != "":
				// Each distinct element once: an element repeated in one
				// list (or stored once by name and once by position)
				// joins only through its first row. CROSS JOIN pins the
				// plan: m first, then its elements by the side table's
				// (id, path) index.
				e, value := fmt.Sprintf("e%d", i), enumName(fmt.Sprintf("e%d.value", i), src.positions)
				joins = append(joins, fmt.Sprintf("CROSS JOIN %s %s ON %s.id = m.id AND %s.path = '%s' AND NOT EXISTS "+
					"(SELECT 1 FROM %s d WHERE d.id = m.id AND d.path = %s.path AND d.rowid < %s.rowid AND %s = %s)",
					side, e, e, e, src.path, side, e, e, enumName("d.value", src.positions), value))
				keys = append(keys, value)
			default:
				cols = append(cols, fmt.Sprintf("%s AS k%d", sqlplan.Expr(src.path), i))
				keys = append(keys, fmt.Sprintf("m.k%d", i))
			}
		}
		cols = append(cols, sqlplan.IDExpr+" AS id", sqlplan.Expr("status")+" AS status", sqlplan.Expr(string(OrderByDealValue))+" AS deal")
		from := fmt.Sprintf("%s INDEXED BY %s WHERE %s", sqlplan.Quote(t.Name), sqlplan.Quote(t.IndexName(referralWideIndex)), where)
		// The matching rows are read first from the wide index, which
		// holds every value grouped here (a MATERIALIZED CTE: grouping
		// the scan directly made SQLite read each document again, 20
		// times slower at 100,000 referrals); j is each of them once for
		// every combination of its lists' elements. The sum goes in two
		// halves that cannot overflow SQLite's integers (sum() would
		// report an error), added up exactly here.
		measures := func(r string) string {
			return fmt.Sprintf("%[1]s.status, %[1]s.deal IS NULL, count(*), sum(%[1]s.deal >> 32), sum(%[1]s.deal & 4294967295), min(%[1]s.deal), max(%[1]s.deal)", r)
		}
		var grouped []string
		for i, k := range keys {
			keys[i], grouped = fmt.Sprintf("%s AS g%d", k, i), append(grouped, fmt.Sprintf("g%d", i))
		}
		q := fmt.Sprintf("WITH m AS MATERIALIZED (SELECT %s FROM %s), j AS (SELECT %s FROM m %s LIMIT ?) SELECT 0, %s FROM j GROUP BY %s",
			strings.Join(cols, ", "), from, strings.Join(append(keys, "m.status AS status", "m.deal AS deal"), ", "), strings.Join(joins, " "),
			strings.Join(append(grouped, measures("j")), ", "), strings.Join(append(grouped, "status", "deal IS NULL"), ", "))
		if len(joins) > 0 {
			// A referral is in as many groups as its lists make, and in
			// the total once.
			q += fmt.Sprintf(" UNION ALL SELECT 1, %s%s FROM m GROUP BY m.status, m.deal IS NULL", strings.Repeat("NULL, ", len(keys)), measures("m"))
		}
		read := func(limit int64) (used int64, err error) {
			rows, err := db.QueryContext(ctx, q, append(args, limit)...)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", q, err)
			}
			defer rows.Close()
			seen := map[string]bool{}
			for rows.Next() {
				isTotal, r, err := scanStatsRow(rows, plan.sources, t, plan.extremes())
				if err != nil {
					return used, err
				}
				if isTotal {
					total.add(r)
					continue
				}
				used += r.tally.N.AsInt64()
				if seen[string(r.key)] = true; len(seen) > maxStatsCombinations {
					return used, tooManyGroups()
				}
				groups.add(r)
			}
			return used, rows.Err()
		}
		if len(joins) < 2 {
			_, err := read(-1) // one list splits a referral into its elements only
			if len(joins) == 0 {
				total = groups // each referral is in exactly one group
			}
			return err
		}
		// Two lists or more multiply: what is split is charged to the
		// operation's budget, and the split stops one row past what is
		// left of it, so that a grouping past the bound costs no more
		// than one within it.
		return statsBudget(ctx).within(func(left int64) (int64, error) { return read(left + 1) })
	})
	return groups, total, done, err
}

// enumName is the SQL value of expr with an enum's positions read as
// their names; expr itself when positions is nil.
func enumName(expr string, positions []string) string {
	if positions == nil {
		return expr
	}
	var b strings.Builder
	b.WriteString("CASE " + expr)
	for i, name := range positions {
		fmt.Fprintf(&b, " WHEN %d THEN '%s'", i, name)
	}
	b.WriteString(" ELSE " + expr + " END")
	return b.String()
}

// plannedStatsRow is one row of plannedStats as the rows of the three
// aggregations.
type plannedStatsRow struct {
	key      bson.Raw
	sum      statsRow
	tally    statsRow
	extremes []statsRow
}

func (rs *statsRows) add(r *plannedStatsRow) {
	rs.sums, rs.tally = append(rs.sums, r.sum), append(rs.tally, r.tally)
	rs.extremes = append(rs.extremes, r.extremes...)
}

// scanStatsRow reads a row of plannedStats: whether it is one of the
// total's, and its rows. A list's value is its one element.
func scanStatsRow(rows *sql.Rows, sources []statsSource, t *sqlplan.Table, extremes bool) (bool, *plannedStatsRow, error) {
	var isTotal bool
	values := make([]any, len(sources)+2)
	var count, hi, lo sql.NullInt64
	var minimum, maximum sql.NullInt64
	dest := []any{&isTotal}
	for i := range values {
		dest = append(dest, &values[i])
	}
	if err := rows.Scan(append(dest, &count, &hi, &lo, &minimum, &maximum)...); err != nil {
		return false, nil, err
	}
	key := bson.D{}
	for i, src := range sources {
		v := values[i]
		if t.Fields[src.path].Array != "" && !isTotal {
			v = bson.A{v}
		}
		key = append(key, bson.E{Key: fmt.Sprintf("f%d", i), Value: v})
	}
	k, err := bson.Marshal(key)
	if err != nil {
		return false, nil, err
	}
	r := &plannedStatsRow{key: k}
	r.sum.ID.K, r.tally.ID.K = k, k
	r.sum.N = exactSum(hi.Int64, lo.Int64)
	r.tally.ID.S = rawValue(values[len(sources)])
	r.tally.ID.T = "long"
	if noDeal, _ := values[len(sources)+1].(int64); noDeal == 1 {
		r.tally.ID.T = "missing"
	} else if extremes {
		for _, v := range []int64{minimum.Int64, maximum.Int64} {
			e := statsRow{N: rawValue(int64(1))}
			e.ID.K, e.ID.V = k, rawValue(v)
			r.extremes = append(r.extremes, e)
		}
	}
	r.tally.N = rawValue(count.Int64)
	return isTotal, r, nil
}

// exactSum is hi·2³² + lo as the int64 $sum would give, or a double (which
// exactInt takes as a sum out of exact range) when it leaves int64.
func exactSum(hi, lo int64) bson.RawValue {
	sum := new(big.Int).Lsh(big.NewInt(hi), 32)
	sum.Add(sum, big.NewInt(lo))
	if !sum.IsInt64() {
		f, _ := sum.Float64()
		return rawValue(f)
	}
	return rawValue(sum.Int64())
}

func rawValue(v any) bson.RawValue {
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		panic(err) // only plain values are given
	}
	return bson.RawValue{Type: t, Value: b}
}

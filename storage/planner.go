package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"referrals/storage/sqlplan"
)

// planner answers the selections of the embedded store — which documents
// match, in which order, how many, and the statistics' groups — with SQL
// over FerretDB's SQLite tables (see sqlplan), translated from the same
// BSON the queries send to MongoDB. The documents selected are then read
// by _id through the driver, and all writes go through the driver, so
// FerretDB keeps owning the files. It exists only where the store
// answers nothing but {_id: v} from an index (PushdownIDOnly).
type planner struct {
	db *sql.DB
	// selections counts what the planner answered, as a command monitor
	// counts what the driver sends.
	selections   atomic.Int64
	referrals    *sqlplan.Table
	participants *sqlplan.Table
	tags         *sqlplan.Table
	changes      *sqlplan.Table
	webhooks     *sqlplan.Table
	deliveries   *sqlplan.Table
}

// plannerFallbacks counts the selections the planner could not translate
// and left to FerretDB, which reads the whole collection for them. No
// query the API sends falls back (TestMain of this package and of graph
// check it stays 0).
var plannerFallbacks atomic.Int64

// PlannerFallbacks returns how many selections on the embedded store were
// left to FerretDB's own evaluation since the process started.
func PlannerFallbacks() int64 { return plannerFallbacks.Load() }

// referralFields are the referral paths the planner queries, with the one
// type the storage writes at each.
var referralFields = map[string]sqlplan.Field{
	"_id":                                {Type: sqlplan.String},
	"createdDateTime":                    {Type: sqlplan.Date},
	"updatedDateTime":                    {Type: sqlplan.Date},
	"version":                            {Type: sqlplan.Number},
	"status":                             {Type: sqlplan.Enum},
	"referralSource":                     {Type: sqlplan.Enum},
	"customerProfile.name":               {Type: sqlplan.String},
	"customerProfile.address.country":    {Type: sqlplan.String},
	"details.closingDate":                {Type: sqlplan.Date},
	"details.dealValueCents":             {Type: sqlplan.Number},
	"periods.createdMonth":               {Type: sqlplan.String},
	"periods.createdQuarter":             {Type: sqlplan.String},
	"periods.closingMonth":               {Type: sqlplan.String},
	"periods.closingQuarter":             {Type: sqlplan.String},
	"participation.participantId":        {Type: sqlplan.String, Array: "participation", Member: "participantId"},
	"participation.organizationId":       {Type: sqlplan.String, Array: "participation", Member: "organizationId"},
	"participation.status":               {Type: sqlplan.Enum, Array: "participation", Member: "status"},
	"participation.orgStatus":            {Type: sqlplan.String, Array: "participation", Member: "orgStatus"},
	"details.requirements.industryFocus": {Type: sqlplan.String, Array: "details.requirements.industryFocus"},
	"details.requirements.products":      {Type: sqlplan.String, Array: "details.requirements.products"},
	"details.requirements.serviceTypes":  {Type: sqlplan.String, Array: "details.requirements.serviceTypes"},
	"details.requirements.solutions":     {Type: sqlplan.String, Array: "details.requirements.solutions"},
}

// referralPlanIndexes serve the referral orders (each sort field with _id,
// walked in order for a page), lookups by _id from the side table, and
// referralWideIndex.
var referralPlanIndexes = func() []sqlplan.Index {
	var out []sqlplan.Index
	for _, f := range referralSortFields {
		out = append(out, sqlplan.Index{f, "_id"})
	}
	return append(out, sqlplan.Index{"_id"}, referralWideIndex)
}()

// referralWideIndex holds every scalar a referral filter or statistics
// dimension reads, so that a count or a grouping reads the index alone.
var referralWideIndex = sqlplan.Index{
	"status", "referralSource", "customerProfile.address.country",
	"periods.createdMonth", "periods.createdQuarter", "periods.closingMonth", "periods.closingQuarter",
	"createdDateTime", "updatedDateTime", "details.closingDate", "details.dealValueCents", "customerProfile.name", "_id",
}

var participantFields = map[string]sqlplan.Field{
	"_id":                {Type: sqlplan.String},
	"referralId":         {Type: sqlplan.String},
	"organizationId":     {Type: sqlplan.String},
	"status":             {Type: sqlplan.Enum},
	"createdDateTime":    {Type: sqlplan.Date},
	"expirationDateTime": {Type: sqlplan.Date},
}

// idFields: the catalog is read by _id, and so are the changes a resuming
// subscription catches up on, a chunk at a time.
var idFields = map[string]sqlplan.Field{"_id": {Type: sqlplan.String}}

// webhookFields and deliveryFields are what webhooks are listed by and
// deliveries listed and found due by.
var (
	webhookFields = map[string]sqlplan.Field{
		"_id":             {Type: sqlplan.String},
		"organizationId":  {Type: sqlplan.String},
		"createdDateTime": {Type: sqlplan.Date},
	}
	deliveryFields = map[string]sqlplan.Field{
		"_id":             {Type: sqlplan.String},
		"webhookId":       {Type: sqlplan.String},
		"status":          {Type: sqlplan.String},
		"createdDateTime": {Type: sqlplan.Date},
		"nextAttemptAt":   {Type: sqlplan.Date},
	}
)

var participantPlanIndexes = []sqlplan.Index{
	{"_id"},
	{"createdDateTime", "_id"},
	{"referralId", "createdDateTime", "_id"},
	{"organizationId", "createdDateTime", "_id"},
	{"status", "expirationDateTime"},
	// A referral filter's participant expiration range selects referral
	// ids from this index alone (it read every participant: 1.6–3.4 s at
	// 100,000 referrals).
	{"expirationDateTime", "referralId"},
}

// openPlanner readies the SQLite file of database for the planner (side
// table, triggers, indexes) and opens the connections it reads with.
func (e *Embedded) openPlanner(ctx context.Context, database string) (*planner, error) {
	p := &planner{}
	err := e.eachPlannerTable(ctx, database, p, func(w *sql.DB, t *sqlplan.Table, indexes []sqlplan.Index) error {
		return t.Prepare(ctx, w, indexes)
	})
	if err != nil {
		return nil, err
	}
	file := filepath.Join(e.dir, database+".sqlite")
	// Readers only: query_only refuses any write through them. In WAL mode
	// each query sees every transaction committed before it began, so a
	// write FerretDB acknowledged is seen by the next selection.
	p.db, err = sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	return p, nil
}

// eachPlannerTable calls f for each table of the planner in database,
// with a connection that may write, after setting it in p.
func (e *Embedded) eachPlannerTable(ctx context.Context, database string, p *planner, f func(w *sql.DB, t *sqlplan.Table, indexes []sqlplan.Index) error) error {
	if err := sqlplan.Register(); err != nil {
		return err
	}
	file := filepath.Join(e.dir, database+".sqlite")
	// A larger page cache than SQLite's 2 MB default for this connection:
	// it builds the indexes and fills the side tables.
	w, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=cache_size(-65536)")
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer w.Close()
	for _, t := range []struct {
		dst     **sqlplan.Table
		name    string
		fields  map[string]sqlplan.Field
		indexes []sqlplan.Index
	}{
		{&p.referrals, "referrals", referralFields, referralPlanIndexes},
		{&p.participants, "participants", participantFields, participantPlanIndexes},
		{&p.tags, "tags", idFields, []sqlplan.Index{{"_id"}}},
		{&p.changes, "changes", idFields, []sqlplan.Index{{"_id"}}},
		{&p.webhooks, "webhooks", webhookFields, []sqlplan.Index{{"_id"}, {"createdDateTime", "_id"}, {"organizationId", "createdDateTime", "_id"}}},
		{&p.deliveries, "webhookDeliveries", deliveryFields, []sqlplan.Index{{"_id"}, {"webhookId", "createdDateTime", "_id"}, {"webhookId", "nextAttemptAt", "_id"}}},
	} {
		var table string
		err := w.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, t.name).Scan(&table)
		if err != nil {
			return fmt.Errorf("find the table of %s: %w", t.name, err)
		}
		*t.dst = &sqlplan.Table{Name: table, Fields: t.fields}
		if t.dst == &p.referrals {
			(*t.dst).Covering = referralWideIndex
		}
		if err := f(w, *t.dst, t.indexes); err != nil {
			return err
		}
	}
	return nil
}

// dropPlanner closes s's planner and removes its indexes, side tables and
// triggers from the file, for a bulk load (see SeedDemo); openPlanner
// builds them again.
func (s *Store) dropPlanner(ctx context.Context) error {
	s.closePlanner()
	s.planner = nil
	return s.opts.Embedded.eachPlannerTable(ctx, s.db.Name(), &planner{}, func(w *sql.DB, t *sqlplan.Table, indexes []sqlplan.Index) error {
		return t.Drop(ctx, w, indexes)
	})
}

// table returns the planner's table of coll, or nil when the planner does
// not serve it (or the store has no planner).
func (s *Store) planTable(coll *mongo.Collection) *sqlplan.Table {
	switch {
	case s.planner == nil:
		return nil
	case coll == s.referrals:
		return s.planner.referrals
	case coll == s.participants:
		return s.planner.participants
	case coll == s.tags:
		return s.planner.tags
	case coll == s.changes:
		return s.planner.changes
	case coll == s.webhooks:
		return s.planner.webhooks
	case coll == s.deliveries:
		return s.planner.deliveries
	}
	return nil
}

// planned runs a selection on the planner when coll has one. It returns
// false, having counted and logged why, when the selection is to be left
// to the store: there is no planner, or it cannot translate the query.
func (s *Store) planned(ctx context.Context, coll *mongo.Collection, what string, run func(*sqlplan.Table, *sql.DB) error) (bool, error) {
	t := s.planTable(coll)
	if t == nil {
		return false, nil
	}
	s.planner.selections.Add(1)
	end := s.traceSelection(ctx, coll.Name(), what)
	err := run(t, s.planner.db)
	end(err)
	if errors.Is(err, sqlplan.ErrUnsupported) {
		plannerFallbacks.Add(1)
		s.logger.DebugContext(ctx, "left to FerretDB: it reads the whole collection", "collection", coll.Name(), "selection", what, "why", err)
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("select %s %s: %w", coll.Name(), what, err)
	}
	return true, nil
}

// PlannedSelections returns how many selections (a page, a count, the
// participants of referrals, a statistics grouping) this store answered
// with the embedded read planner: the SQL counterpart of the MongoDB
// commands a command monitor counts, for proving batching on the
// embedded store. It is 0 on other stores.
func (s *Store) PlannedSelections() int64 {
	if s.planner == nil {
		return 0
	}
	return s.planner.selections.Load()
}

// countDocuments counts the documents of coll matching filter.
func (s *Store) countDocuments(ctx context.Context, coll *mongo.Collection, filter bson.D) (int64, error) {
	var n int64
	done, err := s.planned(ctx, coll, "count", func(t *sqlplan.Table, db *sql.DB) (err error) {
		n, err = t.Count(ctx, db, filter)
		return err
	})
	if done || err != nil {
		return n, err
	}
	n, err = coll.CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", coll.Name(), err)
	}
	return n, nil
}

// decodeAll decodes documents the planner read.
func decodeAll[T any](docs []bson.Raw) ([]*T, error) {
	out := make([]*T, len(docs))
	err := sqlplan.Parallel(len(docs), func(i int) error {
		out[i] = new(T)
		if err := bson.Unmarshal(docs[i], out[i]); err != nil {
			return fmt.Errorf("decode a stored document: %w", err)
		}
		return nil
	})
	return out, err
}

// closePlanner closes the planner's connections, if any.
func (s *Store) closePlanner() {
	if s.planner != nil {
		_ = s.planner.db.Close()
	}
}

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

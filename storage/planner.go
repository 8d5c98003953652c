package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
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

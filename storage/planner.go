package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"referrals/storage/embedded"
	"referrals/storage/embedded/sqlplan"
)

// On the embedded store, which answers nothing but {_id: v} from an index
// (PushdownIDOnly), selections go to its read planner (embedded.Planner):
// this file tells it which collections to serve, their fields and
// indexes, and runs a selection there, or, where it cannot translate the
// query, counts the fallback and leaves it to FerretDB.

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

// planSpecs are the collections the embedded read planner serves.
var planSpecs = []embedded.TableSpec{
	{Collection: "referrals", Fields: referralFields, Indexes: referralPlanIndexes, Covering: referralWideIndex},
	{Collection: "participants", Fields: participantFields, Indexes: participantPlanIndexes},
	{Collection: "tags", Fields: idFields, Indexes: []sqlplan.Index{{"_id"}}},
	{Collection: "changes", Fields: idFields, Indexes: []sqlplan.Index{{"_id"}}},
	{Collection: "webhooks", Fields: webhookFields, Indexes: []sqlplan.Index{{"_id"}, {"createdDateTime", "_id"}, {"organizationId", "createdDateTime", "_id"}}},
	{Collection: "webhookDeliveries", Fields: deliveryFields, Indexes: []sqlplan.Index{{"_id"}, {"webhookId", "createdDateTime", "_id"}, {"webhookId", "nextAttemptAt", "_id"}}},
}

// openPlanner opens the embedded read planner over s's database.
func (s *Store) openPlanner(ctx context.Context) error {
	p, err := s.opts.Embedded.OpenPlanner(ctx, s.db.Name(), planSpecs)
	if err != nil {
		return err
	}
	s.planner = p
	return nil
}

// dropPlanner closes s's planner and removes its indexes, side tables and
// triggers from the file, for a bulk load (see LoadReferrals); openPlanner
// builds them again.
func (s *Store) dropPlanner(ctx context.Context) error {
	s.closePlanner()
	s.planner = nil
	return s.opts.Embedded.DropPlanner(ctx, s.db.Name(), planSpecs)
}

// planTable returns the planner's table of coll, or nil when the planner
// does not serve it (or the store has no planner).
func (s *Store) planTable(coll *mongo.Collection) *sqlplan.Table {
	if s.planner == nil {
		return nil
	}
	return s.planner.Table(coll.Name())
}

// planned runs a selection on the planner when coll has one. It returns
// false, having counted and logged why, when the selection is to be left
// to the store: there is no planner, or it cannot translate the query.
func (s *Store) planned(ctx context.Context, coll *mongo.Collection, what string, run func(*sqlplan.Table, *sql.DB) error) (bool, error) {
	t := s.planTable(coll)
	if t == nil {
		return false, nil
	}
	s.planner.Selected()
	end := s.traceSelection(ctx, coll.Name(), what)
	err := run(t, s.planner.DB())
	end(err)
	if errors.Is(err, sqlplan.ErrUnsupported) {
		embedded.CountFallback()
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
	return s.planner.Selections()
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
		s.planner.Close()
	}
}

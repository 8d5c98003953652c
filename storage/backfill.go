package storage

import (
	"context"
	"database/sql"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/embedded/sqlplan"
)

// backfillBatch bounds how many referrals one round of backfillPeriods
// reads and updates.
const backfillBatch = 500

// backfillPeriods stores the periods (see periods) of referrals written
// before referrals carried them, a batch at a time until none lacks them.
// It is idempotent and runs on every start. Each update is conditional on
// the closing date it was computed from, so a concurrent change of the
// date is never overwritten with stale periods (the next round sees it).
// It runs on every start, so it must cost little when nothing lacks
// periods: on the embedded store the referrals lacking them are found in
// the planner's wide index alone (tens of milliseconds at 100,000), not
// by reading every stored document (46 s there).
func (s *Store) backfillPeriods(ctx context.Context) error {
	missing := bson.D{{Key: "periods.createdMonth", Value: nil}} // missing or null
	opts := options.Find().SetLimit(backfillBatch).
		SetProjection(bson.D{{Key: "createdDateTime", Value: 1}, {Key: "details.closingDate", Value: 1}})
	for {
		var refs []*Referral
		done, err := s.planned(ctx, s.referrals, "without periods", func(t *sqlplan.Table, db *sql.DB) error {
			ids, err := lackingPeriods(ctx, t, db)
			if err != nil || len(ids) == 0 {
				return err
			}
			docs, err := t.Documents(ctx, db, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, sqlplan.Order{Path: "_id"})
			if err == nil {
				refs, err = decodeAll[Referral](docs)
			}
			return err
		})
		if err != nil {
			return err
		}
		if !done {
			cur, err := s.referrals.Find(ctx, missing, opts)
			if err != nil {
				return fmt.Errorf("find referrals without periods: %w", err)
			}
			if err := cur.All(ctx, &refs); err != nil {
				return fmt.Errorf("read referrals without periods: %w", err)
			}
		}
		if len(refs) == 0 {
			return nil
		}
		writes := make([]mongo.WriteModel, len(refs))
		for i, r := range refs {
			var closing any // nil matches a missing closing date
			if r.Details != nil && r.Details.ClosingDate != nil {
				closing = *r.Details.ClosingDate
			}
			writes[i] = mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: r.ID}, {Key: "details.closingDate", Value: closing}}).
				SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "periods", Value: periodsOf(r)}}}})
		}
		res, err := s.referrals.BulkWrite(ctx, writes, options.BulkWrite().SetOrdered(false))
		if err != nil {
			return fmt.Errorf("store periods: %w", err)
		}
		if res.ModifiedCount == 0 {
			return fmt.Errorf("store periods: none of %d referrals could be updated", len(refs))
		}
	}
}

// lackingPeriods returns the ids of at most backfillBatch referrals whose
// created month is missing or null, read from the wide index: every
// referral has a created month once backfilled, so the index holds the
// answer, and SQLite left to itself scans the table for a condition on a
// column past the index's first.
func lackingPeriods(ctx context.Context, t *sqlplan.Table, db *sql.DB) ([]string, error) {
	return sqlplan.QueryStrings(ctx, db, lackingPeriodsSQL(t))
}

func lackingPeriodsSQL(t *sqlplan.Table) string {
	return fmt.Sprintf("SELECT %s FROM %s INDEXED BY %s WHERE %s IS NULL LIMIT %d",
		sqlplan.Expr("_id"), sqlplan.Quote(t.Name), sqlplan.Quote(t.IndexName(referralWideIndex)),
		sqlplan.Expr("periods.createdMonth"), backfillBatch)
}

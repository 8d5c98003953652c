package storage

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"referrals/storage/embedded"
)

// TestRestartOfALargeStore restarts the embedded store on thousands of
// referrals and proves that starting reads none of them whole: besides
// the demo seeding's look for any one referral (limit 1), every filter
// sent to referrals or participants names an _id alone, so FerretDB reads
// one document for it; what else start-up selects (referrals lacking
// periods, the estimated size) the read planner answers from its indexes,
// without falling back. A start that read every referral (as the periods
// backfill once did, past the operation timeout at 100,000) fails here
// whatever the machine's speed.
func TestRestartOfALargeStore(t *testing.T) {
	const n = bulkLoad // seeded as a bulk load: the planner's schema built after the documents
	ctx := asAdmin(t)
	database := fmt.Sprintf("test_%d", testDBSeq.Add(1))
	first, err := Connect(ctx, Options{URI: testURI, Database: database, Embedded: testEmbedded})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if seeded, err := demoSeed(ctx, first, 1, n); !seeded || err != nil {
		t.Fatalf("seeding: %v, %v", seeded, err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	var log filterLog
	again, err := Connect(ctx, Options{URI: testURI, Database: database, Monitor: log.monitor(), Embedded: testEmbedded})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = again.Drop(context.Background())
		_ = again.Close(context.Background())
	})
	fallbacks, planned := embedded.Fallbacks(), again.PlannedSelections()
	if err := again.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if seeded, err := demoSeed(ctx, again, 1, n); seeded || err != nil {
		t.Fatalf("seeding a seeded store: %v, %v", seeded, err)
	}
	if got, err := again.EstimatedReferrals(ctx); got != n || err != nil {
		t.Fatalf("estimated %d referrals (%v), want %d", got, err, n)
	}
	for _, f := range log.take() {
		if f.collection != "referrals" && f.collection != "participants" {
			continue
		}
		lookForOne := f.command == "find" && f.limit == 1 && len(f.filter) == 5 // {}
		if !idOnly(f) && !lookForOne {
			t.Errorf("start-up sent %s (limit %d): FerretDB reads every document for it", f, f.limit)
		}
	}
	// The side table built after the bulk load answers as FerretDB does.
	seeded, _ := demoGenerate(1, n, testAnchor) // what was seeded, but for its dates
	org := bson.D{{Key: "participation.organizationId", Value: seeded[0].Participation[0].OrganizationID}}
	got, err := again.countDocuments(ctx, again.referrals, org)
	want, err2 := again.referrals.CountDocuments(ctx, org)
	if err != nil || err2 != nil || got != want {
		t.Errorf("referrals with a participant of the first demo organization: planner %d (%v), FerretDB %d (%v)", got, err, want, err2)
	}
	if got := embedded.Fallbacks() - fallbacks; got != 0 {
		t.Errorf("%d selections fell back to FerretDB", got)
	}
	if again.PlannedSelections() == planned {
		t.Error("the read planner selected nothing at start: the periods backfill did not look")
	}
	// The backfill's look for referrals lacking periods reads the wide
	// index alone, not each stored document.
	var id, parent, unused int
	var plan string
	q := "EXPLAIN QUERY PLAN " + lackingPeriodsSQL(again.planner.Table("referrals"))
	if err := again.planner.DB().QueryRowContext(ctx, q).Scan(&id, &parent, &unused, &plan); err != nil {
		t.Fatal(err)
	}
	if want := "USING COVERING INDEX " + again.planner.Table("referrals").IndexName(referralWideIndex); !strings.HasSuffix(plan, want) {
		t.Errorf("the look for referrals lacking periods: %s; want it %s", plan, want)
	}
}

// TestFilteredCountsReadTheWideIndex: a filtered count reads the wide
// covering index alone, whichever of its columns the filter names (left to
// itself SQLite scanned the table for a country alone: 5 s at 100,000).
func TestFilteredCountsReadTheWideIndex(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	table := s.planner.Table("referrals")
	for _, filter := range []bson.D{
		{{Key: "customerProfile.address.country", Value: "US"}},
		{{Key: "referralSource", Value: "P2P"}},
		{{Key: "customerProfile.name", Value: bson.D{{Key: "$regex", Value: "zzzz"}, {Key: "$options", Value: "i"}}}},
	} {
		where, args, err := table.Where(filter)
		if err != nil {
			t.Fatal(err)
		}
		var id, parent, unused int
		var plan string
		q := "EXPLAIN QUERY PLAN SELECT count(*) FROM " + table.From(filter) + " WHERE " + where
		if err := s.planner.DB().QueryRowContext(ctx, q, args...).Scan(&id, &parent, &unused, &plan); err != nil {
			t.Fatal(err)
		}
		if want := "COVERING INDEX " + table.IndexName(referralWideIndex); !strings.Contains(plan, want) {
			t.Errorf("%v: %s; want it to read the %s", filter, plan, want)
		}
	}
}

package storage

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestPeriodsFollowWrites checks that the periods statistics group by are
// written with a referral, follow a change of its closing date, and are
// filled in at start for a referral stored without them.
func TestPeriodsFollowWrites(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	name, closing := "Periods Ltd", time.Date(2027, 2, 10, 0, 0, 0, 0, time.UTC)
	r, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P,
		CustomerProfile: &CustomerProfileInput{Name: &name, Address: &Address{AddressLine1: "1 Road", City: "Leeds", Country: "GB"}},
		Details:         &DetailsInput{ClosingDate: &closing}})
	if err != nil {
		t.Fatal(err)
	}
	stored := func(id string) periods {
		var doc struct {
			Periods periods `bson:"periods"`
		}
		if err := s.referrals.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return doc.Periods
	}
	created := s.Now()
	want := periods{CreatedMonth: month(created), CreatedQuarter: quarter(created), ClosingMonth: "2027-02", ClosingQuarter: "2027-Q1"}
	if got := stored(r.ID); got != want {
		t.Errorf("created: %+v, want %+v", got, want)
	}
	later := time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{Details: &DetailsInput{ClosingDate: &later}}); err != nil {
		t.Fatal(err)
	}
	want.ClosingMonth, want.ClosingQuarter = "2027-07", "2027-Q3"
	if got := stored(r.ID); got != want {
		t.Errorf("after the closing date moved: %+v, want %+v", got, want)
	}
	stats, err := s.ReferralStats(ctx, StatsQuery{GroupBy: []StatsDimension{DimClosingQuarter}})
	if err != nil || len(stats.Groups) != 1 || *stats.Groups[0].Key.ClosingQuarter != "2027-Q3" {
		t.Fatalf("stats by closing quarter: %+v, %v", stats, err)
	}

	// A referral written before referrals carried periods.
	old := time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)
	if _, err := s.referrals.InsertOne(ctx, bson.D{{Key: "_id", Value: "old"}, {Key: "createdDateTime", Value: old},
		{Key: "status", Value: "Pending"}, {Key: "referralSource", Value: "P2P"}, {Key: "participation", Value: bson.A{}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := stored("old"), (periods{CreatedMonth: "2025-12", CreatedQuarter: "2025-Q4"}); got != want {
		t.Errorf("backfilled: %+v, want %+v", got, want)
	}
}

// TestStatsSumIsExact adds up amounts whose float64 sum is not exact.
func TestStatsSumIsExact(t *testing.T) {
	s := newTestStore(t)
	refs, parts := demoGenerate(5, 3, testAnchor)
	values := []Money{90_071_992_547_409_93, 1, 1} // 2^53 + 1 cents and more: a float64 would round
	for i := range refs {
		refs[i].Details.DealValue = &values[i]
	}
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	stats, err := s.ReferralStats(asAdmin(t), StatsQuery{Extremes: true})
	if err != nil {
		t.Fatal(err)
	}
	d := stats.Total.DealValue
	if d.Sum() == nil || *d.Sum() != values[0]+2 || *d.Minimum != 1 || *d.Maximum != values[0] || d.Count != 3 {
		t.Errorf("sum %v min %s max %s count %d", d.Sum(), d.Minimum, d.Maximum, d.Count)
	}
}

// TestStatsSumPastExactRange: a group whose deal values add up past the
// largest exact amount has a null sum and average, and nothing else is
// lost: its other measures and the other groups are answered.
func TestStatsSumPastExactRange(t *testing.T) {
	s := newTestStore(t)
	refs, parts := demoGenerate(5, 3, testAnchor)
	largest := Money(math.MaxInt64)
	small := Money(12_345)
	for i, v := range []*Money{&largest, &largest, &small} {
		refs[i].Details.DealValue = v
	}
	refs[0].Status, refs[1].Status, refs[2].Status = ReferralWon, ReferralWon, ReferralLost
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	stats, err := s.ReferralStats(asAdmin(t), StatsQuery{GroupBy: []StatsDimension{DimStatus}, Extremes: true})
	if err != nil {
		t.Fatalf("one group's sum past the exact range failed the whole query: %v", err)
	}
	seen := 0
	for _, g := range stats.Groups {
		d := g.Measures.DealValue
		switch *g.Key.Status {
		case ReferralWon:
			seen++
			if d.Sum() != nil || d.Average() != nil || d.Count != 2 || *d.Maximum != largest || g.Measures.Won != 2 {
				t.Errorf("won: sum %v average %v count %d maximum %v won %d; want null, null, 2, %s, 2", d.Sum(), d.Average(), d.Count, d.Maximum, g.Measures.Won, largest)
			}
		case ReferralLost:
			seen++
			if d.Sum() == nil || *d.Sum() != small || d.Count != 1 {
				t.Errorf("lost: sum %v count %d; want %s, 1", d.Sum(), d.Count, small)
			}
		}
	}
	if seen != 2 {
		t.Errorf("groups %+v, want WON and LOST among them", stats.Groups)
	}
	if total := stats.Total.DealValue; total.Sum() != nil || total.Count != 3 {
		t.Errorf("total: sum %v count %d; want null, 3", total.Sum(), total.Count)
	}
}

// TestStatsKeyOrderKeepsNullLast: ordered by key either way, the group of
// referrals without the value (no closing date) comes last, as the schema
// says, so it never pushes a real group out of the first ones.
func TestStatsKeyOrderKeepsNullLast(t *testing.T) {
	s := newTestStore(t)
	refs, parts := demoGenerate(5, 40, testAnchor)
	refs[0].Details.ClosingDate = nil
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []OrderDirection{Ascending, Descending} {
		stats, err := s.ReferralStats(asAdmin(t), StatsQuery{GroupBy: []StatsDimension{DimClosingQuarter}, Order: &StatsOrder{Field: StatsByKey, Direction: &dir}})
		if err != nil || len(stats.Groups) < 3 {
			t.Fatalf("%s: %+v, %v", dir, stats, err)
		}
		var keys []string
		for _, g := range stats.Groups {
			key := "null"
			if g.Key.ClosingQuarter != nil {
				key = *g.Key.ClosingQuarter
			}
			keys = append(keys, key)
		}
		first, second, last := stats.Groups[0].Key.ClosingQuarter, stats.Groups[1].Key.ClosingQuarter, stats.Groups[len(stats.Groups)-1].Key.ClosingQuarter
		if first == nil || second == nil || last != nil || (dir == Ascending) != (*first < *second) {
			t.Errorf("%s: keys %v, want them %s with null last", dir, keys, dir)
		}
	}
}

// TestStatsReadOrganizationIDsWithSlashes: a participation stored with an
// organization id holding "/" (written before organization ids had an
// alphabet) is grouped under that id and its status, not answered
// INTERNAL for everyone who sees the referral; and no new invitation may
// name such an id.
func TestStatsReadOrganizationIDsWithSlashes(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	org := "evil/Accepted"
	if _, err := s.referrals.InsertOne(ctx, bson.D{{Key: "_id", Value: "slash"}, {Key: "createdDateTime", Value: testAnchor},
		{Key: "status", Value: "Active"}, {Key: "referralSource", Value: "P2P"},
		{Key: "participation", Value: bson.A{bson.D{{Key: "participantId", Value: "p1"}, {Key: "organizationId", Value: org},
			{Key: "status", Value: "Invited"}, {Key: "orgStatus", Value: org + "/Invited"}}}}}); err != nil {
		t.Fatal(err)
	}
	stats, err := s.ReferralStats(ctx, StatsQuery{GroupBy: []StatsDimension{DimParticipantOrganization, DimParticipantStatus}})
	if err != nil || len(stats.Groups) != 1 {
		t.Fatalf("stats: %+v, %v", stats, err)
	}
	if k := stats.Groups[0].Key; *k.ParticipantOrganizationID != org || *k.ParticipantStatus != ParticipantInvited {
		t.Errorf("grouped under %q, %q; want %q, Invited", *k.ParticipantOrganizationID, *k.ParticipantStatus, org)
	}
	r, err := s.CreateReferral(ctx, validReferralInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{org, "a:b", "", strings.Repeat("x", 129), "ünï", "tab\there"} {
		if _, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: id, OrganizationName: "X"}); ErrorCodeOf(err) != CodeBadUserInput {
			t.Errorf("invite %q: %v, want BAD_USER_INPUT", id, err)
		}
	}
}

// TestStatsListsDoNotMultiplyPastTheBound: the combinations bound counts
// stored lists whole, and one referral's lists split into the product of
// their lengths (30 × 30 × 30 here): the grouping is refused before those
// groups are built, and a grouping within the bound still answers.
func TestStatsListsDoNotMultiplyPastTheBound(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	tags := func(prefix string) bson.A {
		var out bson.A
		for i := range 30 {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}
	if _, err := s.referrals.InsertOne(ctx, bson.D{{Key: "_id", Value: "many"}, {Key: "createdDateTime", Value: testAnchor},
		{Key: "status", Value: "Active"}, {Key: "referralSource", Value: "P2P"}, {Key: "participation", Value: bson.A{}},
		{Key: "details", Value: bson.D{{Key: "dealValueCents", Value: int64(100)}, {Key: "requirements", Value: bson.D{
			{Key: "industryFocus", Value: tags("i")}, {Key: "products", Value: tags("p")}, {Key: "solutions", Value: tags("s")}}}}}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.ReferralStats(ctx, StatsQuery{GroupBy: []StatsDimension{DimIndustryFocus, DimProducts, DimSolutions}, Extremes: true})
	if ErrorCodeOf(err) != CodeBadUserInput || !strings.Contains(err.Error(), "10000 groups") {
		t.Errorf("27,000 groups of one referral: %v, want BAD_USER_INPUT naming the bound", err)
	}
	stats, err := s.ReferralStats(ctx, StatsQuery{GroupBy: []StatsDimension{DimIndustryFocus, DimProducts}, Extremes: true})
	if err != nil || stats.GroupCount != 900 || stats.Total.Count != 1 {
		t.Errorf("900 groups: %+v, %v", stats, err)
	}
}

// TestStatsBoundCountsGroupsNotLists: the groups bound counts the groups a
// query makes, each list split into its elements, not the distinct lists
// the referrals carry. Each of 60 referrals here has its own set of six
// organizations (more sets than the bound, lowered for the test), and
// grouping by organization and status makes six groups. At 100,000
// demo referrals the README's grouping by organization was refused so.
func TestStatsBoundCountsGroupsNotLists(t *testing.T) {
	bound := maxStatsCombinations
	maxStatsCombinations = 40
	t.Cleanup(func() { maxStatsCombinations = bound })
	s := newTestStore(t)
	ctx := asAdmin(t)
	var docs []any
	for i := 1; i <= 60; i++ {
		var participation bson.A
		for org := range 8 {
			if i&(1<<org) != 0 {
				id := fmt.Sprintf("org-%d", org)
				participation = append(participation, bson.D{{Key: "organizationId", Value: id}, {Key: "status", Value: "Accepted"}, {Key: "orgStatus", Value: id + "/Accepted"}})
			}
		}
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("r%02d", i)}, {Key: "createdDateTime", Value: testAnchor},
			{Key: "status", Value: "Active"}, {Key: "referralSource", Value: "P2P"}, {Key: "participation", Value: participation},
			{Key: "details", Value: bson.D{{Key: "dealValueCents", Value: int64(100 * i)}}}})
	}
	if _, err := s.referrals.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	stats, err := s.ReferralStats(ctx, StatsQuery{GroupBy: []StatsDimension{DimParticipantOrganization, DimParticipantStatus}})
	if err != nil {
		t.Fatalf("60 sets of organizations in 6 groups: %v", err)
	}
	if stats.GroupCount != 6 || stats.Total.Count != 60 {
		t.Errorf("%d groups, %d referrals in all; want 6 (organizations 0-5: 60 < 2^6) and 60", stats.GroupCount, stats.Total.Count)
	}
	for _, g := range stats.Groups {
		org := *g.Key.ParticipantOrganizationID
		var bit int
		fmt.Sscanf(org, "org-%d", &bit)
		want := 0
		for i := 1; i <= 60; i++ {
			if i&(1<<bit) != 0 {
				want++
			}
		}
		if g.Measures.Count != want || *g.Key.ParticipantStatus != ParticipantAccepted {
			t.Errorf("%s %s: %d referrals, want %d", org, *g.Key.ParticipantStatus, g.Measures.Count, want)
		}
	}
	// Past the bound in groups, still refused.
	maxStatsCombinations = 5
	if _, err := s.ReferralStats(ctx, StatsQuery{GroupBy: []StatsDimension{DimParticipantOrganization}}); ErrorCodeOf(err) != CodeBadUserInput {
		t.Errorf("6 groups past a bound of 5: %v, want BAD_USER_INPUT", err)
	}
}

// TestStatsBudgetIsShared: the statistics run with one operation's context
// (its aliases) share one bound of group keys: a grouping within the bound
// (near it) answers once, and again only in another operation. A partner repeated a
// grouping in three aliases to spend three times the bound (7.5 s).
func TestStatsBudgetIsShared(t *testing.T) {
	bound := maxStatsSplits
	maxStatsSplits = 850
	t.Cleanup(func() { maxStatsSplits = bound })
	s := newTestStore(t)
	tags := func(prefix string, n int) bson.A {
		var out bson.A
		for i := range n {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}
	for i := range 4 { // 4 × 20 × 10 = 800 keys, near the bound
		if _, err := s.referrals.InsertOne(asAdmin(t), bson.D{{Key: "_id", Value: fmt.Sprintf("r%d", i)}, {Key: "createdDateTime", Value: testAnchor},
			{Key: "status", Value: "Active"}, {Key: "referralSource", Value: "P2P"}, {Key: "participation", Value: bson.A{}},
			{Key: "details", Value: bson.D{{Key: "requirements", Value: bson.D{{Key: "products", Value: tags("p", 20)}, {Key: "solutions", Value: tags("s", 10)}}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	q := StatsQuery{GroupBy: []StatsDimension{DimProducts, DimSolutions}}
	operation := WithStatsBudget(asAdmin(t))
	if stats, err := s.ReferralStats(operation, q); err != nil || stats.GroupCount != 200 {
		// Its 200 groups are not charged again on top of the 800 keys
		// counted before they were built (an outside test's grouping
		// within the bound was refused after the work so).
		t.Fatalf("800 keys within a bound of 850: %+v, %v", stats, err)
	}
	if _, err := s.ReferralStats(operation, q); ErrorCodeOf(err) != CodeBadUserInput {
		t.Errorf("the same grouping again in the same operation: %v, want BAD_USER_INPUT (1,600 keys of 850)", err)
	}
	if _, err := s.ReferralStats(WithStatsBudget(asAdmin(t)), q); err != nil {
		t.Errorf("in another operation: %v", err)
	}
}

package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/embedded/sqlplan"
)

// The differential test of the planner: random referrals and participants
// (missing fields, nulls, empty and repeated tags, enums stored by
// position, several participants of one organization) and random filters,
// orders, cursors in both directions and statistics, each answered by the
// planner's SQL and by FerretDB's own evaluation of the same BSON.

var (
	diffOrgs      = []string{"org-a", "org-b", "org-c"}
	diffTags      = []string{"T1", "T2", "T3", "T, 4"}
	diffNames     = []string{"Contoso Ltd", "contoso", "Straße AG", "STRASSE", "Ǆemal d.o.o.", "100% Fit", "a_b Corp", "Äpfel", ""}
	diffCountries = []string{"US", "DE", "FR", "JP"}
	diffStatuses  = []any{"Pending", "Active", "Won", "Lost", "Archived", int32(1), int32(2), int32(3)}
	diffSources   = []any{"WebDirect", "PartnerLed", "AgentLed", "P2P", int32(0), int32(3)}
	diffPStatus   = []any{"Invited", "Accepted", "Rejected", "Expired", int32(1)}
)

// diffTime returns one of a few dates, so that orders have ties.
func diffTime(rng *rand.Rand) time.Time {
	return testAnchor.Add(time.Duration(rng.IntN(12)) * 24 * time.Hour)
}

// maybe sets d[key] = v, or null, or leaves it out.
func maybe(rng *rand.Rand, d bson.D, key string, v any) bson.D {
	switch rng.IntN(6) {
	case 0:
		return d
	case 1:
		return append(d, bson.E{Key: key, Value: nil})
	}
	return append(d, bson.E{Key: key, Value: v})
}

func diffList(rng *rand.Rand, from []string) any {
	switch rng.IntN(6) {
	case 0:
		return nil
	case 1:
		return bson.A{}
	}
	var out bson.A
	for range 1 + rng.IntN(3) {
		out = append(out, from[rng.IntN(len(from))]) // repeats happen
	}
	return out
}

// seedDiff inserts n random referrals, and participants for them, as raw
// documents through the driver.
func seedDiff(t testing.TB, s *Store, rng *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	var refs, parts []any
	for i := range n {
		r, p := diffReferral(rng, fmt.Sprintf("r%03d", i), "p")
		refs, parts = append(refs, r), append(parts, p...)
	}
	if _, err := s.referrals.InsertMany(ctx, refs); err != nil {
		t.Fatal(err)
	}
	// Then rewrite some whole (new arrays: the side table's update
	// trigger) and change only the status of others (no array changed:
	// the trigger leaves their elements as they are).
	for i := range n {
		id := fmt.Sprintf("r%03d", i)
		switch rng.IntN(3) {
		case 0:
			r, p := diffReferral(rng, id, "q")
			if _, err := s.referrals.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, r); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, p...)
		case 1:
			st := diffStatuses[rng.IntN(len(diffStatuses))]
			if _, err := s.referrals.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: st}}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(parts) > 0 {
		if _, err := s.participants.InsertMany(ctx, parts); err != nil {
			t.Fatal(err)
		}
	}
}

// diffReferral returns a random referral with the given id and its
// participants, whose ids start with the id and pid.
func diffReferral(rng *rand.Rand, id, pid string) (bson.D, []any) {
	var parts []any
	d := bson.D{{Key: "_id", Value: id}, {Key: "createdDateTime", Value: diffTime(rng)}, {Key: "updatedDateTime", Value: diffTime(rng)}}
	d = append(d, bson.E{Key: "status", Value: diffStatuses[rng.IntN(len(diffStatuses))]}) // required, as the API writes it
	d = append(d, bson.E{Key: "referralSource", Value: diffSources[rng.IntN(len(diffSources))]})
	profile := bson.D{}
	profile = maybe(rng, profile, "name", diffNames[rng.IntN(len(diffNames))])
	profile = maybe(rng, profile, "address", bson.D{{Key: "country", Value: diffCountries[rng.IntN(len(diffCountries))]}})
	d = maybe(rng, d, "customerProfile", profile)
	details := bson.D{}
	details = maybe(rng, details, "dealValueCents", int64(rng.IntN(5)-1)*250_000)
	details = maybe(rng, details, "closingDate", diffTime(rng))
	req := bson.D{}
	for _, f := range requirementFields {
		req = maybe(rng, req, f.name, diffList(rng, diffTags))
	}
	details = append(details, bson.E{Key: "requirements", Value: req})
	d = maybe(rng, d, "details", details)
	var participation bson.A
	for j := range rng.IntN(4) {
		org := diffOrgs[rng.IntN(len(diffOrgs))]
		st := diffPStatus[rng.IntN(len(diffPStatus))]
		name := fmt.Sprint(st)
		if pos, ok := st.(int32); ok {
			name = string(participantStatusPositions[pos])
		}
		pid := fmt.Sprintf("%s-%s%d", id, pid, j)
		participation = append(participation, bson.D{
			{Key: "participantId", Value: pid}, {Key: "organizationId", Value: org},
			{Key: "status", Value: st}, {Key: "orgStatus", Value: org + "/" + name},
		})
		p := bson.D{{Key: "_id", Value: pid}, {Key: "referralId", Value: id}, {Key: "createdDateTime", Value: diffTime(rng)},
			{Key: "organizationId", Value: org}, {Key: "status", Value: st}}
		parts = append(parts, maybe(rng, p, "expirationDateTime", diffTime(rng)))
	}
	if rng.IntN(8) > 0 {
		d = append(d, bson.E{Key: "participation", Value: participation})
	}
	periods := bson.D{}
	periods = maybe(rng, periods, "createdMonth", fmt.Sprintf("2026-%02d", 1+rng.IntN(3)))
	periods = maybe(rng, periods, "closingQuarter", fmt.Sprintf("2026-Q%d", 1+rng.IntN(2)))
	d = maybe(rng, d, "periods", periods)
	return d, parts
}

// diffFilter returns a random referral filter: conditions on random paths
// with random operators, nested in $and and $or.
func diffFilter(rng *rand.Rand, depth int) bson.D {
	if depth > 0 && rng.IntN(3) == 0 {
		op := []string{"$and", "$or", "$nor"}[rng.IntN(3)]
		var list bson.A
		for range 1 + rng.IntN(3) {
			list = append(list, diffFilter(rng, depth-1))
		}
		return bson.D{{Key: op, Value: list}}
	}
	c := diffCondition(rng)
	if other := diffCondition(rng); other.Key != c.Key && rng.IntN(2) == 0 { // two paths in one document
		return bson.D{c, other}
	}
	return bson.D{c}
}

func diffCondition(rng *rand.Rand) bson.E {
	type domain struct {
		path   string
		values func() any
		array  bool
	}
	pick := func(list []any) func() any { return func() any { return list[rng.IntN(len(list))] } }
	strs := func(list []string) func() any { return func() any { return list[rng.IntN(len(list))] } }
	date := func() any { return diffTime(rng).Add(time.Duration(rng.IntN(3)-1) * time.Hour) }
	domains := []domain{
		{"_id", func() any { return fmt.Sprintf("r%03d", rng.IntN(70)) }, false},
		{"status", pick(diffStatuses), false},
		{"referralSource", pick(diffSources), false},
		{"createdDateTime", date, false},
		{"updatedDateTime", date, false},
		{"details.closingDate", date, false},
		{"details.dealValueCents", func() any { return int64(rng.IntN(7)-2) * 125_000 }, false},
		{"customerProfile.name", strs(diffNames), false},
		{"customerProfile.address.country", strs(diffCountries), false},
		{"periods.createdMonth", strs([]string{"2026-01", "2026-02", "2026-03"}), false},
		{"participation.organizationId", strs(diffOrgs), true},
		{"participation.status", pick(diffPStatus), true},
		{"participation.orgStatus", strs([]string{"org-a/Accepted", "org-b/Invited", "org-c/Rejected"}), true},
		{"details.requirements.products", strs(diffTags), true},
		{"details.requirements.solutions", strs(diffTags), true},
	}
	dom := domains[rng.IntN(len(domains))]
	list := func() bson.A {
		l := bson.A{}
		for range rng.IntN(4) {
			l = append(l, dom.values())
		}
		if !dom.array && rng.IntN(4) == 0 {
			l = append(l, nil)
		}
		return l
	}
	ops := []string{"$eq", "$in", "plain"}
	switch {
	case !dom.array:
		ops = append(ops, "$gt", "$gte", "$lt", "$lte", "$all", "$ne", "$nin", "$exists", "null", "$nenull")
	case !strings.HasPrefix(dom.path, "participation."):
		ops = append(ops, "$all")
	}
	// On array paths, only what the storage sends there: equality, $in,
	// and $all on tag lists. Through arrays of documents FerretDB v1.24
	// departs from MongoDB (which the planner follows): it matches $ne and
	// $nin when some element differs, never matches $all, and wants one
	// element to meet both ends of a range.
	if dom.path == "customerProfile.name" {
		ops = append(ops, "$regex", "$regex", "$regex")
	}
	var v any
	switch op := ops[rng.IntN(len(ops))]; op {
	case "plain":
		v = dom.values()
	case "null":
		v = nil
	case "$nenull":
		v = bson.D{{Key: "$ne", Value: nil}}
	case "$in", "$nin", "$all":
		l := list()
		if op == "$all" {
			l = slices.DeleteFunc(l, func(e any) bool { return e == nil })
			if len(l) == 0 {
				l = bson.A{dom.values()}
			}
		}
		v = bson.D{{Key: op, Value: l}}
	case "$exists":
		v = bson.D{{Key: op, Value: rng.IntN(2) == 0}}
	case "$regex":
		name := diffNames[rng.IntN(len(diffNames))]
		runes := []rune(name)
		i := rng.IntN(len(runes) + 1)
		j := i + rng.IntN(len(runes)-i+1)
		v = bson.D{{Key: "$regex", Value: regexp.QuoteMeta(string(runes[i:j]))}, {Key: "$options", Value: "i"}}
	case "$gt", "$gte", "$lt", "$lte":
		v = bson.D{{Key: op, Value: dom.values()}}
		if (op == "$gt" || op == "$gte") && rng.IntN(2) == 0 { // a range, both ends
			v = append(v.(bson.D), bson.E{Key: []string{"$lt", "$lte"}[rng.IntN(2)], Value: dom.values()})
		}
	default:
		v = bson.D{{Key: op, Value: dom.values()}}
	}
	return bson.E{Key: dom.path, Value: v}
}

func idsOf(docs []bson.Raw) []string {
	var ids []string
	for _, d := range docs {
		ids = append(ids, d.Lookup("_id").StringValue())
	}
	return ids
}

// diffOrders are the orders pages are compared in.
var diffOrders = []string{"createdDateTime", "updatedDateTime", "details.closingDate", "details.dealValueCents", "customerProfile.name"}

// ferretPage is FerretDB's answer to a page: ids in order, with the sort
// value of each (as a cursor holds it).
func ferretPage(t testing.TB, s *Store, filter bson.D, field string, desc bool, after *sqlplan.Position, limit int64) ([]string, []any) {
	t.Helper()
	dir := 1
	if desc {
		dir = -1
	}
	if after != nil {
		filter = and(filter, afterKey(field, desc, after.Value, after.ID))
	}
	opts := options.Find().SetSort(bson.D{{Key: field, Value: dir}, {Key: "_id", Value: dir}}).SetLimit(limit).
		SetProjection(bson.D{{Key: field, Value: 1}})
	cur, err := s.referrals.Find(context.Background(), filter, opts)
	if err != nil {
		t.Fatalf("FerretDB find %v: %v", filter, err)
	}
	var ids []string
	var values []any
	for cur.Next(context.Background()) {
		ids = append(ids, cur.Current.Lookup("_id").StringValue())
		values = append(values, cursorValue(cur.Current, field))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, values
}

// cursorValue reads the sort value at a dotted path as a cursor keeps it.
func cursorValue(doc bson.Raw, field string) any {
	v, err := doc.LookupErr(splitPath(field)...)
	if err != nil {
		return nil
	}
	switch v.Type {
	case bson.TypeDateTime:
		return v.Time().UTC()
	case bson.TypeInt64:
		return v.Int64()
	case bson.TypeString:
		return v.StringValue()
	}
	return nil
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := range p {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// FuzzPlanner is TestPlannerAgreesWithFerretDB with the random filters,
// orders and positions drawn from the fuzzer's seeds: one store of random
// data, each input one case.
func FuzzPlanner(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(7), uint64(0))
	s := testStore.WithDatabase(fmt.Sprintf("test_%d", testDBSeq.Add(1)))
	f.Cleanup(func() { _ = s.Drop(context.Background()) })
	if err := s.Prepare(WithCaller(context.Background(), Caller{Role: RoleAdmin})); err != nil {
		f.Fatal(err)
	}
	seedDiff(f, s, rand.New(rand.NewPCG(5, 6)), 70)
	f.Fuzz(func(t *testing.T, a, b uint64) {
		checkPlannerCase(t, s, rand.New(rand.NewPCG(a, b)), 0)
	})
}

// TestPlannerAgreesWithFerretDB compares the planner's pages and counts
// with FerretDB's on random data and random filters.
func TestPlannerAgreesWithFerretDB(t *testing.T) {
	s := newTestStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	seedDiff(t, s, rng, 70)
	for i := range 400 {
		if i == 200 {
			// The side table as a start fills it from stored documents
			// (the rest of the cases) holds what the triggers kept.
			kept := sideTableRows(t, s)
			dropPlannerSchema(t, s)
			var err error
			if err = s.openPlanner(t.Context()); err != nil {
				t.Fatal(err)
			}
			if filled := sideTableRows(t, s); !slices.Equal(kept, filled) {
				t.Fatalf("the triggers kept %d elements, filled from the documents %d:\n%v\n%v", len(kept), len(filled), kept, filled)
			}
		}
		checkPlannerCase(t, s, rng, i)
	}
}

// checkPlannerCase compares one random filter: its count, a page in a
// random order and direction, and the page after a random position.
func checkPlannerCase(t *testing.T, s *Store, rng *rand.Rand, i int) {
	t.Helper()
	ctx := context.Background()
	filter := diffFilter(rng, 2)
	if rng.IntN(3) == 0 { // a partner's visibility, as every partner query has it
		org := diffOrgs[rng.IntN(len(diffOrgs))]
		c := Caller{Role: RolePartner, OrganizationID: org}
		filter = and(referralScope(c), customerDetailsScope(c), filter)
	}
	want, err := s.referrals.CountDocuments(ctx, filter)
	if err != nil {
		t.Fatalf("case %d: FerretDB count %v: %v", i, filter, err)
	}
	got, err := s.planner.Table("referrals").Count(ctx, s.planner.DB(), filter)
	if err != nil || got != want {
		t.Fatalf("case %d: count of %v: planner %d, %v; FerretDB %d", i, filter, got, err, want)
	}
	field, desc := diffOrders[rng.IntN(len(diffOrders))], rng.IntN(2) == 0
	all, values := ferretPage(t, s, filter, field, desc, nil, 0)
	order := sqlplan.Order{Path: field, Desc: desc}
	limit := 1 + rng.IntN(8)
	docs, err := s.planner.Table("referrals").Page(ctx, s.planner.DB(), filter, order, nil, limit)
	gotIDs := idsOf(docs)
	if err != nil || !slices.Equal(gotIDs, all[:min(limit, len(all))]) {
		t.Fatalf("case %d: first %d of %v by %s desc=%v: planner %v, %v; FerretDB %v", i, limit, filter, field, desc, gotIDs, err, all)
	}
	for _, d := range docs { // decoded as FerretDB answers them
		want, err := s.referrals.FindOne(ctx, bson.D{{Key: "_id", Value: d.Lookup("_id").StringValue()}}).Raw()
		if err != nil || !bytes.Equal(d, want) {
			t.Fatalf("case %d: document decoded from SQL\n%s\nFerretDB's\n%s (%v)", i, d, want, err)
		}
	}
	if len(all) == 0 {
		return
	}
	k := rng.IntN(len(all))
	after := &sqlplan.Position{Value: values[k], ID: all[k]}
	wantAfter, _ := ferretPage(t, s, filter, field, desc, after, int64(limit))
	if !slices.Equal(wantAfter, all[k+1:min(k+1+limit, len(all))]) {
		t.Fatalf("case %d: FerretDB's own keyset page disagrees with its order: %v vs %v", i, wantAfter, all[k+1:])
	}
	docs, err = s.planner.Table("referrals").Page(ctx, s.planner.DB(), filter, order, after, limit)
	gotIDs = idsOf(docs)
	if err != nil || !slices.Equal(gotIDs, wantAfter) {
		t.Fatalf("case %d: %d after %v of %v by %s desc=%v: planner %v, %v; FerretDB %v", i, limit, after, filter, field, desc, gotIDs, err, wantAfter)
	}
}

// TestPlannerStatsAgreeWithFerretDB compares statistics computed from the
// planner's groups with those of FerretDB's aggregations.
func TestPlannerStatsAgreeWithFerretDB(t *testing.T) {
	s := newTestStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	seedDiff(t, s, rng, 70)
	ferret := *s
	ferret.planner = nil
	dims := slices.Collect(func(yield func(StatsDimension) bool) {
		for d := range statsDimensions {
			if !yield(d) {
				return
			}
		}
	})
	slices.Sort(dims)
	for i := range 60 {
		rng.Shuffle(len(dims), func(a, b int) { dims[a], dims[b] = dims[b], dims[a] })
		q := StatsQuery{GroupBy: slices.Clone(dims[:rng.IntN(4)]), First: ptr(MaxStatsGroups), Extremes: rng.IntN(2) == 0}
		if rng.IntN(2) == 0 {
			q.Filter = &ReferralFilter{Status: []ReferralStatus{ReferralWon, ReferralLost, ReferralActive}[:1+rng.IntN(3)]}
		}
		ctx := asAdmin(t)
		if rng.IntN(2) == 0 {
			ctx = WithCaller(t.Context(), Caller{Role: RolePartner, OrganizationID: diffOrgs[rng.IntN(len(diffOrgs))]})
		}
		want, err := ferret.ReferralStats(ctx, q)
		if err != nil {
			t.Fatalf("case %d: FerretDB %+v: %v", i, q, err)
		}
		got, err := s.ReferralStats(ctx, q)
		if err != nil {
			t.Fatalf("case %d: planner %+v: %v", i, q, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: %+v:\nplanner  %s\nFerretDB %s", i, q, statsString(got), statsString(want))
		}
	}
}

func statsString(r *ReferralStats) string {
	out := fmt.Sprintf("%d groups, total %+v;", r.GroupCount, *r.Total)
	for _, g := range r.Groups {
		out += fmt.Sprintf(" {%s %+v}", keyString(statsKeyValues(g.Key)), *g.Measures)
	}
	return out
}

func statsKeyValues(k *StatsKey) []*string {
	v := reflect.ValueOf(*k)
	var out []*string
	for i := range v.NumField() {
		f := v.Field(i)
		if f.IsNil() {
			out = append(out, nil)
			continue
		}
		s := fmt.Sprint(f.Elem().Interface())
		out = append(out, &s)
	}
	return out
}

// sideTableRows returns every row of the referrals' side table, sorted.
func sideTableRows(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.planner.DB().Query("SELECT id, path, quote(value) FROM " + sqlplan.Quote(s.planner.Table("referrals").SideTable()) + " ORDER BY 1, 2, 3")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, path, value string
		if err := rows.Scan(&id, &path, &value); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+" "+path+" "+value)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

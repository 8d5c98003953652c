package graph

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/storage"
)

// listedReferral is a referral as a client lists it, with what statistics
// group by.
type listedReferral struct {
	ID              string
	Status          string
	ReferralSource  string
	CreatedDateTime string
	CustomerProfile struct {
		Address *struct{ Country string }
	}
	Details struct {
		DealValue    *string
		ClosingDate  *string
		Requirements map[string][]struct{ ID string }
	}
	Participants []struct {
		OrganizationID string
		Status         string
	}
}

const listedFields = `id status referralSource createdDateTime
  customerProfile { address { country } }
  details { dealValue closingDate requirements { industryFocus { id } products { id } serviceTypes { id } solutions { id } } }
  participants { organizationId status }`

// listAll reads every referral the caller of bearer sees, page by page.
func listAll(t *testing.T, h http.Handler, bearer string) []listedReferral {
	t.Helper()
	var all []listedReferral
	after := ""
	for range 100 {
		arg := ""
		if after != "" {
			arg = fmt.Sprintf(`, after: %q`, after)
		}
		var page struct {
			Referrals struct {
				Nodes    []listedReferral
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		postAs(t, h, bearer, `{ referrals(first: 100`+arg+`) { nodes { `+listedFields+` } pageInfo { hasNextPage endCursor } } }`).mustData(t, &page)
		all = append(all, page.Referrals.Nodes...)
		if !page.Referrals.PageInfo.HasNextPage {
			return all
		}
		after = page.Referrals.PageInfo.EndCursor
	}
	t.Fatal("paging does not end")
	return nil
}

func quarterOf(date string) string {
	var m int
	fmt.Sscanf(date[5:7], "%d", &m)
	return fmt.Sprintf("%s-Q%d", date[:4], (m+2)/3)
}

// clientKeys returns the values r has for dimension d, as a client reads
// them from the listing: none for an empty list (or, for a partner, a
// country it does not see), one nil for a missing single value.
func clientKeys(d string, r *listedReferral) [][]*string {
	one := func(s string) [][]*string { return [][]*string{{&s}} }
	distinct := func(values []string) [][]*string {
		var out [][]*string
		for _, v := range values {
			if !slices.ContainsFunc(out, func(o []*string) bool { return *o[0] == v }) {
				out = append(out, []*string{&v})
			}
		}
		return out
	}
	tags := func(category string) [][]*string {
		var ids []string
		for _, t := range r.Details.Requirements[category] {
			ids = append(ids, t.ID)
		}
		return distinct(ids)
	}
	switch d {
	case "STATUS":
		return one(r.Status)
	case "REFERRAL_SOURCE":
		return one(r.ReferralSource)
	case "CUSTOMER_COUNTRY":
		if r.CustomerProfile.Address == nil {
			return nil // hidden from this partner: not counted, as documented
		}
		return one(r.CustomerProfile.Address.Country)
	case "INDUSTRY_FOCUS":
		return tags("industryFocus")
	case "PRODUCTS":
		return tags("products")
	case "SERVICE_TYPES":
		return tags("serviceTypes")
	case "SOLUTIONS":
		return tags("solutions")
	case "PARTICIPANT_ORGANIZATION", "PARTICIPANT_STATUS":
		var values []string
		for _, p := range r.Participants {
			values = append(values, map[string]string{"PARTICIPANT_ORGANIZATION": p.OrganizationID, "PARTICIPANT_STATUS": p.Status}[d])
		}
		return distinct(values)
	case "CREATED_MONTH":
		return one(r.CreatedDateTime[:7])
	case "CREATED_QUARTER":
		return one(quarterOf(r.CreatedDateTime))
	case "CLOSING_MONTH", "CLOSING_QUARTER":
		if r.Details.ClosingDate == nil {
			return [][]*string{{nil}}
		}
		if d == "CLOSING_MONTH" {
			return one((*r.Details.ClosingDate)[:7])
		}
		return one(quarterOf(*r.Details.ClosingDate))
	}
	panic("unknown dimension " + d)
}

// clientGroupKeys returns the groups of dims r counts in. Organization and
// participant status together pair each organization with its own status.
func clientGroupKeys(dims []string, r *listedReferral) [][]*string {
	keys := [][]*string{make([]*string, len(dims))}
	orgAndStatus := slices.Contains(dims, "PARTICIPANT_ORGANIZATION") && slices.Contains(dims, "PARTICIPANT_STATUS")
	for i, d := range dims {
		var alts [][]*string
		var at []int
		switch {
		case orgAndStatus && d == "PARTICIPANT_STATUS":
			continue
		case orgAndStatus && d == "PARTICIPANT_ORGANIZATION":
			for _, p := range r.Participants {
				org, st := p.OrganizationID, p.Status
				alts = append(alts, []*string{&org, &st})
			}
			at = []int{i, slices.Index(dims, "PARTICIPANT_STATUS")}
		default:
			alts, at = clientKeys(d, r), []int{i}
		}
		var next [][]*string
		for _, k := range keys {
			for _, alt := range alts {
				k2 := slices.Clone(k)
				for j, pos := range at {
					k2[pos] = alt[j]
				}
				next = append(next, k2)
			}
		}
		keys = next
	}
	return keys
}

// recount are measures recounted by a client.
type recount struct {
	count, won, lost, valued, missing int
	sum                               storage.Money
	min, max                          *storage.Money
}

func (m *recount) add(t *testing.T, r *listedReferral) {
	m.count++
	switch r.Status {
	case "WON":
		m.won++
	case "LOST":
		m.lost++
	}
	if r.Details.DealValue == nil {
		m.missing++
		return
	}
	v, err := storage.ParseMoney(*r.Details.DealValue)
	if err != nil {
		t.Fatal(err)
	}
	m.valued++
	m.sum += v
	if m.min == nil || v < *m.min {
		m.min = &v
	}
	if m.max == nil || v > *m.max {
		m.max = &v
	}
}

// apiMeasures are the measures as referralStats returns them.
type apiMeasures struct {
	Count, Won, Lost int
	WinRate          *float64
	DealValue        struct {
		Sum                       string
		Count, Missing            int
		Average, Minimum, Maximum *string
	}
}

const measureFields = `count won lost winRate dealValue { sum count missing average minimum maximum }`

func moneyText(m *storage.Money) *string {
	if m == nil {
		return nil
	}
	s := m.String()
	return &s
}

// check compares measures returned with a recount.
func (m *recount) check(t *testing.T, what string, got apiMeasures) {
	t.Helper()
	var avg *storage.Money
	if m.valued > 0 {
		a := storage.DealValueStats{Count: m.valued}
		a.AddValue(m.sum)
		avg = a.Average()
	}
	var rate *float64
	if m.won+m.lost > 0 {
		r := float64(m.won) / float64(m.won+m.lost)
		rate = &r
	}
	str := func(s *string) string {
		if s == nil {
			return "null"
		}
		return *s
	}
	flt := func(f *float64) string {
		if f == nil {
			return "null"
		}
		return fmt.Sprintf("%.9f", *f)
	}
	want := fmt.Sprintf("count %d won %d lost %d winRate %s sum %s valued %d missing %d avg %s min %s max %s",
		m.count, m.won, m.lost, flt(rate), m.sum, m.valued, m.missing, str(moneyText(avg)), str(moneyText(m.min)), str(moneyText(m.max)))
	d := got.DealValue
	have := fmt.Sprintf("count %d won %d lost %d winRate %s sum %s valued %d missing %d avg %s min %s max %s",
		got.Count, got.Won, got.Lost, flt(got.WinRate), d.Sum, d.Count, d.Missing, str(d.Average), str(d.Minimum), str(d.Maximum))
	if have != want {
		t.Errorf("%s:\n got %s\nwant %s", what, have, want)
	}
}

// statsKeyFields and the dimensions' fields in it.
const statsKeyFields = `status referralSource customerCountry industryFocus { id } products { id } serviceTypes { id } solutions { id }
  participantOrganizationId participantStatus createdMonth createdQuarter closingMonth closingQuarter`

type apiKey map[string]any

// value reads dimension d of a returned key.
func (k apiKey) value(d string) *string {
	field := map[string]string{
		"STATUS": "status", "REFERRAL_SOURCE": "referralSource", "CUSTOMER_COUNTRY": "customerCountry",
		"INDUSTRY_FOCUS": "industryFocus", "PRODUCTS": "products", "SERVICE_TYPES": "serviceTypes", "SOLUTIONS": "solutions",
		"PARTICIPANT_ORGANIZATION": "participantOrganizationId", "PARTICIPANT_STATUS": "participantStatus",
		"CREATED_MONTH": "createdMonth", "CREATED_QUARTER": "createdQuarter", "CLOSING_MONTH": "closingMonth", "CLOSING_QUARTER": "closingQuarter",
	}[d]
	switch v := k[field].(type) {
	case string:
		return &v
	case map[string]any:
		id := v["id"].(string)
		return &id
	}
	return nil
}

func keyLabel(k []*string) string {
	var parts []string
	for _, v := range k {
		if v == nil {
			parts = append(parts, "null")
		} else {
			parts = append(parts, *v)
		}
	}
	return strings.Join(parts, " × ")
}

var allDimensions = []string{"STATUS", "REFERRAL_SOURCE", "CUSTOMER_COUNTRY", "INDUSTRY_FOCUS", "PRODUCTS", "SERVICE_TYPES", "SOLUTIONS",
	"PARTICIPANT_ORGANIZATION", "PARTICIPANT_STATUS", "CREATED_MONTH", "CREATED_QUARTER", "CLOSING_MONTH", "CLOSING_QUARTER"}

// TestStatsAgreeWithListing recounts every statistic of every dimension,
// and of combinations, from the plain `referrals` pages of the same caller,
// for an admin and for a partner (whose numbers must cover exactly what it
// can list, and countries only where it sees the address).
func TestStatsAgreeWithListing(t *testing.T) {
	e := newEnv(t, demoSize)
	// Statistics group by the stored participant status; the sweep makes it
	// what readers see for invitations past their expiration.
	if _, err := e.store.ExpireInvitations(storage.WithCaller(t.Context(), transport.DevCaller)); err != nil {
		t.Fatal(err)
	}
	h := securedHandler(t, e, transport.AuthOptions{}, transport.Options{})
	partnerOrg := e.referrals[0].Participation[0].OrganizationID
	callers := map[string]string{
		"Admin":   transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()}),
		"Partner": transporttest.HS(t, jwt.MapClaims{"sub": "p", "role": "partner", "org": partnerOrg, "exp": transporttest.InAnHour()}),
	}
	groupings := [][]string{{}, {"STATUS", "CUSTOMER_COUNTRY"}, {"PARTICIPANT_ORGANIZATION", "PARTICIPANT_STATUS"},
		{"PRODUCTS", "REFERRAL_SOURCE"}, {"CREATED_QUARTER", "STATUS"}, {"SOLUTIONS", "CLOSING_QUARTER"}}
	for _, d := range allDimensions {
		groupings = append(groupings, []string{d})
	}
	for who, bearer := range callers {
		t.Run(who, func(t *testing.T) {
			listed := listAll(t, h, bearer)
			if who == "Partner" && (len(listed) == 0 || len(listed) == len(e.referrals)) {
				t.Fatalf("the partner lists %d of %d referrals: the test cannot tell visibility apart", len(listed), len(e.referrals))
			}
			for _, dims := range groupings {
				t.Run(strings.Join(append([]string{"By"}, dims...), "_"), func(t *testing.T) {
					checkStats(t, h, bearer, dims, listed)
				})
			}
		})
	}
}

func checkStats(t *testing.T, h http.Handler, bearer string, dims []string, listed []listedReferral) {
	t.Helper()
	var total recount
	groups := map[string]*recount{}
	for i := range listed {
		r := &listed[i]
		keys := clientGroupKeys(dims, r)
		if slices.Contains(dims, "CUSTOMER_COUNTRY") && r.CustomerProfile.Address == nil {
			continue // the partner's country grouping covers what it sees
		}
		total.add(t, r)
		for _, k := range keys {
			label := keyLabel(k)
			if groups[label] == nil {
				groups[label] = &recount{}
			}
			groups[label].add(t, r)
		}
	}
	var got struct {
		ReferralStats struct {
			GroupCount int
			Groups     []struct {
				Key      apiKey
				Measures apiMeasures
			}
			Total apiMeasures
		}
	}
	query := fmt.Sprintf(`{ referralStats(groupBy: [%s], first: 200) { groupCount groups { key { %s } measures { %s } } total { %s } } }`,
		strings.Join(dims, ", "), statsKeyFields, measureFields, measureFields)
	postAs(t, h, bearer, query).mustData(t, &got)
	stats := got.ReferralStats
	total.check(t, "total", stats.Total)
	if stats.GroupCount != len(groups) || len(stats.Groups) != len(groups) {
		t.Fatalf("groupCount %d, groups returned %d; the listing makes %d", stats.GroupCount, len(stats.Groups), len(groups))
	}
	for i, g := range stats.Groups {
		k := make([]*string, len(dims))
		for j, d := range dims {
			k[j] = g.Key.value(d)
		}
		label := keyLabel(k)
		want := groups[label]
		if want == nil {
			t.Errorf("group %s is not in the listing", label)
			continue
		}
		want.check(t, label, g.Measures)
		if i > 0 && g.Measures.Count > stats.Groups[i-1].Measures.Count {
			t.Errorf("group %d (%s) has more referrals than the one before: not ordered by count", i, label)
		}
	}
}

// TestStatsOrderAndSize checks the order by a measure and by key, and the
// bound on the groups returned.
func TestStatsOrderAndSize(t *testing.T) {
	e := newEnv(t, demoSize)
	type group struct {
		Key      struct{ CustomerCountry *string }
		Measures struct {
			WinRate   *float64
			DealValue struct{ Sum string }
		}
	}
	var got struct {
		BySum, ByRate, ByKey struct {
			GroupCount int
			Groups     []group
		}
	}
	e.post(t, `{
	  bySum: referralStats(groupBy: [CUSTOMER_COUNTRY], orderBy: { field: DEAL_VALUE_SUM }, first: 3) { groupCount groups { key { customerCountry } measures { dealValue { sum } } } }
	  byRate: referralStats(groupBy: [CUSTOMER_COUNTRY], orderBy: { field: WIN_RATE, direction: ASC }) { groupCount groups { key { customerCountry } measures { winRate } } }
	  byKey: referralStats(groupBy: [CUSTOMER_COUNTRY], orderBy: { field: KEY, direction: ASC }) { groupCount groups { key { customerCountry } } }
	}`, nil).mustData(t, &got)
	if len(got.BySum.Groups) != 3 || got.BySum.GroupCount <= 3 {
		t.Fatalf("first: 3 returned %d of %d groups", len(got.BySum.Groups), got.BySum.GroupCount)
	}
	sums := make([]storage.Money, 3)
	for i, g := range got.BySum.Groups {
		sums[i], _ = storage.ParseMoney(g.Measures.DealValue.Sum)
	}
	if !slices.IsSortedFunc(sums, func(a, b storage.Money) int { return cmp.Compare(b, a) }) {
		t.Errorf("not by sum descending: %v", sums)
	}
	var rates []float64
	for _, g := range got.ByRate.Groups {
		if g.Measures.WinRate != nil {
			rates = append(rates, *g.Measures.WinRate)
		}
	}
	if !slices.IsSorted(rates) || len(rates) < 2 {
		t.Errorf("not by win rate ascending: %v", rates)
	}
	var countries []string
	for _, g := range got.ByKey.Groups {
		countries = append(countries, *g.Key.CustomerCountry)
	}
	if !slices.IsSorted(countries) || len(countries) != got.ByKey.GroupCount {
		t.Errorf("not by key: %v", countries)
	}
}

// TestStatsBadInput checks that mistakes are BAD_USER_INPUT naming the
// argument, and that a stats query over the cost limit is refused.
func TestStatsBadInput(t *testing.T) {
	e := newEnv(t, 20)
	for name, tc := range map[string]struct {
		query    string
		mentions []string
	}{
		"UnknownDimension": {`{ referralStats(groupBy: [COLOR]) { groupCount } }`, []string{"COLOR"}},
		"RepeatedDimension": {`{ referralStats(groupBy: [STATUS, STATUS]) { groupCount } }`,
			[]string{"groupBy[1]", "twice"}},
		"TooManyGroups":  {`{ referralStats(groupBy: [STATUS], first: 501) { groupCount } }`, []string{"first", "500"}},
		"NegativeFirst":  {`{ referralStats(groupBy: [STATUS], first: -1) { groupCount } }`, []string{"first"}},
		"BadFilter":      {`{ referralStats(groupBy: [STATUS], filter: { customerCountry: ["XX"] }) { groupCount } }`, []string{"filter.customerCountry"}},
		"LowerCaseOrder": {`query($o: StatsOrder) { referralStats(groupBy: [STATUS], orderBy: $o) { groupCount } }`, []string{"count"}},
	} {
		t.Run(name, func(t *testing.T) {
			var vars map[string]any
			if name == "LowerCaseOrder" {
				vars = map[string]any{"o": map[string]any{"field": "count"}}
			}
			e.post(t, tc.query, vars).wantBadInput(t, tc.mentions...)
		})
	}
	t.Run("CostGrowsWithGroups", func(t *testing.T) {
		huge := `{ referralStats(groupBy: [STATUS], first: 500) { groups { key { ` + statsKeyFields + ` } measures { ` + measureFields + ` } } total { ` + measureFields + ` } } }`
		code, msg := e.post(t, huge, nil).code(t)
		if code != string(storage.CodeComplexityLimit) {
			t.Fatalf("code %s (%s), want COMPLEXITY_LIMIT", code, msg)
		}
	})
}

// TestStatsCommandCount checks that a statistics query costs the same
// reads whatever the number of referrals: on the embedded store, one
// grouping by the planner, the extremes included.
func TestStatsCommandCount(t *testing.T) {
	for _, n := range []int{50, 300} {
		e := newEnv(t, n)
		for query, want := range map[string]int{
			`{ referralStats(groupBy: [STATUS, CUSTOMER_COUNTRY]) { groups { measures { count dealValue { sum } } } } }`:       1,
			`{ referralStats(groupBy: [STATUS, CUSTOMER_COUNTRY]) { groups { measures { dealValue { minimum maximum } } } } }`: 1,
		} {
			e.reads()
			var got struct{ ReferralStats struct{ Groups []any } }
			e.post(t, query, nil).mustData(t, &got)
			if cmds := e.reads(); len(cmds) != want {
				t.Errorf("%d referrals: %d commands %v, want %d", n, len(cmds), cmds, want)
			}
		}
	}
}

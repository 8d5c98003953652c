package graph

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"referrals/storage"
)

const pageQuery = `query Page($filter: ReferralFilter, $orderBy: ReferralOrder, $first: Int, $after: String, $last: Int, $before: String) {
  referrals(filter: $filter, orderBy: $orderBy, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id } }
  }
}`

type pageData struct {
	Referrals struct {
		TotalCount int
		PageInfo   struct {
			HasNextPage, HasPreviousPage bool
			StartCursor, EndCursor       *string
		}
		Edges []struct {
			Cursor string
			Node   struct{ ID string }
		}
	}
}

// allIDs pages forward through every referral matching filter in order,
// 100 at a time, and returns their ids in the order received.
func (e *env) allIDs(t *testing.T, filter, order map[string]any, pageSize int) (ids []string, total int) {
	t.Helper()
	vars := map[string]any{"filter": filter, "orderBy": order, "first": pageSize}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		var d pageData
		e.post(t, pageQuery, vars).mustData(t, &d)
		for _, edge := range d.Referrals.Edges {
			ids = append(ids, edge.Node.ID)
		}
		total = d.Referrals.TotalCount
		if d.Referrals.PageInfo.HasPreviousPage != (vars["after"] != nil) {
			t.Fatalf("page %d: hasPreviousPage = %v", pages, d.Referrals.PageInfo.HasPreviousPage)
		}
		if !d.Referrals.PageInfo.HasNextPage {
			return ids, total
		}
		vars["after"] = *d.Referrals.PageInfo.EndCursor
	}
}

func idsWhere(refs []storage.Referral, keep func(r storage.Referral) bool) []string {
	var ids []string
	for _, r := range refs {
		if keep(r) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

func hasParticipant(r storage.Referral, keep func(storage.Participation) bool) bool {
	return slices.ContainsFunc(r.Participation, keep)
}

func TestReferralFilters(t *testing.T) {
	e := newEnv(t, demoSize)
	refs := e.referrals
	// Bounds taken from the data so every case selects some referrals but not all.
	created := make([]time.Time, len(refs))
	for i, r := range refs {
		created[i] = r.CreatedDateTime
	}
	slices.SortFunc(created, time.Time.Compare)
	from, to := created[len(created)/4], created[len(created)*3/4]
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	org := refs[0].Participation[0].OrganizationID
	// A participant's status as it reads now: an invitation past its
	// expiration is EXPIRED before the sweep records it, and filters agree.
	now := e.store.Now()
	status := map[string]storage.ParticipantStatus{}
	for _, p := range e.parts {
		status[p.ID] = p.EffectiveStatus(now)
	}
	inTime := func(v *time.Time) bool { return v != nil && !v.Before(from) && v.Before(to) }

	tests := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"Status", map[string]any{"status": []string{"WON", "LOST"}},
			idsWhere(refs, func(r storage.Referral) bool {
				return r.Status == storage.ReferralWon || r.Status == storage.ReferralLost
			})},
		{"ReferralSource", map[string]any{"referralSource": []string{"P2P"}},
			idsWhere(refs, func(r storage.Referral) bool { return r.ReferralSource == storage.SourceP2P })},
		{"CreatedDateTime", map[string]any{"createdDateTime": map[string]any{"from": rfc(from), "to": rfc(to)}},
			idsWhere(refs, func(r storage.Referral) bool { return inTime(&r.CreatedDateTime) })},
		{"CreatedFromOnly", map[string]any{"createdDateTime": map[string]any{"from": rfc(to)}},
			idsWhere(refs, func(r storage.Referral) bool { return !r.CreatedDateTime.Before(to) })},
		{"UpdatedDateTime", map[string]any{"updatedDateTime": map[string]any{"from": rfc(from), "to": rfc(to)}},
			idsWhere(refs, func(r storage.Referral) bool { return inTime(&r.UpdatedDateTime) })},
		{"ClosingDate", map[string]any{"closingDate": map[string]any{"from": rfc(from), "to": rfc(to)}},
			idsWhere(refs, func(r storage.Referral) bool { return inTime(r.Details.ClosingDate) })},
		{"DealValue", map[string]any{"dealValue": map[string]any{"min": "50000.50", "max": 200000}},
			idsWhere(refs, func(r storage.Referral) bool {
				return *r.Details.DealValue >= 5_000_050 && *r.Details.DealValue <= 20_000_000
			})},
		{"ProductsAnyOf", map[string]any{"requirements": map[string]any{"products": map[string]any{"anyOf": []string{"Azure", "Teams"}}}},
			idsWhere(refs, func(r storage.Referral) bool {
				return slices.Contains(r.Details.Requirements.Products, "Azure") || slices.Contains(r.Details.Requirements.Products, "Teams")
			})},
		{"SolutionsAllOf", map[string]any{"requirements": map[string]any{"solutions": map[string]any{"allOf": refs[0].Details.Requirements.Solutions[:2]}}},
			idsWhere(refs, func(r storage.Referral) bool {
				return slices.Contains(r.Details.Requirements.Solutions, refs[0].Details.Requirements.Solutions[0]) &&
					slices.Contains(r.Details.Requirements.Solutions, refs[0].Details.Requirements.Solutions[1])
			})},
		{"IndustryAndServiceType", map[string]any{"requirements": map[string]any{
			"industryFocus": map[string]any{"anyOf": []string{"Healthcare", "Power & Utilities"}},
			"serviceTypes":  map[string]any{"anyOf": []string{"Licensing", "ManagedServices", "CustomSolution(ISV)"}},
		}}, idsWhere(refs, func(r storage.Referral) bool {
			q := r.Details.Requirements
			return (slices.Contains(q.IndustryFocus, "Healthcare") || slices.Contains(q.IndustryFocus, "Power & Utilities")) &&
				(slices.Contains(q.ServiceTypes, "Licensing") || slices.Contains(q.ServiceTypes, "ManagedServices") || slices.Contains(q.ServiceTypes, "CustomSolution(ISV)"))
		})},
		{"ParticipantOrganization", map[string]any{"participant": map[string]any{"organizationId": org}},
			idsWhere(refs, func(r storage.Referral) bool {
				return hasParticipant(r, func(p storage.Participation) bool { return p.OrganizationID == org })
			})},
		{"ParticipantStatus", map[string]any{"participant": map[string]any{"status": []string{"MISSED"}}},
			idsWhere(refs, func(r storage.Referral) bool {
				return hasParticipant(r, func(p storage.Participation) bool { return p.Status == storage.ParticipantMissed })
			})},
		{"ParticipantOrganizationWithStatus", map[string]any{"participant": map[string]any{"organizationId": org, "status": []string{"INVITED", "REJECTED"}}},
			idsWhere(refs, func(r storage.Referral) bool {
				return hasParticipant(r, func(p storage.Participation) bool {
					return p.OrganizationID == org && (status[p.ParticipantID] == storage.ParticipantInvited || status[p.ParticipantID] == storage.ParticipantRejected)
				})
			})},
		{"CustomerNameIgnoresCase", map[string]any{"customerName": "harbor"},
			idsWhere(refs, func(r storage.Referral) bool {
				return strings.Contains(strings.ToLower(r.CustomerProfile.Name), "harbor")
			})},
		{"CustomerNameIsLiteral", map[string]any{"customerName": "s.a."},
			idsWhere(refs, func(r storage.Referral) bool { return strings.Contains(r.CustomerProfile.Name, "S.A.") })},
		{"CustomerNameRegexCharacters", map[string]any{"customerName": "Inc.("}, nil},
		{"CustomerCountry", map[string]any{"customerCountry": []string{"de", "GB"}},
			idsWhere(refs, func(r storage.Referral) bool {
				c := r.CustomerProfile.Address.Country
				return c == "DE" || c == "GB"
			})},
		{"Combined", map[string]any{"status": []string{"ACTIVE", "PENDING"}, "customerCountry": []string{"US"}, "dealValue": map[string]any{"min": "100000"}},
			idsWhere(refs, func(r storage.Referral) bool {
				return (r.Status == storage.ReferralActive || r.Status == storage.ReferralPending) &&
					r.CustomerProfile.Address.Country == "US" && *r.Details.DealValue >= 10_000_000
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "CustomerNameRegexCharacters" && (len(tt.want) == 0 || len(tt.want) == len(refs)) {
				t.Fatalf("the case selects %d of %d referrals: it cannot tell a working filter from a broken one", len(tt.want), len(refs))
			}
			got, total := e.allIDs(t, tt.filter, nil, 100)
			if total != len(tt.want) {
				t.Errorf("totalCount = %d, want %d", total, len(tt.want))
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %d ids, want %d\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}
}

func TestReferralOrders(t *testing.T) {
	e := newEnv(t, demoSize)
	type key struct {
		field string
		value func(storage.Referral) any
	}
	keys := []key{
		{"CREATED_DATE_TIME", func(r storage.Referral) any { return r.CreatedDateTime.UnixMilli() }},
		{"UPDATED_DATE_TIME", func(r storage.Referral) any { return r.UpdatedDateTime.UnixMilli() }},
		{"CLOSING_DATE", func(r storage.Referral) any { return r.Details.ClosingDate.UnixMilli() }},
		{"DEAL_VALUE", func(r storage.Referral) any { return int64(*r.Details.DealValue) }},
		{"CUSTOMER_NAME", func(r storage.Referral) any { return r.CustomerProfile.Name }},
	}
	for _, k := range keys {
		for _, dir := range []string{"ASC", "DESC"} {
			t.Run(k.field+"_"+dir, func(t *testing.T) {
				want := sortedIDs(e.referrals, k.value, dir == "DESC")
				got, _ := e.allIDs(t, nil, map[string]any{"field": k.field, "direction": dir}, 30)
				if !slices.Equal(got, want) {
					t.Errorf("order differs\ngot  %v\nwant %v", got, want)
				}
			})
		}
	}
	t.Run("DefaultIsNewestFirst", func(t *testing.T) {
		want := sortedIDs(e.referrals, keys[0].value, true)
		got, _ := e.allIDs(t, nil, nil, 100)
		if !slices.Equal(got, want) {
			t.Errorf("order differs\ngot  %v\nwant %v", got, want)
		}
	})
}

// sortedIDs orders referrals by value then id, as the API promises.
func sortedIDs(refs []storage.Referral, value func(storage.Referral) any, desc bool) []string {
	sorted := slices.Clone(refs)
	slices.SortFunc(sorted, func(a, b storage.Referral) int {
		c := compareAny(value(a), value(b))
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if desc {
			return -c
		}
		return c
	})
	ids := make([]string, len(sorted))
	for i, r := range sorted {
		ids[i] = r.ID
	}
	return ids
}

func compareAny(a, b any) int {
	switch a := a.(type) {
	case int64:
		return cmp.Compare(a, b.(int64))
	case string:
		return strings.Compare(a, b.(string))
	}
	panic("unsupported sort value")
}

func TestPagingBackward(t *testing.T) {
	e := newEnv(t, demoSize)
	order := map[string]any{"field": "DEAL_VALUE", "direction": "ASC"}
	forward, _ := e.allIDs(t, nil, order, 100)

	// From the end of the list back to its start, 17 at a time.
	var backward []string
	vars := map[string]any{"orderBy": order, "last": 17}
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		var d pageData
		e.post(t, pageQuery, vars).mustData(t, &d)
		var ids []string
		for _, edge := range d.Referrals.Edges {
			ids = append(ids, edge.Node.ID)
		}
		backward = append(ids, backward...)
		if d.Referrals.PageInfo.HasNextPage != (vars["before"] != nil) {
			t.Fatalf("page %d: hasNextPage = %v", pages, d.Referrals.PageInfo.HasNextPage)
		}
		if !d.Referrals.PageInfo.HasPreviousPage {
			break
		}
		vars["before"] = *d.Referrals.PageInfo.StartCursor
	}
	if len(forward) != len(e.referrals) {
		t.Fatalf("forward paging saw %d referrals, want %d", len(forward), len(e.referrals))
	}
	if !slices.Equal(backward, forward) {
		t.Errorf("backward paging differs from forward paging\nback %v\nfwd  %v", backward, forward)
	}
}

func TestPagingEdgeCases(t *testing.T) {
	e := newEnv(t, 30)
	t.Run("FirstZero", func(t *testing.T) {
		var d pageData
		e.post(t, pageQuery, map[string]any{"first": 0}).mustData(t, &d)
		if len(d.Referrals.Edges) != 0 || !d.Referrals.PageInfo.HasNextPage || d.Referrals.TotalCount != 30 {
			t.Errorf("got %+v, want no edges, hasNextPage and totalCount 30", d.Referrals)
		}
		if d.Referrals.PageInfo.StartCursor != nil || d.Referrals.PageInfo.EndCursor != nil {
			t.Errorf("an empty page has cursors: %+v", d.Referrals.PageInfo)
		}
	})
	t.Run("DefaultSize", func(t *testing.T) {
		var d pageData
		e.post(t, pageQuery, nil).mustData(t, &d)
		if len(d.Referrals.Edges) != storage.DefaultPageSize {
			t.Errorf("got %d edges, want %d", len(d.Referrals.Edges), storage.DefaultPageSize)
		}
	})
	t.Run("EdgeCursorContinues", func(t *testing.T) {
		var first, next pageData
		e.post(t, pageQuery, map[string]any{"first": 5}).mustData(t, &first)
		e.post(t, pageQuery, map[string]any{"first": 5, "after": first.Referrals.Edges[2].Cursor}).mustData(t, &next)
		if got, want := next.Referrals.Edges[0].Node.ID, first.Referrals.Edges[3].Node.ID; got != want {
			t.Errorf("after the third edge's cursor came %s, want %s", got, want)
		}
	})
}

// TestTotalCountReusesThePageQuery: a page's totalCount counts the query
// that chose the page, built once per request: a participant status filter
// reads the invitations past their expiration once, not again for the
// count.
func TestTotalCountReusesThePageQuery(t *testing.T) {
	e := newEnv(t, 20)
	e.reads()
	var got struct {
		Referrals struct {
			TotalCount int
			Nodes      []struct{ ID string }
		}
	}
	e.post(t, `{ referrals(filter: {participant: {status: [EXPIRED, INVITED]}}, first: 5) { totalCount nodes { id } } }`, nil).mustData(t, &got)
	reads := e.reads()
	// The invitations past their expiration, the page, its count.
	if want := []string{"planned", "planned", "planned"}; !slices.Equal(reads, want) {
		t.Errorf("a filtered page and its count read the store %v, want %v", reads, want)
	}
	if got.Referrals.TotalCount < len(got.Referrals.Nodes) || len(got.Referrals.Nodes) == 0 {
		t.Errorf("totalCount %d of a page of %d", got.Referrals.TotalCount, len(got.Referrals.Nodes))
	}
}

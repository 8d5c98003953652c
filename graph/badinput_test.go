package graph

import (
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	e := newEnv(t, 5)
	var first pageData
	e.post(t, pageQuery, map[string]any{"first": 1}).mustData(t, &first)
	cursor := first.Referrals.Edges[0].Cursor

	tests := []struct {
		name     string
		vars     map[string]any
		mentions []string
	}{
		{"ErrBadCursor", map[string]any{"after": "not-a-cursor"}, []string{"after", "cursor"}},
		{"ErrBadBeforeCursor", map[string]any{"last": 2, "before": "eyJ9"}, []string{"before", "cursor"}},
		{"ErrCursorOfOtherOrder", map[string]any{"after": cursor, "orderBy": map[string]any{"field": "DEAL_VALUE"}}, []string{"after", "order"}},
		{"ErrFirstNegative", map[string]any{"first": -1}, []string{"first", "between 0 and 100"}},
		{"ErrFirstTooLarge", map[string]any{"first": 101}, []string{"first", "between 0 and 100"}},
		{"ErrLastTooLarge", map[string]any{"last": 500}, []string{"last", "between 0 and 100"}},
		{"ErrFirstWithLast", map[string]any{"first": 5, "last": 5}, []string{"first", "last"}},
		{"ErrAfterWithLast", map[string]any{"after": cursor, "last": 5}, []string{"first/after", "last/before"}},
		{"ErrUnknownEnum", map[string]any{"filter": map[string]any{"status": []string{"OPEN"}}}, []string{"filter", "status", "OPEN"}},
		{"ErrUnknownOrderField", map[string]any{"orderBy": map[string]any{"field": "ID"}}, []string{"orderBy", "field"}},
		{"ErrMalformedDate", map[string]any{"filter": map[string]any{"createdDateTime": map[string]any{"from": "yesterday"}}}, []string{"filter.createdDateTime.from", "RFC 3339"}},
		{"ErrDateWithoutZone", map[string]any{"filter": map[string]any{"closingDate": map[string]any{"to": "2026-01-01T00:00:00"}}}, []string{"filter.closingDate.to", "RFC 3339"}},
		{"ErrMalformedDecimal", map[string]any{"filter": map[string]any{"dealValue": map[string]any{"min": "12.3.4"}}}, []string{"filter.dealValue.min", "decimal"}},
		{"ErrTooManyDecimals", map[string]any{"filter": map[string]any{"dealValue": map[string]any{"max": "10.005"}}}, []string{"filter.dealValue.max", "2 decimal places"}},
		{"ErrDecimalExponent", map[string]any{"filter": map[string]any{"dealValue": map[string]any{"max": 1e21}}}, []string{"filter.dealValue.max"}},
		{"ErrDecimalBoolean", map[string]any{"filter": map[string]any{"dealValue": map[string]any{"max": true}}}, []string{"filter.dealValue.max"}},
		{"ErrEmptyDateRange", map[string]any{"filter": map[string]any{"updatedDateTime": map[string]any{}}}, []string{"filter.updatedDateTime", "from, to or both"}},
		{"ErrInvertedDateRange", map[string]any{"filter": map[string]any{"createdDateTime": map[string]any{"from": "2026-05-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}}}, []string{"filter.createdDateTime", "before"}},
		{"ErrZeroWidthDateRange", map[string]any{"filter": map[string]any{"createdDateTime": map[string]any{"from": "2026-05-01T00:00:00Z", "to": "2026-05-01T02:00:00+02:00"}}}, []string{"filter.createdDateTime", "before"}},
		{"ErrEmptyDecimalRange", map[string]any{"filter": map[string]any{"dealValue": map[string]any{}}}, []string{"filter.dealValue", "min, max or both"}},
		{"ErrInvertedDecimalRange", map[string]any{"filter": map[string]any{"dealValue": map[string]any{"min": "10.00", "max": "9.99"}}}, []string{"filter.dealValue", "10.00", "9.99"}},
		{"ErrEmptyTagMatch", map[string]any{"filter": map[string]any{"requirements": map[string]any{"products": map[string]any{}}}}, []string{"filter.requirements.products"}},
		{"ErrEmptyParticipantMatch", map[string]any{"filter": map[string]any{"participant": map[string]any{}}}, []string{"filter.participant"}},
		{"ErrCountryCode", map[string]any{"filter": map[string]any{"customerCountry": []string{"USA"}}}, []string{"filter.customerCountry", "USA"}},
		{"ErrFirstNotInt", map[string]any{"first": "ten"}, []string{"first"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.post(t, pageQuery, tt.vars)
			resp.wantBadInput(t, tt.mentions...)
			t.Logf("%d %s %v", resp.Status, resp.Errors[0].Message, resp.Errors[0].Path)
		})
	}

	literal := []struct {
		name, query string
		mentions    []string
	}{
		{"ErrUnknownEnumLiteral", `{ referrals(filter: {status: [OPEN]}) { totalCount } }`, []string{"OPEN", "ReferralStatus"}},
		{"ErrMalformedDateLiteral", `{ referrals(filter: {createdDateTime: {from: "2026-13-01T00:00:00Z"}}) { totalCount } }`, []string{"filter.createdDateTime.from", "RFC 3339"}},
		{"ErrMalformedDecimalLiteral", `{ referrals(filter: {dealValue: {min: "ten"}}) { totalCount } }`, []string{"filter.dealValue.min", "decimal"}},
		{"ErrFirstLiteral", `{ referrals(first: 1000) { totalCount } }`, []string{"first"}},
		{"ErrUnknownField", `{ referrals { nope } }`, []string{"nope"}},
		{"ErrSyntax", `{ referrals(first: ) }`, []string{"Unexpected )"}},
	}
	for _, tt := range literal {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.post(t, tt.query, nil)
			resp.wantBadInput(t, tt.mentions...)
			t.Logf("%d %s %v", resp.Status, resp.Errors[0].Message, resp.Errors[0].Path)
		})
	}

	t.Run("ErrNeverChangesData", func(t *testing.T) {
		var d pageData
		e.post(t, pageQuery, nil).mustData(t, &d)
		if d.Referrals.TotalCount != 5 || len(d.Referrals.Edges) != 5 {
			t.Errorf("after bad requests: %d referrals, want 5", d.Referrals.TotalCount)
		}
		if d.Referrals.PageInfo.HasNextPage {
			t.Error("hasNextPage on the only page")
		}
	})
}

// TestFilterInputsAreBounded refuses filters whose text or lists are
// longer than any real question needs, before the store compares every
// document with them (a 1 MB customerName took 21 s of CPU).
func TestFilterInputsAreBounded(t *testing.T) {
	e := newEnv(t, 3)
	many := func(v string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	for name, tt := range map[string]struct {
		query    string
		vars     map[string]any
		mentions string
	}{
		"ErrLongCustomerName":  {`query($f: ReferralFilter) { referrals(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"customerName": strings.Repeat("a", 1000_000)}}, "filter.customerName"},
		"ErrManyCountries":     {`query($f: ReferralFilter) { referrals(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"customerCountry": many("GB", 100_000)}}, "filter.customerCountry"},
		"ErrManyTags":          {`query($f: ReferralFilter) { referrals(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"requirements": map[string]any{"products": map[string]any{"anyOf": many("Azure", 7000)}}}}, "filter.requirements.products.anyOf"},
		"ErrManyStatuses":      {`query($f: ReferralFilter) { referrals(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"status": many("PENDING", 1000)}}, "filter.status"},
		"ErrLongOrganization":  {`query($f: ParticipantFilter) { participants(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"organizationId": strings.Repeat("o", 10_000)}}, "filter.organizationId"},
		"ErrManyParticipantSt": {`query($f: ParticipantFilter) { participants(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"status": many("INVITED", 1000)}}, "filter.status"},
	} {
		t.Run(name, func(t *testing.T) {
			e.post(t, tt.query, tt.vars).wantBadInput(t, tt.mentions)
		})
	}
	// Errors that quote what they refuse quote at most 1,000 bytes of it:
	// an outside test got 900 KB back in one message.
	t.Run("ErrMessagesAreCut", func(t *testing.T) {
		huge := strings.Repeat("é", 450_000)
		for _, q := range []struct {
			query string
			vars  map[string]any
		}{
			{`mutation($id: ID!) { changeReferralStatus(id: $id, expectedVersion: 1, status: WON) { id } }`, map[string]any{"id": huge}},
			{`query($f: ReferralFilter) { referrals(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"customerCountry": []string{huge}}}},
			// an unknown key of a variable, named in the error's path too
			{`query($f: ReferralFilter) { referrals(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{huge: 1}}},
		} {
			resp := e.post(t, q.query, q.vars)
			if len(resp.raw) > 4_000 || !strings.Contains(string(resp.raw), "(message cut)") {
				t.Errorf("%.60s: a %d-byte answer %.200s…, want its message cut", q.query, len(resp.raw), resp.raw)
			}
		}
	})
	t.Run("LongestRealName", func(t *testing.T) {
		var d struct{ Referrals struct{ TotalCount int } }
		e.post(t, `query($n: String) { referrals(filter: {customerName: $n}) { totalCount } }`, map[string]any{"n": strings.Repeat("é", 200)}).mustData(t, &d)
	})
}

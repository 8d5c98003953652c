package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/storage"
)

// TestEnumValuesAreExact sends enum values that are not exact names (lower
// case, as variables, nested in input objects, in lists, as defaults and
// literals): each is BAD_USER_INPUT naming where it was, and no mutation
// writes anything.
func TestEnumValuesAreExact(t *testing.T) {
	e := newEnv(t, 5)
	r := e.create(t)
	var inv invited
	e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": map[string]any{"organizationId": "org-a", "organizationName": "A"}}).mustData(t, &inv)
	participant := inv.InviteParticipant.ID

	input := validInput()
	input["referralSource"] = "p2p"
	mutations := []struct {
		name, query string
		vars        map[string]any
		mentions    []string
	}{
		{"ErrSourceVariable", `mutation($s: ReferralSource!) { createReferral(input: {referralSource: $s, customerProfile: {name: "X", address: {addressLine1: "a", city: "b", country: "NO"}}}) { id } }`,
			map[string]any{"s": "p2p"}, []string{"$s", "p2p", "ReferralSource"}},
		{"ErrSourceNested", createMutation, map[string]any{"input": input}, []string{"$input.referralSource", "p2p"}},
		{"ErrResponse", respondMutation, map[string]any{"id": participant, "r": "reject"}, []string{"$r", "reject", "InvitationResponse"}},
		{"ErrResponseMixedCase", respondMutation, map[string]any{"id": participant, "r": "Accept"}, []string{"$r", "Accept"}},
		{"ErrStatus", statusMutation, map[string]any{"id": r.ID, "v": 2, "s": "active"}, []string{"$s", "active", "ReferralStatus"}},
	}
	for _, tt := range mutations {
		t.Run(tt.name, func(t *testing.T) {
			wantUnchanged(t, e, func() {
				e.post(t, tt.query, tt.vars).wantBadInput(t, tt.mentions...)
			})
		})
	}

	queries := []struct {
		name, query string
		vars        map[string]any
		mentions    []string
	}{
		{"ErrStatusList", pageQuery, map[string]any{"filter": map[string]any{"status": []string{"PENDING", "pending"}}}, []string{"$filter.status[1]", "pending"}},
		{"ErrStatusCoercedToList", pageQuery, map[string]any{"filter": map[string]any{"status": "pending"}}, []string{"$filter.status", "pending"}},
		{"ErrDirection", pageQuery, map[string]any{"orderBy": map[string]any{"field": "DEAL_VALUE", "direction": "desc"}}, []string{"$orderBy.direction", "desc", "OrderDirection"}},
		{"ErrOrderField", pageQuery, map[string]any{"orderBy": map[string]any{"field": "deal_value"}}, []string{"$orderBy.field", "deal_value"}},
		{"ErrParticipantStatus", pageQuery, map[string]any{"filter": map[string]any{"participant": map[string]any{"status": []string{"accepted"}}}}, []string{"$filter.participant.status[0]", "accepted"}},
		{"ErrSourceFilter", pageQuery, map[string]any{"filter": map[string]any{"referralSource": []string{"Web_Direct"}}}, []string{"$filter.referralSource[0]", "Web_Direct"}},
		{"ErrDirectionVariable", `query($d: OrderDirection) { referrals(orderBy: {field: DEAL_VALUE, direction: $d}) { totalCount } }`, map[string]any{"d": "desc"}, []string{"$d", "desc"}},
		{"ErrCategory", `query($c: TagCategory) { tags(category: $c) { id } }`, map[string]any{"c": "products"}, []string{"$c", "products", "TagCategory"}},
		{"ErrOwnParticipantStatus", `query($f: ParticipantFilter) { participants(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"status": []string{"invited"}}}, []string{"$f.status[0]", "invited"}},
		{"ErrNumber", pageQuery, map[string]any{"filter": map[string]any{"status": []any{1}}}, []string{"$filter.status[0]"}},
		{"ErrLiteral", `{ referrals(filter: {status: [pending]}) { totalCount } }`, nil, []string{"pending"}},
		{"ErrStringLiteral", `{ referrals(orderBy: {field: DEAL_VALUE, direction: "DESC"}) { totalCount } }`, nil, []string{"DESC"}},
		{"ErrDefault", `query($s: [ReferralStatus!] = [pending]) { referrals(filter: {status: $s}) { totalCount } }`, nil, []string{"pending"}},
	}
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			e.post(t, tt.query, tt.vars).wantBadInput(t, tt.mentions...)
		})
	}

	t.Run("ErrSubscriptionFilter", func(t *testing.T) {
		srv := httptest.NewServer(e.handler)
		defer srv.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		c := dialWS(t, ctx, srv.URL, false)
		c.subscribe(ctx, "1", map[string]any{"filter": map[string]any{"status": []string{"won"}}})
		m := c.read(ctx)
		b, _ := json.Marshal(m["payload"])
		var payload struct {
			Data   json.RawMessage
			Errors []gqlError
		}
		_ = json.Unmarshal(b, &payload)
		if len(payload.Errors) != 1 || payload.Errors[0].Extensions["code"] != "BAD_USER_INPUT" ||
			!strings.HasPrefix(payload.Errors[0].Message, "$filter.status[0]: won") || string(payload.Data) != "null" {
			t.Errorf("got %v, want no data and BAD_USER_INPUT naming $filter.status[0]", m)
		}
	})
	t.Run("ExactNamesWork", func(t *testing.T) {
		var d struct {
			Referrals struct {
				Nodes []struct{ Details struct{ DealValue string } }
			}
		}
		e.post(t, `query($d: OrderDirection) { referrals(orderBy: {field: DEAL_VALUE, direction: $d}) { nodes { details { dealValue } } } }`,
			map[string]any{"d": "DESC"}).mustData(t, &d)
		nodes := d.Referrals.Nodes
		for i := 1; i < len(nodes); i++ {
			if money(t, nodes[i-1].Details.DealValue) < money(t, nodes[i].Details.DealValue) {
				t.Fatalf("DESC is not descending: %+v", nodes)
			}
		}
	})
	t.Run("SingleValueForAList", func(t *testing.T) {
		// Input coercion: a single value given for a list is a list of one.
		var d struct{ Referrals struct{ TotalCount int } }
		e.post(t, `query($s: [ReferralStatus!]) { referrals(filter: {status: $s}) { totalCount } }`, map[string]any{"s": "PENDING"}).mustData(t, &d)
		if d.Referrals.TotalCount == 0 {
			t.Error("status PENDING given as a single value matched nothing")
		}
	})
	t.Run("InvitationStaysOpen", func(t *testing.T) {
		var d struct{ Participant struct{ Status string } }
		e.post(t, `query($id: ID!) { participant(id: $id) { status } }`, map[string]any{"id": participant}).mustData(t, &d)
		if d.Participant.Status != "INVITED" {
			t.Errorf("after refused answers the invitation is %s, want INVITED", d.Participant.Status)
		}
	})
}

func money(t *testing.T, s string) storage.Money {
	t.Helper()
	m, err := storage.ParseMoney(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDecimalLiteralsAreExact writes and filters money with literals in the
// query text, where GraphQL parsers read numbers as binary floats, and
// checks that every digit arrives, also when the document comes from the
// query cache and when many requests share it at once.
func TestDecimalLiteralsAreExact(t *testing.T) {
	e := newEnv(t, 0)
	const create = `mutation { createReferral(input: {referralSource: P2P,
	  customerProfile: {name: "Big Deal Ltd", address: {addressLine1: "1 Road", city: "Oslo", country: "NO"}},
	  details: {dealValue: 1234567890123456.78}}) { id details { dealValue } } }`
	var ids []string
	for range 2 { // the second run takes the document from the query cache
		var d struct {
			CreateReferral struct {
				ID      string
				Details struct{ DealValue string }
			}
		}
		e.post(t, create, nil).mustData(t, &d)
		if got := d.CreateReferral.Details.DealValue; got != "1234567890123456.78" {
			t.Errorf("created with %s, want 1234567890123456.78", got)
		}
		ids = append(ids, d.CreateReferral.ID)
	}
	var read struct {
		Referral struct{ Details struct{ DealValue string } }
	}
	e.post(t, `query($id: ID!) { referral(id: $id) { details { dealValue } } }`, map[string]any{"id": ids[0]}).mustData(t, &read)
	if got := read.Referral.Details.DealValue; got != "1234567890123456.78" {
		t.Errorf("stored %s, want 1234567890123456.78", got)
	}

	counts := map[string]struct {
		query string
		want  int
	}{
		"FilterLiteral":      {`{ referrals(filter: {dealValue: {min: 1234567890123456.78}}) { totalCount } }`, 2},
		"FilterLiteralAbove": {`{ referrals(filter: {dealValue: {min: 1234567890123456.79}}) { totalCount } }`, 0},
		"IntLiteral":         {`{ referrals(filter: {dealValue: {max: 1234567890123456}}) { totalCount } }`, 0},
		"VariableDefault":    {`query($min: Decimal = 1234567890123456.79) { referrals(filter: {dealValue: {min: $min}}) { totalCount } }`, 0},
		"ObjectDefault":      {`query($r: DecimalRange = {max: 1234567890123456.77}) { referrals(filter: {dealValue: $r}) { totalCount } }`, 0},
		"ViaFragment":        {`{ ...F } fragment F on Query { referrals(filter: {dealValue: {max: 1234567890123456.78}}) { totalCount } }`, 2},
	}
	for name, tt := range counts {
		t.Run(name, func(t *testing.T) {
			count := func() (int, error) {
				body, _ := json.Marshal(map[string]any{"query": tt.query})
				req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.handler.ServeHTTP(rec, req)
				var resp struct {
					Data   struct{ Referrals struct{ TotalCount int } }
					Errors []gqlError
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || len(resp.Errors) > 0 {
					return 0, fmt.Errorf("%v: %s", err, rec.Body)
				}
				return resp.Data.Referrals.TotalCount, nil
			}
			check := func(request int) {
				if n, err := count(); err != nil || n != tt.want {
					t.Errorf("request %d: count %d (%v), want %d", request, n, err, tt.want)
				}
			}
			// The first request parses the document and caches it; the
			// others share the cached one, at once.
			check(0)
			var wg sync.WaitGroup
			for i := 1; i <= 4; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); check(i) }()
			}
			wg.Wait()
		})
	}

	bad := map[string]struct {
		query    string
		mentions []string
	}{
		"ErrThreeDecimals": {`{ referrals(filter: {dealValue: {min: 0.001}}) { totalCount } }`, []string{"filter.dealValue.min", "0.001", "2 decimal places"}},
		"ErrExponent":      {`{ referrals(filter: {dealValue: {min: 1e3}}) { totalCount } }`, []string{"filter.dealValue.min", "1e3"}},
		"ErrHugeInteger":   {`{ referrals(filter: {dealValue: {min: 123456789012345678901234567890}}) { totalCount } }`, []string{"filter.dealValue.min", "too large"}},
	}
	for name, tt := range bad {
		t.Run(name, func(t *testing.T) {
			e.post(t, tt.query, nil).wantBadInput(t, tt.mentions...)
		})
	}
}

// TestCountriesAndDatesTheStoreKeeps refuses country codes that are not
// assigned in ISO 3166-1 and dates outside the range the store and the API
// keep, in every stored input, without writing anything; the dates it
// accepts read back as they were answered.
func TestCountriesAndDatesTheStoreKeeps(t *testing.T) {
	e := newEnv(t, 0)
	r := e.create(t)
	withCountry := func(c string) map[string]any {
		in := validInput()
		in["customerProfile"].(map[string]any)["address"].(map[string]any)["country"] = c
		return in
	}
	withClosing := func(d string) map[string]any {
		in := validInput()
		in["details"].(map[string]any)["closingDate"] = d
		return in
	}
	address := func(c string) map[string]any {
		return map[string]any{"customerProfile": map[string]any{"address": map[string]any{"addressLine1": "x", "city": "y", "country": c}}}
	}
	closing := func(d string) map[string]any { return map[string]any{"details": map[string]any{"closingDate": d}} }
	invite := func(d string) map[string]any {
		return map[string]any{"ref": r.ID, "input": map[string]any{"organizationId": "org-" + strings.NewReplacer(":", "-", "+", "-").Replace(d), "organizationName": "O", "expirationDateTime": d}}
	}
	bad := []struct {
		name, query string
		vars        map[string]any
		mentions    []string
	}{
		{"ErrCountryUK", createMutation, map[string]any{"input": withCountry("UK")}, []string{"input.customerProfile.address.country", "UK"}},
		{"ErrCountryEU", createMutation, map[string]any{"input": withCountry("eu")}, []string{"input.customerProfile.address.country", "EU"}},
		{"ErrCountryReserved", createMutation, map[string]any{"input": withCountry("AN")}, []string{"input.customerProfile.address.country", "AN"}},
		{"ErrPatchCountryUK", updateMutation, map[string]any{"id": r.ID, "v": 1, "patch": address("UK")}, []string{"patch.customerProfile.address.country", "UK"}},
		{"ErrFilterCountryUK", pageQuery, map[string]any{"filter": map[string]any{"customerCountry": []string{"GB", "UK"}}}, []string{"filter.customerCountry", "UK"}},
		{"ErrZeroDate", createMutation, map[string]any{"input": withClosing("0001-01-01T00:00:00Z")}, []string{"input.details.closingDate", "0001-01-01T00:00:00Z"}},
		{"ErrEarlyDate", createMutation, map[string]any{"input": withClosing("1899-12-31T23:59:59.999Z")}, []string{"input.details.closingDate", "1900-01-01"}},
		{"ErrYear10000", createMutation, map[string]any{"input": withClosing("9999-12-31T23:30:00-01:00")}, []string{"input.details.closingDate", "9999-12-31"}},
		{"ErrPatchZeroDate", updateMutation, map[string]any{"id": r.ID, "v": 1, "patch": closing("0001-01-01T00:00:00Z")}, []string{"patch.details.closingDate"}},
		{"ErrPatchYear0", updateMutation, map[string]any{"id": r.ID, "v": 1, "patch": closing("0000-06-01T00:00:00Z")}, []string{"patch.details.closingDate"}},
		{"ErrExpirationYear10000", inviteMutation, invite("9999-12-31T23:59:59-05:00"), []string{"input.expirationDateTime", "9999-12-31"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			wantUnchanged(t, e, func() {
				e.post(t, tt.query, tt.vars).wantBadInput(t, tt.mentions...)
			})
		})
	}

	roundTrip := []struct{ name, in, want string }{
		{"Earliest", "1900-01-01T00:00:00Z", "1900-01-01T00:00:00Z"},
		{"Latest", "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"},
		{"Offset", "2027-03-31T00:00:00+02:00", "2027-03-30T22:00:00Z"},
		{"Microseconds", "2027-03-31T00:00:00.123456Z", "2027-03-31T00:00:00.123Z"},
	}
	for _, tt := range roundTrip {
		t.Run(tt.name, func(t *testing.T) {
			var d struct {
				CreateReferral struct {
					ID      string
					Details struct{ ClosingDate string }
				}
			}
			e.post(t, createMutation, map[string]any{"input": withClosing(tt.in)}).mustData(t, &d)
			var read struct {
				Referral struct{ Details struct{ ClosingDate *string } }
			}
			e.post(t, `query($id: ID!) { referral(id: $id) { details { closingDate } } }`, map[string]any{"id": d.CreateReferral.ID}).mustData(t, &read)
			got := read.Referral.Details.ClosingDate
			if d.CreateReferral.Details.ClosingDate != tt.want || got == nil || *got != tt.want {
				t.Errorf("answered %s, read back %v, want %s both times", d.CreateReferral.Details.ClosingDate, deref(got), tt.want)
			}
		})
	}
	t.Run("GBIsFound", func(t *testing.T) {
		var d pageData
		e.post(t, pageQuery, map[string]any{"filter": map[string]any{"customerCountry": []string{"gb"}}}).mustData(t, &d)
		if d.Referrals.TotalCount == 0 {
			t.Error("customerCountry GB finds nothing")
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// TestFiltersRespectRedaction has a partner filter by customer country:
// a referral whose address is hidden from it (its participation is not
// ACCEPTED) never matches, so no filter recovers a hidden country; the
// referrals it accepted match as before.
func TestFiltersRespectRedaction(t *testing.T) {
	e := newEnv(t, demoSize)
	h := securedHandler(t, e, transport.AuthOptions{}, transport.Options{})
	org := e.referrals[0].Participation[0].OrganizationID
	bearer := transporttest.HS(t, jwt.MapClaims{"sub": "p", "role": "partner", "org": org, "exp": transporttest.InAnHour()})
	countries := map[string]bool{}
	accepted := map[string]string{} // referral id → country, where the partner sees the address
	hidden := 0
	for _, r := range e.referrals {
		countries[r.CustomerProfile.Address.Country] = true
		for _, p := range r.Participation {
			switch {
			case p.OrganizationID != org:
			case p.Status == storage.ParticipantAccepted:
				accepted[r.ID] = r.CustomerProfile.Address.Country
			default:
				hidden++
			}
		}
	}
	if len(accepted) == 0 || hidden == 0 {
		t.Fatalf("the seed lacks a case: %d accepted, %d hidden", len(accepted), hidden)
	}
	for country := range countries {
		t.Run(country, func(t *testing.T) {
			var d struct {
				Referrals struct {
					TotalCount int
					Nodes      []struct {
						ID              string
						CustomerProfile struct{ Address *struct{ Country string } }
					}
				}
			}
			q := fmt.Sprintf(`{ referrals(first: 100, filter: {customerCountry: [%q]}) { totalCount nodes { id customerProfile { address { country } } } } }`, country)
			postAs(t, h, bearer, q).mustData(t, &d)
			want := 0
			for _, c := range accepted {
				if c == country {
					want++
				}
			}
			if d.Referrals.TotalCount != want || len(d.Referrals.Nodes) != want {
				t.Errorf("the filter matches %d (%d counted), want the %d referrals where the address is visible", len(d.Referrals.Nodes), d.Referrals.TotalCount, want)
			}
			for _, n := range d.Referrals.Nodes {
				if a := n.CustomerProfile.Address; a == nil || a.Country != country || accepted[n.ID] != country {
					t.Errorf("referral %s matched with address %+v", n.ID, a)
				}
			}
		})
	}
	t.Run("AdminFiltersEverything", func(t *testing.T) {
		var d pageData
		e.post(t, pageQuery, map[string]any{"filter": map[string]any{"customerCountry": []string{"GB"}}}).mustData(t, &d)
		want := 0
		for _, r := range e.referrals {
			if r.CustomerProfile.Address.Country == "GB" {
				want++
			}
		}
		if d.Referrals.TotalCount != want {
			t.Errorf("admin count %d, want %d", d.Referrals.TotalCount, want)
		}
	})
}

// textBounds is every free-text and id input with its bound in
// characters, as the README's Limits table lists them: set(input, value)
// puts value at that field of a valid createReferral input or, for the
// invitation's fields, of an invitation; path is how errors name it.
var textBounds = []struct {
	path string
	max  int
	set  func(create, invite map[string]any, v string)
}{
	{"customerProfile.name", 200, func(c, _ map[string]any, v string) { profile(c)["name"] = v }},
	{"customerProfile.size", 200, func(c, _ map[string]any, v string) { profile(c)["size"] = v }},
	{"customerProfile.address.addressLine1", 200, func(c, _ map[string]any, v string) { addr(c)["addressLine1"] = v }},
	{"customerProfile.address.addressLine2", 200, func(c, _ map[string]any, v string) { addr(c)["addressLine2"] = v }},
	{"customerProfile.address.city", 200, func(c, _ map[string]any, v string) { addr(c)["city"] = v }},
	{"customerProfile.address.state", 200, func(c, _ map[string]any, v string) { addr(c)["state"] = v }},
	{"customerProfile.address.postalCode", 200, func(c, _ map[string]any, v string) { addr(c)["postalCode"] = v }},
	{"customerProfile.contacts[0].firstName", 200, func(c, _ map[string]any, v string) { contact(c)["firstName"] = v }},
	{"customerProfile.contacts[0].lastName", 200, func(c, _ map[string]any, v string) { contact(c)["lastName"] = v }},
	{"customerProfile.contacts[0].email", 254, func(c, _ map[string]any, v string) { contact(c)["email"] = v[:len(v)-len("@x.example")] + "@x.example" }},
	{"customerProfile.contacts[0].phoneNumber", 50, func(c, _ map[string]any, v string) { contact(c)["phoneNumber"] = strings.Repeat("1", len(v)) }},
	{"details.notes", 10_000, func(c, _ map[string]any, v string) { c["details"].(map[string]any)["notes"] = v }},
	{"details.requirements.products[0]", 100, func(c, _ map[string]any, v string) {
		c["details"].(map[string]any)["requirements"] = map[string]any{"products": []string{v}}
	}},
	{"invitation.organizationId", 128, func(_, i map[string]any, v string) { i["organizationId"] = v }},
	{"invitation.organizationName", 200, func(_, i map[string]any, v string) { i["organizationName"] = v }},
	{"invitation.locationId", 200, func(_, i map[string]any, v string) { i["locationId"] = v }},
	{"invitation.users[0].firstName", 200, func(_, i map[string]any, v string) { user(i)["firstName"] = v }},
	{"invitation.users[0].email", 254, func(_, i map[string]any, v string) { user(i)["email"] = v[:len(v)-len("@x.example")] + "@x.example" }},
	{"invitation.invitedByParticipantId", 128, func(_, i map[string]any, v string) { i["invitedByParticipantId"] = v }},
}

func profile(c map[string]any) map[string]any { return c["customerProfile"].(map[string]any) }
func addr(c map[string]any) map[string]any    { return profile(c)["address"].(map[string]any) }
func contact(c map[string]any) map[string]any {
	return profile(c)["contacts"].([]any)[0].(map[string]any)
}
func user(i map[string]any) map[string]any {
	if i["users"] == nil {
		i["users"] = []any{map[string]any{"firstName": "Bo", "lastName": "Li"}}
	}
	return i["users"].([]any)[0].(map[string]any)
}

// TestEveryTextInputIsBounded sends each free-text and id input one
// character over its bound (BAD_USER_INPUT naming the field and the bound,
// nothing written), and at its bound. A status change's reason is bounded
// too (1,000).
func TestEveryTextInputIsBounded(t *testing.T) {
	e := newEnv(t, 0)
	r := e.create(t)
	send := func(field struct {
		path string
		max  int
		set  func(create, invite map[string]any, v string)
	}, v string) gqlResponse {
		create, invite := validInput(), map[string]any{"organizationId": "org-b", "organizationName": "B"}
		field.set(create, invite, v)
		if strings.HasPrefix(field.path, "invitation.") {
			return e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": invite})
		}
		return e.post(t, createMutation, map[string]any{"input": create})
	}
	for _, field := range textBounds {
		t.Run(field.path, func(t *testing.T) {
			named := "input." + strings.TrimPrefix(field.path, "invitation.")
			wantUnchanged(t, e, func() {
				send(field, strings.Repeat("a", field.max+1)).wantBadInput(t, named, fmt.Sprint(field.max))
			})
			if resp := send(field, strings.Repeat("a", field.max)); strings.Contains(string(resp.raw), "at most") {
				t.Errorf("%d characters refused: %.300s", field.max, resp.raw)
			}
		})
	}
	t.Run("reason", func(t *testing.T) {
		e.post(t, statusMutation, map[string]any{"id": r.ID, "v": r.Version, "s": "ACTIVE", "reason": strings.Repeat("a", 1001)}).wantBadInput(t, "1000")
	})
}

// TestTextInputsRefuseControls: every text input refuses NUL, ANSI escape
// sequences (ESC), other controls and bidi overrides with BAD_USER_INPUT
// naming the field, one-line text refuses tabs and line breaks, text meant
// to hold lines (notes, a status change's reason) keeps tab, LF and CRLF,
// and a name of spaces and zero-width characters alone is blank (issue
// 21, 'also' list).
func TestTextInputsRefuseControls(t *testing.T) {
	e := newEnv(t, 0)
	r := e.create(t)
	send := func(path string, set func(create, invite map[string]any, v string), v string) gqlResponse {
		create, invite := validInput(), map[string]any{"organizationId": "org-b", "organizationName": "B"}
		set(create, invite, v)
		if strings.HasPrefix(path, "invitation.") {
			return e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": invite})
		}
		return e.post(t, createMutation, map[string]any{"input": create})
	}
	hostile := map[string]string{"NUL": "a\x00b", "ANSI": "a\x1b[2J\x1b[31mb", "DEL": "a\x7fb", "C1": "a\u009bb", "BidiOverride": "a\u202eb", "BidiIsolate": "a\u2067b"}
	oneLine := map[string]string{"Tab": "a\tb", "LF": "a\nb", "CR": "a\rb", "LineSeparator": "a\u2028b"}
	for _, field := range textBounds {
		if strings.HasSuffix(field.path, "phoneNumber") || field.path == "invitation.organizationId" {
			continue // digits only; an alphabet of its own
		}
		named := "input." + strings.TrimPrefix(field.path, "invitation.")
		refused := maps.Clone(hostile)
		if field.path != "details.notes" {
			maps.Copy(refused, oneLine)
		}
		for name, v := range refused {
			if strings.HasSuffix(field.path, "email") {
				v += "@x.example" // which its setter puts in place of as many characters
			}
			t.Run(field.path+"/"+name, func(t *testing.T) {
				wantUnchanged(t, e, func() { send(field.path, field.set, v).wantBadInput(t, named) })
			})
		}
	}
	t.Run("NotesKeepLines", func(t *testing.T) {
		create := validInput()
		create["details"].(map[string]any)["notes"] = "first line\r\n\tindented\nlast"
		var d struct {
			CreateReferral struct {
				ID      string
				Details struct{ Notes string }
			}
		}
		e.post(t, `mutation($input: CreateReferralInput!) { createReferral(input: $input) { id details { notes } } }`, map[string]any{"input": create}).mustData(t, &d)
		if d.CreateReferral.Details.Notes != "first line\n\tindented\nlast" { // line breaks are stored as LF
			t.Errorf("notes %q, want the lines kept with LF", d.CreateReferral.Details.Notes)
		}
	})
	t.Run("Reason", func(t *testing.T) {
		for _, v := range hostile {
			e.post(t, statusMutation, map[string]any{"id": r.ID, "v": r.Version, "s": "ACTIVE", "reason": v}).wantBadInput(t, "reason")
		}
		var d struct{ ChangeReferralStatus struct{ Version int } }
		e.post(t, statusMutation, map[string]any{"id": r.ID, "v": r.Version, "s": "ACTIVE", "reason": "budget:\r\n\t- confirmed"}).mustData(t, &d)
	})
	for _, field := range []string{"customerProfile.name", "customerProfile.address.city", "customerProfile.contacts[0].firstName", "invitation.organizationName"} {
		t.Run(field+"/Invisible", func(t *testing.T) {
			for _, f := range textBounds {
				if f.path == field {
					named := "input." + strings.TrimPrefix(field, "invitation.")
					send(field, f.set, " \u200b\u200d\ufeff\u2060\u3164 ").wantBadInput(t, named, "blank")
				}
			}
		})
	}
	t.Run("ZeroWidthInsideAName", func(t *testing.T) {
		create := validInput()
		profile(create)["name"] = "👩\u200d💻 Studio"
		var d struct{ CreateReferral struct{ ID string } }
		e.post(t, createMutation, map[string]any{"input": create}).mustData(t, &d)
	})
}

// TestIntIsThirtyTwoBits: Int arguments outside GraphQL's signed 32 bits
// (2^53, 2^31, -2^31-1) are BAD_USER_INPUT saying so, as literals and as
// variables, and change nothing; the largest Int is taken (issue 21,
// 'also' list).
func TestIntIsThirtyTwoBits(t *testing.T) {
	e := newEnv(t, 3)
	r := e.create(t)
	notes := map[string]any{"details": map[string]any{"notes": "x"}}
	for name, tt := range map[string]struct {
		query string
		vars  map[string]any
	}{
		"PageLiteral":       {`{ referrals(first: 9007199254740992) { totalCount } }`, nil},
		"PageVariable":      {`query($n: Int) { referrals(last: $n) { totalCount } }`, map[string]any{"n": int64(1) << 53}},
		"StatsNegative":     {`{ referralStats(groupBy: [STATUS], first: -2147483649) { groupCount } }`, nil},
		"VersionLiteral":    {`mutation($id: ID!) { updateReferral(id: $id, expectedVersion: 2147483648, patch: {details: {notes: "x"}}) { version } }`, map[string]any{"id": r.ID}},
		"VersionVariable":   {updateMutation, map[string]any{"id": r.ID, "v": int64(1) << 53, "patch": notes}},
		"StatusVersionHuge": {statusMutation, map[string]any{"id": r.ID, "v": int64(1) << 53, "s": "ACTIVE"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantUnchanged(t, e, func() { e.post(t, tt.query, tt.vars).wantBadInput(t, "32-bit") })
		})
	}
	t.Run("LargestIntIsTaken", func(t *testing.T) {
		code, _ := e.post(t, updateMutation, map[string]any{"id": r.ID, "v": math.MaxInt32, "patch": notes}).code(t)
		if code != string(storage.CodeConflict) {
			t.Errorf("expectedVersion 2147483647: %s, want CONFLICT (a version it is not)", code)
		}
	})
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// roundTripSeed fixes TestRandomRoundTrip's referrals; 0 draws a new seed,
// which a failure prints.
var roundTripSeed = flag.Uint64("roundtrip.seed", 0, "seed of TestRandomRoundTrip's referrals (0: a new one each run)")

// TestRandomRoundTrip is the differential test of export and import:
// random referrals, made through the API (random text with the
// characters CSV, JSON and spreadsheets treat specially, amounts, dates,
// contacts, tags, status changes, invitations), are exported as JSON
// Lines and as CSV; each file imported into an empty store must create
// every referral, and the new store must export the same bytes in that
// format, and the same JSON Lines as the source.
func TestRandomRoundTrip(t *testing.T) {
	seed := *roundTripSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (go test -run TestRandomRoundTrip -roundtrip.seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	source := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	gen := referralGen{rng: rng, tags: catalog(t, ctx, source)}
	const n = 40
	for range n {
		gen.create(t, ctx, source)
	}
	lines, file := exportLines(t, ctx, source), exportCSV(t, ctx, source)
	if got := strings.Count(lines, "\n"); got != n {
		t.Fatalf("the source exported %d lines, want %d", got, n)
	}
	for _, c := range []struct{ media, body string }{{"application/x-ndjson", lines}, {"text/csv", file}} {
		t.Run(c.media, func(t *testing.T) {
			target := importServer(t)
			res := postImport(t, ctx, target, adminToken(t), "", c.media, c.body)
			if res.status != http.StatusOK || res.count("created") != n || res.summary["complete"] != true {
				t.Fatalf("seed %d: import: status %d, summary %v, body %.2000s; want %d created", seed, res.status, res.summary, res.body, n)
			}
			if again := exportLines(t, ctx, target); again != lines {
				t.Errorf("seed %d: the JSON Lines export after the import differs:\n%s", seed, firstDifference(again, lines))
			}
			if again := exportCSV(t, ctx, target); again != file {
				t.Errorf("seed %d: the CSV export after the import differs:\n%s", seed, firstDifference(again, file))
			}
		})
	}
}

// firstDifference shows where got and want first differ.
func firstDifference(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-80)
	return fmt.Sprintf("at byte %d:\n got …%.200q\nwant …%.200q", i, got[from:], want[from:])
}

// catalog returns the tag ids of each category, as the API lists them.
func catalog(t *testing.T, ctx context.Context, base string) map[string][]string {
	t.Helper()
	var d struct {
		Tags []struct{ ID, Category string }
	}
	gql(t, ctx, base, `{ tags { id category } }`, nil, &d)
	out := map[string][]string{}
	for _, tag := range d.Tags {
		out[tag.Category] = append(out[tag.Category], tag.ID)
	}
	return out
}

// gql runs a GraphQL request as the admin and decodes its data into out,
// failing the test on any error.
func gql(t *testing.T, ctx context.Context, base, query string, vars map[string]any, out any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, resp := request(t, ctx, http.MethodPost, base+"/query", string(body),
		map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + adminToken(t)})
	var r struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.Unmarshal([]byte(resp), &r); err != nil || status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("%s with %v: status %d, %.1000s", query, vars, status, resp)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatal(err)
		}
	}
}

// referralGen makes random referrals through the API.
type referralGen struct {
	rng  *rand.Rand
	tags map[string][]string // tag ids by category
}

// oneLine are fragments of one-line text: what CSV quotes (comma, quote,
// apostrophe), what a spreadsheet takes for a formula when it leads (=,
// +, -, @), JSON's escapes, letters of several scripts, combining marks,
// emoji, joiners and no-break spaces.
var oneLine = []string{"Contoso", "Ltd", " ", ",", `"`, "'", ";", "=SUM(A1)", "+1", "-", "@home", `\`, "</script>", "é", "ß", "Ærø",
	"中文", "日本語", "Привет", "مرحبا", "😀", "👩‍💻", "e\u0301", "\u00a0", "\u200d", "&amp;", "%s", "0", "1e5", "null", "true"}

// multiLine adds the line breaks and tabs notes may hold.
var multiLine = append([]string{"\n", "\r\n", "\t", "\u2028"}, oneLine...)

// text returns 1 to max fragments of pool, not blank and not longer than
// 200 characters.
func (g referralGen) text(pool []string, max int) string {
	for {
		var b strings.Builder
		for range 1 + g.rng.IntN(max) {
			b.WriteString(pool[g.rng.IntN(len(pool))])
		}
		s := b.String()
		if strings.TrimSpace(strings.Trim(s, "\u00a0\u200d\t\r\n\u2028")) != "" && len([]rune(s)) <= 200 {
			return s
		}
	}
}

// maybe returns v half the time, else nil.
func (g referralGen) maybe(v any) any {
	if g.rng.IntN(2) == 0 {
		return nil
	}
	return v
}

// some returns up to max distinct ids of list.
func (g referralGen) some(list []string, max int) []string {
	var out []string
	for _, i := range g.rng.Perm(len(list))[:g.rng.IntN(max+1)] {
		out = append(out, list[i])
	}
	return out
}

// create makes one random referral, then sometimes changes its status and
// invites an organization.
func (g referralGen) create(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	var contacts []any
	for range g.rng.IntN(3) {
		contacts = append(contacts, map[string]any{"firstName": g.text(oneLine, 3), "lastName": g.text(oneLine, 3),
			"email": g.maybe(fmt.Sprintf("p%d@example.com", g.rng.IntN(1000))), "phoneNumber": g.maybe(fmt.Sprintf("+49 30 %07d", g.rng.IntN(1e7)))})
	}
	details := map[string]any{
		"notes":       g.maybe(g.text(multiLine, 8)),
		"dealValue":   g.maybe(fmt.Sprintf("%d.%02d", g.rng.Int64N(1e10), g.rng.IntN(100))),
		"closingDate": g.maybe(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.rng.Int64N(3e17))).Truncate(time.Millisecond).Format(time.RFC3339Nano)),
		"requirements": map[string]any{
			"industryFocus": g.some(g.tags["INDUSTRY_FOCUS"], 2), "products": g.some(g.tags["PRODUCTS"], 3),
			"serviceTypes": g.some(g.tags["SERVICE_TYPES"], 2), "solutions": g.some(g.tags["SOLUTIONS"], 3),
		},
	}
	input := map[string]any{
		"referralSource": []string{"WEB_DIRECT", "PARTNER_LED", "AGENT_LED", "P2P"}[g.rng.IntN(4)],
		"customerProfile": map[string]any{
			"name": g.text(oneLine, 6), "size": g.maybe(g.text(oneLine, 2)), "contacts": contacts,
			"address": map[string]any{"addressLine1": g.text(oneLine, 4), "addressLine2": g.maybe(g.text(oneLine, 3)), "city": g.text(oneLine, 2),
				"state": g.maybe(g.text(oneLine, 2)), "postalCode": g.maybe(fmt.Sprint(g.rng.IntN(99999))),
				"country": []string{"US", "DE", "gb", "JP", "BR", "FR", "IN"}[g.rng.IntN(7)]},
		},
	}
	if g.rng.IntN(5) > 0 {
		input["details"] = details
	}
	var d struct {
		CreateReferral struct {
			ID      string
			Version int
		}
	}
	gql(t, ctx, base, `mutation($input: CreateReferralInput!) { createReferral(input: $input) { id version } }`, map[string]any{"input": input}, &d)
	id, version := d.CreateReferral.ID, d.CreateReferral.Version
	for _, to := range [][]string{nil, {"ACTIVE"}, {"ACTIVE", "WON"}, {"ACTIVE", "LOST"}, {"ARCHIVED"}}[g.rng.IntN(5)] {
		var s struct{ ChangeReferralStatus struct{ Version int } }
		gql(t, ctx, base, `mutation($id: ID!, $v: Int!, $to: ReferralStatus!, $reason: String) { changeReferralStatus(id: $id, expectedVersion: $v, status: $to, reason: $reason) { version } }`,
			map[string]any{"id": id, "v": version, "to": to, "reason": g.maybe(g.text(multiLine, 4))}, &s)
		version = s.ChangeReferralStatus.Version
	}
	if version == 1 && g.rng.IntN(2) == 0 { // an archived or closed referral takes no invitation
		users := []any{}
		for range g.rng.IntN(3) {
			users = append(users, map[string]any{"firstName": g.text(oneLine, 2), "lastName": g.text(oneLine, 2),
				"email": g.maybe(fmt.Sprintf("u%d@example.org", g.rng.IntN(1000)))})
		}
		gql(t, ctx, base, `mutation($id: ID!, $input: InviteParticipantInput!) { inviteParticipant(referralId: $id, input: $input) { id } }`,
			map[string]any{"id": id, "input": map[string]any{"organizationId": fmt.Sprintf("org-%d", g.rng.IntN(50)), "organizationName": g.text(oneLine, 3),
				"users": users}}, nil)
	}
}

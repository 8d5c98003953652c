package graph

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"referrals/storage/demo"
)

// readmeDemoSeed is server.go's demoSeed: the demo data `go run .` seeds.
const readmeDemoSeed = 2026

// statsExamples are docs/analytics.md's example questions, each one referralStats
// query, and the columns of its result table (paths into each group).
var statsExamples = []struct {
	question, query string
	columns         []string
}{
	{"How much open deal value is there per country?",
		`{ referralStats(filter: { status: [PENDING, ACTIVE] }, groupBy: [CUSTOMER_COUNTRY], orderBy: { field: DEAL_VALUE_SUM }, first: 5) {
    groupCount
    groups { key { customerCountry } measures { count dealValue { sum average } } }
    total { count dealValue { sum average } } } }`,
		[]string{"key.customerCountry", "measures.count", "measures.dealValue.sum", "measures.dealValue.average"}},
	{"Which solutions win most, and at what rate?",
		`{ referralStats(groupBy: [SOLUTIONS], orderBy: { field: WON }, first: 5) {
    groupCount
    groups { key { solutions { name } } measures { won lost winRate } }
    total { won lost winRate } } }`,
		[]string{"key.solutions.name", "measures.won", "measures.lost", "measures.winRate"}},
	{"How large are deals from each source?",
		`{ referralStats(groupBy: [REFERRAL_SOURCE], orderBy: { field: KEY, direction: ASC }) {
    groupCount
    groups { key { referralSource } measures { count dealValue { minimum average maximum } } }
    total { count dealValue { minimum average maximum } } } }`,
		[]string{"key.referralSource", "measures.count", "measures.dealValue.minimum", "measures.dealValue.average", "measures.dealValue.maximum"}},
	{"Which organizations hold the most accepted referrals, and what are they worth?",
		`{ referralStats(filter: { participant: { status: [ACCEPTED] } }, groupBy: [PARTICIPANT_ORGANIZATION, PARTICIPANT_STATUS], orderBy: { field: COUNT }, first: 6) {
    groupCount
    groups { key { participantOrganizationId participantStatus } measures { count dealValue { sum } } }
    total { count dealValue { sum } } } }`,
		[]string{"key.participantOrganizationId", "key.participantStatus", "measures.count", "measures.dealValue.sum"}},
}

// TestStatsExamples runs docs/analytics.md's example questions against the demo
// data of `go run .` (200 referrals of the demo seed, seeded today) and
// checks that docs/analytics.md shows each answer as it is, as a Markdown table
// (printed with -v):
//
//	go test ./graph -run TestStatsExamples -v
func TestStatsExamples(t *testing.T) {
	readme, err := os.ReadFile("../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 0)
	refs, parts := demo.Generate(readmeDemoSeed, 200, time.Now().UTC().Truncate(24*time.Hour))
	if err := e.store.InsertReferrals(context.Background(), refs, parts); err != nil {
		t.Fatal(err)
	}
	for _, ex := range statsExamples {
		var got struct {
			ReferralStats struct {
				GroupCount int
				Groups     []map[string]any
				Total      map[string]any
			}
		}
		e.post(t, ex.query, nil).mustData(t, &got)
		stats := got.ReferralStats
		if len(stats.Groups) == 0 {
			t.Fatalf("%s: no groups", ex.question)
		}
		var b strings.Builder
		header := make([]string, len(ex.columns))
		for i, c := range ex.columns {
			parts := strings.Split(c, ".")
			header[i] = parts[len(parts)-1]
			if parts[0] == "measures" && parts[1] == "dealValue" {
				header[i] = "dealValue " + header[i]
			}
		}
		fmt.Fprintf(&b, "\n**%s** (%d groups)\n\n| %s |\n|%s\n", ex.question, stats.GroupCount,
			strings.Join(header, " | "), strings.Repeat(" --- |", len(ex.columns)))
		rows := append(stats.Groups, map[string]any{"key": map[string]any{}, "measures": stats.Total})
		for i, g := range rows {
			cells := make([]string, len(ex.columns))
			for j, c := range ex.columns {
				cells[j] = cell(g, c)
			}
			if i == len(rows)-1 {
				cells[0] = "**total**"
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
		t.Log(b.String())
		// docs/analytics.md shows the question, its query, then the table.
		title, table, _ := strings.Cut(strings.TrimPrefix(b.String(), "\n"), "\n\n")
		at := strings.Index(string(readme), title)
		if at < 0 || !strings.Contains(string(readme)[at:], table) {
			t.Errorf("docs/analytics.md does not show this answer of %q as it is:%s", ex.question, b.String())
		}
	}
}

// cell reads a dotted path of a decoded group as table text.
func cell(v any, path string) string {
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	switch v := v.(type) {
	case nil:
		return "–"
	case float64:
		if v != float64(int64(v)) {
			return fmt.Sprintf("%.3f", v)
		}
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprint(v)
}

package graph

import (
	"fmt"
	"referrals/storage"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2"
)

func TestOperationLimits(t *testing.T) {
	e := newEnv(t, 5)
	es := NewExecutableSchema(Config{Complexity: complexityCosts()})
	cost := func(query string, vars map[string]any) int {
		doc, errs := gqlparser.LoadQuery(es.Schema(), query)
		if errs != nil {
			t.Fatal(errs)
		}
		return complexity.Calculate(t.Context(), es, doc.Operations[0], vars)
	}
	t.Run("NestedPageOfHundredFits", func(t *testing.T) {
		c := cost(nestedPageQuery, map[string]any{"first": 100})
		t.Logf("the nested page of 100 costs %d", c)
		if c > DefaultMaxComplexity || c < DefaultMaxComplexity/4 {
			t.Errorf("nested page of 100 costs %d: the limit %d should fit it with room to spare, and no more", c, DefaultMaxComplexity)
		}
		if small := cost(nestedPageQuery, map[string]any{"first": 10}); small*5 > c {
			t.Errorf("a page of 10 costs %d against %d for 100: cost does not scale with first", small, c)
		}
	})

	deep := "{ referral(id: \"x\") { " + strings.Repeat("participants { referral { ", 6) + "id" + strings.Repeat(" } }", 6) + " } }"
	viaFragment := `{ referral(id: "x") { ...Deep } } fragment Deep on Referral { ` + strings.Repeat("participants { referral { ", 6) + "id" + strings.Repeat(" } }", 6) + " }"
	// Two nested pages of 100 in one operation: each fits, both do not.
	var aliases []string
	for i := range 2 {
		aliases = append(aliases, fmt.Sprintf("p%d: referrals(first: 100) { nodes { %s } }", i, nestedFields))
	}
	tests := []struct{ name, query, mention string }{
		{"ErrTooComplex", "{ " + strings.Join(aliases, " ") + " }", "complexity"},
		{"ErrTooDeep", deep, "14 fields deep"},
		{"ErrTooDeepThroughFragment", viaFragment, "14 fields deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commands.take(e.db)
			resp := e.post(t, tt.query, nil)
			code, msg := resp.code(t)
			if code != string(storage.CodeComplexityLimit) || !strings.Contains(msg, tt.mention) {
				t.Errorf("got %s %q, want COMPLEXITY_LIMIT mentioning %q", code, msg, tt.mention)
			}
			if sent := commands.take(e.db); len(sent) > 0 {
				t.Errorf("the refused operation still sent %v", sent)
			}
		})
	}
}

package graph

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/vektah/gqlparser/v2"

	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/storage"
)

// standardIntrospection is graphql-js's getIntrospectionQuery with every
// option, as .ci/introspection/query.mjs prints it with the pinned graphql
// package (CI checks that the file is its output).
func standardIntrospection(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/introspection.graphql")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStandardIntrospection (issue 10, item 1): the standard introspection
// query that GraphiQL, Apollo tooling and graphql-codegen send is answered
// in full, in open mode and for an admin when authentication is on and
// introspection enabled. With INTROSPECTION_RESULT set it writes the open
// mode's response there, for .ci/introspection to check with graphql-js's
// buildClientSchema.
func TestStandardIntrospection(t *testing.T) {
	e := newEnv(t, 1)
	query := standardIntrospection(t)
	check := func(t *testing.T, resp gqlResponse) {
		t.Helper()
		var data struct {
			Schema struct {
				QueryType struct{ Name string }
				Types     []struct{ Name string }
			} `json:"__schema"`
		}
		resp.mustData(t, &data)
		listed := map[string]bool{}
		for _, typ := range data.Schema.Types {
			listed[typ.Name] = true
		}
		for name := range NewExecutableSchema(Config{}).Schema().Types {
			if !listed[name] {
				t.Errorf("type %s is missing from the answer", name)
			}
		}
		if data.Schema.QueryType.Name != "Query" {
			t.Errorf("queryType %q, want Query", data.Schema.QueryType.Name)
		}
	}
	t.Run("Open", func(t *testing.T) {
		resp := e.post(t, query, nil)
		check(t, resp)
		if path := os.Getenv("INTROSPECTION_RESULT"); path != "" {
			if err := os.WriteFile(path, resp.raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("AdminToken", func(t *testing.T) {
		h := securedHandler(t, e, transport.AuthOptions{}, transport.Options{})
		check(t, postAs(t, h, transporttest.HS(t, jwt.MapClaims{"sub": "analyst", "role": "admin", "org": "o", "exp": transporttest.InAnHour()}), query))
	})
}

// TestIntrospectionLimit (issue 10, item 1): introspection is bounded by
// the fields it would resolve, counted from the schema before it runs.
// The standard query is well within the bound; queries that multiply
// through `type` and `ofType` at every level are refused with
// COMPLEXITY_LIMIT, quickly, and nothing is sent to the store.
func TestIntrospectionLimit(t *testing.T) {
	e := newEnv(t, 1)
	es := NewExecutableSchema(Config{Complexity: complexityCosts()})
	count := func(t *testing.T, query string) int {
		t.Helper()
		doc, errs := gqlparser.LoadQuery(es.Schema(), query)
		if errs != nil {
			t.Fatal(errs)
		}
		return introspectionFields(es.Schema(), doc.Operations[0].SelectionSet, nil)
	}
	t.Run("StandardQueryWellWithin", func(t *testing.T) {
		n := count(t, standardIntrospection(t))
		t.Logf("the standard introspection query resolves %d fields", n)
		if 4*n > maxIntrospectionFields {
			t.Errorf("the standard query resolves %d fields: the bound %d leaves less than fourfold room", n, maxIntrospectionFields)
		}
		var resp map[string]any
		if err := json.Unmarshal(e.post(t, standardIntrospection(t), nil).raw, &resp); err != nil {
			t.Fatal(err)
		}
		if got := resolvedFields(resp["data"]); got != n {
			t.Errorf("the answer has %d fields, the count said %d", got, n)
		}
	})
	t.Run("TypeByName", func(t *testing.T) {
		var d struct {
			Type struct{ Fields []struct{ Name string } } `json:"__type"`
		}
		e.post(t, `{ __type(name: "Referral") { fields { name type { name ofType { name ofType { name } } } } } }`, nil).mustData(t, &d)
		if len(d.Type.Fields) == 0 {
			t.Error("no fields for Referral")
		}
	})

	// The example: `fields` of each field's type, eight levels
	// deep; validation refuses it (MaxIntrospectionDepth).
	nested := "{ __schema { types { " + strings.Repeat("fields { type { ", 8) + "name" + strings.Repeat(" } }", 8) + " } } }"
	// Each alias is cheap, 500 of them are not: the count refuses them.
	aliases := repeated(500, "sN: __schema { types { name fields { name args { name type { name } } } } }")
	if n := count(t, aliases); n <= maxIntrospectionFields {
		t.Fatalf("the aliases count %d fields, within the bound", n)
	}
	for _, tt := range []struct{ name, query string }{
		{"ErrFieldsOfTypesEightDeep", nested},
		{"ErrManyAliases", aliases},
	} {
		t.Run(tt.name, func(t *testing.T) {
			commands.take(e.db)
			var resp gqlResponse
			used := measured(func() { resp = e.post(t, tt.query, nil) })
			t.Logf("%d-byte document: %v of CPU, %d KiB allocated", len(tt.query), used.cpu, used.alloc>>10)
			if over := used.overBudget(); over != "" {
				t.Errorf("refusing it %s", over)
			}
			if code, msg := resp.code(t); code != string(storage.CodeComplexityLimit) || !strings.Contains(strings.ToLower(msg), "introspection") {
				t.Errorf("got %s %q, want COMPLEXITY_LIMIT about introspection", code, msg)
			}
			if sent := commands.take(e.db); len(sent) > 0 {
				t.Errorf("the refused operation still sent %v", sent)
			}
		})
	}
}

// resolvedFields counts the fields of a JSON response's data, as the
// introspection count counts them.
func resolvedFields(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for _, child := range v {
			n += 1 + resolvedFields(child)
		}
	case []any:
		for _, item := range v {
			n += resolvedFields(item)
		}
	}
	return n
}

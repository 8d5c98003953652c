package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"referrals/graph/transport"
)

// FuzzRequestBody posts arbitrary bodies to /query: the server never
// answers 5xx, never panics, and always answers JSON.
func FuzzRequestBody(f *testing.F) {
	e := newEnv(f, 3)
	for _, seed := range []string{
		`{"query":"{ referrals { totalCount } }"}`,
		`{"query":"query($f: ReferralFilter) { referrals(filter: $f) { nodes { id } } }","variables":{"f":{"dealValue":{"min":"1.5"}}}}`,
		`{"query":"{ referrals(after: \"x\") { totalCount } }"}`,
		`{"query":"query($f: ReferralFilter, $o: ReferralOrder) { referrals(filter: $f, orderBy: $o) { totalCount } }","variables":{"f":{"status":["pending"],"participant":{"status":"ACCEPTED"}},"o":{"field":"DEAL_VALUE","direction":"desc"}}}`,
		`{"query":"query($m: Decimal = 1.25) { referrals(filter: {dealValue: {min: $m, max: 1234567890123456.78}}) { totalCount } }"}`,
		`{"query":"mutation { createReferral(input: {}) { id } }"}`,
		`{"query":"{ referral(id: 1) { id } }","variables":[]}`,
		`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`,
		`[]`, `{`, ``, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("not JSON for %q: %s", body, rec.Body)
		}
	})
}

// FuzzDocument sends whole GraphQL documents built from the fuzzer's
// bytes (fragments spreading fragments, aliases, nesting, arguments,
// variables, directives, and repeats that make a few bytes into a document
// up to the body limit) through the HTTP handler: the server never answers
// 5xx, always answers JSON, and answers each within the budget of one
// request (requestCPUBudget, requestAllocBudget).
func FuzzDocument(f *testing.F) {
	e := newEnv(f, 3)
	for _, seed := range [][]byte{
		{}, // query { __typename }
		// referrals(first: 2) { totalCount nodes { id participants { referral { id } } } }
		{0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 13, 0, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1, 0, 14, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 14},
		// { ...F0 } with F0 { ...F1 ...F1 }, F1 { ...F2 ...F2 }, and so on
		{3, 0, 4, 0, 0, 1, 4, 1, 4, 1, 0, 1, 4, 2, 4, 2, 0, 1, 4, 3, 4, 3, 0, 0, 7},
		// x: referral(id: "1") { id }, 1024 times
		{0, 0, 6, 0, 2, 1, 1, 6, 0, 1, 0, 0, 14, 0, 0, 0, 0, 10},
		// an inline fragment under @include(if: $b), a: referrals(first: $n),
		// referral(id: $id) @skip(if: true)
		{0, 1, 3, 0, 1, 0, 0, 0, 1, 2, 1, 1, 0, 1, 0, 0, 13, 0, 0, 0, 0, 0, 2, 0, 1, 5, 1, 1, 1, 0, 0, 15, 0, 0, 0, 0, 30, 0},
		// __typename, 32768 times
		{0, 0, 6, 7, 15},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		query, vars := generateDocument(data)
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		used := measured(func() { e.handler.ServeHTTP(rec, req) })
		if rec.Code >= 500 {
			t.Fatalf("status %d for %.300q: %.300s", rec.Code, query, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("not JSON for %.300q: %.300s", query, rec.Body)
		}
		if over := used.overBudget(); over != "" {
			t.Fatalf("%d-byte document %s: %.300q", len(query), over, query)
		}
	})
}

// Words a generated document is made of: fields of every type (and one
// that exists nowhere), their arguments, directives and type conditions.
var (
	docFields = []string{
		"__typename", "referrals", "referral", "participants", "participant", "tags", "nodes", "edges", "node",
		"cursor", "pageInfo", "hasNextPage", "endCursor", "totalCount", "id", "status", "version",
		"customerProfile", "name", "address", "city", "contacts", "email", "details", "dealValue",
		"requirements", "products", "solutions", "organizationName", "invitedBy", "users", "nothing",
	}
	docArguments = []string{
		"(first: 2)", "(first: $n)", "(first: 0)", "(first: 100)", "(last: 1)", "(id: $id)", `(id: "1")`,
		"(filter: $f)", "(filter: {status: [PENDING, ACTIVE]})", "(orderBy: {field: CUSTOMER_NAME, direction: ASC})",
		"(category: PRODUCTS)", `(after: "x")`, "(first: $n, after: $id)",
	}
	docDirectives = []string{"@include(if: $b)", "@skip(if: true)", "@include(if: false)", "@skip(if: $b)"}
	docTypes      = []string{"Query", "Referral", "ReferralConnection", "Participant", "CustomerProfile", "Tag"}
	docVariables  = map[string]string{"$n": "$n: Int", "$id": "$id: ID", "$f": "$f: ReferralFilter", "$b": "$b: Boolean!"}
)

// generateDocument turns fuzz input into a document and its variables.
// Each byte picks what comes next; once the input runs out every choice is
// the first, simplest one, so every input makes a document.
func generateDocument(data []byte) (string, map[string]any) {
	g := &docGen{data: data}
	g.fragments = 1 + g.next()%5
	var b strings.Builder
	b.WriteString(g.selectionSet(0))
	// Fragments are defined once spread, in the order first spread, so
	// their bodies may spread further ones.
	for i := 0; i < len(g.spread); i++ {
		fmt.Fprintf(&b, "\nfragment F%d on %s %s", g.spread[i], docTypes[g.next()%len(docTypes)], g.selectionSet(1))
	}
	doc := b.String()
	var decls []string
	for v, decl := range docVariables {
		if strings.Contains(doc, v+")") || strings.Contains(doc, v+",") {
			decls = append(decls, decl)
		}
	}
	slices.Sort(decls)
	op := "query"
	if len(decls) > 0 {
		op += "(" + strings.Join(decls, ", ") + ")"
	}
	vars := map[string]any{"n": g.next()%120 - 10, "id": "1", "b": g.next()%2 == 0, "f": map[string]any{"status": []string{"PENDING"}}}
	return op + " " + doc, vars
}

// maxGeneratedDepth bounds the nesting of generated selection sets (deeper
// than the depth limit, and fragments nest further).
const maxGeneratedDepth = 14

// docGen writes selection sets from the bytes it is given. Documents stop
// growing at the body limit.
type docGen struct {
	data      []byte
	fragments int   // how many fragments spreads may name
	spread    []int // the fragments spread so far, in order
	size      int
}

func (g *docGen) next() int {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return int(b)
}

func (g *docGen) selectionSet(depth int) string {
	var b strings.Builder
	b.WriteString("{")
	for range 1 + g.next()%4 {
		b.WriteString(" ")
		b.WriteString(g.selection(depth))
	}
	b.WriteString(" }")
	return b.String()
}

func (g *docGen) selection(depth int) string {
	var s string
	switch op := g.next() % 8; {
	case op <= 2 || depth >= maxGeneratedDepth:
		s = g.field(depth)
	case op == 3:
		s = "..."
		if c := g.next() % 3; c > 0 {
			s += " on " + docTypes[c%len(docTypes)]
		}
		if g.next()%2 == 1 {
			s += " " + docDirectives[g.next()%len(docDirectives)]
		}
		s += " " + g.selectionSet(depth+1)
	case op == 4, op == 5:
		f := g.next() % g.fragments
		if !slices.Contains(g.spread, f) {
			g.spread = append(g.spread, f)
		}
		s = fmt.Sprintf("...F%d", f)
	case op == 6:
		// One selection written 2^k times: aliases of one name, the same
		// field over and over, or spreads of one fragment.
		item, n := g.selection(depth), 1<<(g.next()%16)
		var b strings.Builder
		for i := 0; i < n && g.size+b.Len() < transport.DefaultMaxBodyBytes; i++ {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(item)
		}
		s = b.String()
	default:
		s = "__typename"
	}
	g.size += len(s)
	return s
}

func (g *docGen) field(depth int) string {
	s := docFields[g.next()%len(docFields)]
	if a := g.next() % 4; a > 0 {
		s = []string{"", "x: ", "a: ", "b: "}[a] + s
	}
	if g.next()%3 == 1 {
		s += docArguments[g.next()%len(docArguments)]
	}
	if g.next()%5 == 1 {
		s += " " + docDirectives[g.next()%len(docDirectives)]
	}
	if g.next()%2 == 1 && depth < maxGeneratedDepth {
		s += " " + g.selectionSet(depth+1)
	}
	return s
}

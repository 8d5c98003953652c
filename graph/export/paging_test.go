package export

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestSplitPageAgreesWithEncodingJSON is the differential test of
// splitPage: random pages, their strings full of what a JSON scanner must
// get right (quotes, backslashes, brackets, braces, "nodes" keys inside
// values), are read by splitPage and by encoding/json, which must agree
// node for node, byte for byte; pages of another shape are refused.
func TestSplitPageAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{`"`, `\`, `\"`, `{`, `}`, `[`, `]`, `,"nodes":[`, `"nodes"`, `:`, `,`, "é", "😀", "\n", "x", " ", `\u0022`}
	text := func() string {
		var b bytes.Buffer
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	for i := range 500 {
		var nodes []any
		for range rng.IntN(6) {
			nodes = append(nodes, map[string]any{"id": text(), "list": []any{text(), map[string]any{"k": text()}}, "empty": []any{}, "obj": map[string]any{}, "n": nil})
		}
		if nodes == nil {
			nodes = []any{}
		}
		// In the query's order, as the executor writes it: pageInfo, then
		// nodes (json.Marshal would sort the keys).
		pi, _ := json.Marshal(map[string]any{"hasNextPage": i%2 == 0, "endCursor": text()})
		list, err := json.Marshal(nodes)
		if err != nil {
			t.Fatal(err)
		}
		data := []byte(`{"referrals":{"pageInfo":` + string(pi) + `,"nodes":` + string(list) + `}}`)
		var want struct{ Referrals page }
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("case %d: %v: %s", i, err, data)
		}
		got, ok := splitPage(data)
		if !ok || got.PageInfo != want.Referrals.PageInfo || len(got.Nodes) != len(want.Referrals.Nodes) {
			t.Fatalf("case %d: %+v, %v; want %+v: %s", i, got, ok, want.Referrals, data)
		}
		for j := range got.Nodes {
			if !bytes.Equal(got.Nodes[j], want.Referrals.Nodes[j]) {
				t.Fatalf("case %d node %d: %s, want %s", i, j, got.Nodes[j], want.Referrals.Nodes[j])
			}
		}
	}
	for _, bad := range []string{``, `{}`, `{"referrals":null}`, `{"referrals":{"pageInfo":{},"nodes":[{}`, `{"referrals":{"pageInfo":{},"nodes":[{}]}}x`} {
		if _, ok := splitPage([]byte(bad)); ok {
			t.Errorf("%q was read", bad)
		}
	}
}

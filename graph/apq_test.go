package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"referrals/graph/transport"
	"referrals/storage"
	"strings"
	"testing"
)

// TestAutomaticPersistedQueries follows the APQ protocol: a hash the server
// does not know yet is PERSISTED_QUERY_NOT_FOUND; sent once with its
// document, the hash alone then runs it.
func TestAutomaticPersistedQueries(t *testing.T) {
	e := newEnv(t, 3)
	query := "{ referrals { totalCount } }"
	sum := sha256.Sum256([]byte(query))
	persisted := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	send := func(body map[string]any) gqlResponse { return e.postBody(t, body) }
	// Clients send no query at all with a hash.
	if code, _ := send(map[string]any{"extensions": persisted}).code(t); code != string(storage.CodePersistedQueryNotFound) {
		t.Errorf("unknown hash: code %s, want %s", code, string(storage.CodePersistedQueryNotFound))
	}
	var d struct{ Referrals struct{ TotalCount int } }
	send(map[string]any{"query": query, "extensions": persisted}).mustData(t, &d)
	send(map[string]any{"extensions": persisted}).mustData(t, &d)
	if d.Referrals.TotalCount != 3 {
		t.Errorf("by hash alone: %+v", d)
	}
	// The GET form, which caches and CDNs can keep.
	ext, _ := json.Marshal(persisted)
	get := httptest.NewRequest(http.MethodGet, "/query?extensions="+url.QueryEscape(string(ext)), nil)
	e.do(t, get).mustData(t, &d)
	if d.Referrals.TotalCount != 3 {
		t.Errorf("GET by hash: %+v", d)
	}
	// A document larger than the cache keeps runs, and is not kept.
	large := "{ referrals { totalCount } }" + strings.Repeat(" ", 40<<10)
	largeSum := sha256.Sum256([]byte(large))
	largeExt := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(largeSum[:])}}
	send(map[string]any{"query": large, "extensions": largeExt}).mustData(t, &d)
	if code, _ := send(map[string]any{"extensions": largeExt}).code(t); code != string(storage.CodePersistedQueryNotFound) {
		t.Errorf("a 40 KB document by hash: code %s, want it not kept", code)
	}
	wrong := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}
	if resp := send(map[string]any{"query": query, "extensions": wrong}); len(resp.Errors) != 1 {
		t.Errorf("a document with a hash that is not its own ran: %s", resp.raw)
	}
}

func TestIntrospectionSwitch(t *testing.T) {
	e := newEnv(t, 0)
	closed := newHandler(e.store, e.broker, e.auth, Options{NoIntrospection: true}, transport.Options{})
	ask := func(h http.Handler, query string) gqlResponse {
		body, _ := json.Marshal(map[string]any{"query": query})
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp gqlResponse
		resp.Status, resp.raw = rec.Code, rec.Body.Bytes()
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, q := range []string{`{ __schema { queryType { name } } }`, `{ __type(name: "Referral") { name } }`, `{ ...F } fragment F on Query { __schema { types { name } } }`} {
		if code, _ := ask(closed, q).code(t); code != string(storage.CodeForbidden) {
			t.Errorf("%s with introspection off: code %s, want FORBIDDEN", q, code)
		}
		ask(e.handler, q).mustData(t, &map[string]any{})
	}
	var d struct {
		Typename string `json:"__typename"`
	}
	ask(closed, `{ __typename }`).mustData(t, &d)
	if d.Typename != "Query" {
		t.Errorf("__typename with introspection off: %q", d.Typename)
	}
}

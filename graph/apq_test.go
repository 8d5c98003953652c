package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/storage"
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

// TestPersistedQueriesPartitionedByOrganization: one partner registering
// more documents than the whole cache used to hold (1,000) evicts only
// its own; another organization's document is still served by hash, and
// so is an admin's (issue 21, 'also' list).
func TestPersistedQueriesPartitionedByOrganization(t *testing.T) {
	e := newEnv(t, 0)
	h := exportServer(t, e)
	send := func(bearer, doc string, withDoc bool) gqlResponse {
		sum := sha256.Sum256([]byte(doc))
		body := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}}
		if withDoc {
			body["query"] = doc
		}
		req := jsonPost(body)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := exchangeWith(h, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	victim := transporttest.HS(t, jwt.MapClaims{"sub": "v", "role": "partner", "org": "org-victim", "exp": transporttest.InAnHour()})
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	flooder := transporttest.HS(t, jwt.MapClaims{"sub": "f", "role": "partner", "org": "org-flood", "exp": transporttest.InAnHour()})
	var d map[string]any
	send(victim, "{ mine: __typename }", true).mustData(t, &d)
	send(admin, "{ ours: __typename }", true).mustData(t, &d)
	for i := range apqScopeDocuments + 1 {
		send(flooder, fmt.Sprintf("{ f%d: __typename }", i), true).mustData(t, &d)
	}
	send(victim, "{ mine: __typename }", false).mustData(t, &d)
	send(admin, "{ ours: __typename }", false).mustData(t, &d)
	if code, _ := send(flooder, "{ f0: __typename }", false).code(t); code != string(storage.CodePersistedQueryNotFound) {
		t.Errorf("the flooder's oldest document: %s, want PERSISTED_QUERY_NOT_FOUND (its partition holds %d)", code, apqScopeDocuments)
	}
}

// exchangeWith serves req with h and decodes the JSON response.
func exchangeWith(h http.Handler, req *http.Request) (gqlResponse, error) {
	return (&env{handler: h}).exchange(req)
}

// TestPersistedQueryPartitionBytes: a partition keeps at most
// apqScopeBytes of documents, dropping its least recently used first.
func TestPersistedQueryPartitionBytes(t *testing.T) {
	c := newAPQCache()
	ctx := storage.WithCaller(t.Context(), storage.Caller{Subject: "p", Role: storage.RolePartner, OrganizationID: "org-a"})
	doc := strings.Repeat("x", apqMaxDocumentBytes)
	n := apqScopeBytes/apqMaxDocumentBytes + 8
	for i := range n {
		c.Add(ctx, fmt.Sprint(i), doc)
	}
	p, _ := c.scopes.Get(apqScope(ctx))
	if _, kept := c.Get(ctx, "0"); kept || p.bytes > apqScopeBytes || p.docs.Len() != apqScopeBytes/apqMaxDocumentBytes {
		t.Errorf("after %d documents of 32 KiB: first kept %v, %d bytes in %d documents; want at most %d bytes", n, kept, p.bytes, p.docs.Len(), apqScopeBytes)
	}
}

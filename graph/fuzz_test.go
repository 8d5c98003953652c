package graph

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
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

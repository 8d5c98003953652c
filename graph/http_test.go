package graph

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/graph/transport"
	"referrals/storage"
)

// TestGraphQLOverHTTP checks the status codes and media types of the
// GraphQL-over-HTTP specification that clients depend on; the full audit
// runs in CI (.ci/http-audit).
func TestGraphQLOverHTTP(t *testing.T) {
	e := newEnv(t, 3)
	post := func(body, contentType, accept string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		return r
	}
	get := func(params url.Values, accept string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/query?"+params.Encode(), nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		return r
	}
	const gqlResp = "application/graphql-response+json"
	tests := []struct {
		name      string
		req       *http.Request
		status    int
		mediaType string
		hasData   bool
	}{
		{"OK", post(`{"query":"{ referrals { totalCount } }"}`, "application/json", ""), 200, "application/json", true},
		{"OKGraphQLResponse", post(`{"query":"{ referrals { totalCount } }"}`, "application/json", gqlResp), 200, gqlResp, true},
		{"OKGet", get(url.Values{"query": {"{ tags { id } }"}}, ""), 200, "application/json", true},
		{"OKAnyAccept", post(`{"query":"{ tags { id } }"}`, "application/json", "*/*"), 200, "application/json", true},
		{"FieldErrorKeepsData", post(`{"query":"{ referrals(first: 500) { totalCount } }"}`, "application/json", gqlResp), 200, gqlResp, true},
		{"ErrParse", post(`{"query":"{ referrals("}`, "application/json", gqlResp), 400, gqlResp, false},
		{"ErrParseLegacyJSON", post(`{"query":"{ referrals("}`, "application/json", "application/json"), 200, "application/json", false},
		{"ErrValidation", post(`{"query":"{ nope }"}`, "application/json", gqlResp), 400, gqlResp, false},
		{"ErrVariables", post(`{"query":"query($n: Int) { referrals(first: $n) { totalCount } }","variables":{"n":"x"}}`, "application/json", gqlResp), 400, gqlResp, false},
		{"ErrBodyNotJSON", post(`{"query":`, "application/json", gqlResp), 400, gqlResp, false},
		{"ErrBodyNotObject", post(`["{ tags { id } }"]`, "application/json", ""), 400, "application/json", false},
		{"ErrQueryMissing", post(`{"variables":{}}`, "application/json", gqlResp), 400, gqlResp, false},
		{"ErrQueryNotString", post(`{"query":{"a":1}}`, "application/json", ""), 400, "application/json", false},
		{"ErrVariablesNotObject", post(`{"query":"{ tags { id } }","variables":"{}"}`, "application/json", ""), 400, "application/json", false},
		{"ErrContentType", post(`{ tags { id } }`, "text/plain", ""), 415, "application/json", false},
		{"ErrCharset", post(`{"query":"{ tags { id } }"}`, "application/json; charset=utf-16", ""), 415, "application/json", false},
		{"ErrAccept", post(`{"query":"{ tags { id } }"}`, "application/json", "text/html"), 406, "application/json", false},
		{"ErrBodyTooLarge", post(`{"query":"{ tags { id } }","variables":{"pad":"`+strings.Repeat("x", transport.DefaultMaxBodyBytes)+`"}}`, "application/json", ""), 413, "application/json", false},
		{"ErrGetVariables", get(url.Values{"query": {"{ tags { id } }"}, "variables": {"nope"}}, ""), 400, "application/json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, tt.req)
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.mediaType) || !strings.Contains(ct, "utf-8") {
				t.Errorf("Content-Type = %q, want %s; charset=utf-8", ct, tt.mediaType)
			}
			body := rec.Body.String()
			if got := strings.Contains(body, `"data"`); got != tt.hasData {
				t.Errorf("data entry present = %v, want %v: %s", got, tt.hasData, body)
			}
			if !tt.hasData && !strings.Contains(body, `"code":"BAD_USER_INPUT"`) {
				t.Errorf("error without BAD_USER_INPUT code: %s", body)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id header")
			}
		})
	}
}

// TestInternalErrorsDoNotLeak reads a referral whose stored status is not a
// known one: the client gets an INTERNAL error naming the request id, the
// rest of the response still arrives, and nothing of the cause leaks.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t, 0)
	now := time.Now()
	// Written around the store, which refuses to write such a status.
	client, err := mongo.Connect(options.Client().ApplyURI(testURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	bad := bson.D{{Key: "_id", Value: "odd"}, {Key: "status", Value: "Bogus"}, {Key: "referralSource", Value: string(storage.SourceP2P)},
		{Key: "createdDateTime", Value: now}, {Key: "updatedDateTime", Value: now}}
	if _, err := client.Database(e.db).Collection("referrals").InsertOne(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"query":"{ referral(id: \"odd\") { status } tags(category: PRODUCTS) { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "req-42")
	resp := e.do(t, req)
	code, msg := resp.code(t)
	if code != "INTERNAL" || msg != "internal error (request id req-42)" {
		t.Errorf("got %s %q, want INTERNAL with the request id", code, msg)
	}
	if strings.Contains(string(resp.raw), "Bogus") {
		t.Errorf("the cause leaked: %s", resp.raw)
	}
	if !strings.Contains(string(resp.Data), `"tags":[{`) {
		t.Errorf("the healthy field is missing: %s", resp.Data)
	}
}

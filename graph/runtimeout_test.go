package graph

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"referrals/graph/transport"
)

// TestOperationsRunWithinTheirTimeLimit: an operation that runs past the
// request's run timeout is stopped and answered with COMPLEXITY_LIMIT
// (before, it ran on past the write deadline and the client got an empty
// reply: four heavy requests at once took 108 s that way). A timeout of
// 1 ns has passed before the first read of the store.
func TestOperationsRunWithinTheirTimeLimit(t *testing.T) {
	e := newEnv(t, 30)
	h := newHandler(e.store, e.broker, e.auth, Options{RunTimeout: time.Nanosecond}, transport.Options{})
	body, _ := json.Marshal(map[string]any{"query": `{ referrals(first: 5) { totalCount nodes { id } } referralStats(groupBy: [STATUS]) { total { count } } }`})
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp struct {
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if rec.Code != http.StatusOK || len(resp.Errors) == 0 {
		t.Fatalf("%d %s: want errors", rec.Code, rec.Body)
	}
	for _, e := range resp.Errors {
		if e.Extensions["code"] != "COMPLEXITY_LIMIT" || !strings.Contains(e.Message, "time limit") {
			t.Errorf("error %q %v, want COMPLEXITY_LIMIT naming the time limit", e.Message, e.Extensions)
		}
	}
}

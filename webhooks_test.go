package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"referrals/graph/export"
)

// hookRequest is one POST a receiver got.
type hookRequest struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint on loopback that answers each request
// with the status answer gives it (1 for the first) and reports them.
type receiver struct {
	URL    string
	got    chan hookRequest
	mu     sync.Mutex
	n      int
	answer func(n int, r hookRequest) int
}

func newReceiver(t *testing.T, answer func(n int, r hookRequest) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan hookRequest, 10000), answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := hookRequest{header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.n++
		n := rc.n
		rc.mu.Unlock()
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(n, req)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d to request %d", status, n)
		rc.got <- req
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hook"
	return rc
}

// next returns the receiver's next request, failing the test after a
// minute without one.
func (rc *receiver) next(t *testing.T) hookRequest {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no webhook delivery within a minute")
	}
	return hookRequest{}
}

// graphQL posts a query with an optional bearer token and returns data
// and errors as JSON.
func graphQL(t *testing.T, base, token, query string) (data map[string]any, errs []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	header := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		header["Authorization"] = "Bearer " + token
	}
	status, b := request(t, context.Background(), http.MethodPost, base+"/query", string(body), header)
	var out struct {
		Data   map[string]any
		Errors []map[string]any
	}
	if err := json.Unmarshal([]byte(b), &out); err != nil || status >= 500 {
		t.Fatalf("%s: %d %s", query, status, b)
	}
	return out.Data, out.Errors
}

// mustGraphQL is graphQL for a query that must not fail.
func mustGraphQL(t *testing.T, base, token, query string) map[string]any {
	t.Helper()
	data, errs := graphQL(t, base, token, query)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", query, errs)
	}
	return data
}

// dig reads a path of keys out of decoded JSON.
func dig(v any, path ...string) any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// createHook registers a webhook for url and returns its id and secret.
func createHook(t *testing.T, base, token, input string) (id, secret string) {
	t.Helper()
	data := mustGraphQL(t, base, token, `mutation { createWebhook(input: {`+input+`}) { secret webhook { id } } }`)
	return dig(data, "createWebhook", "webhook", "id").(string), dig(data, "createWebhook", "secret").(string)
}

// createNamed creates a referral named name and returns its id.
func createNamed(t *testing.T, base, token, name string) string {
	t.Helper()
	data := mustGraphQL(t, base, token, fmt.Sprintf(`mutation { createReferral(input: { referralSource: PARTNER_LED
		customerProfile: { name: %q, address: { addressLine1: "1 Main Street", city: "Leeds", country: "GB" },
		contacts: [{ firstName: "Ana", lastName: "Lopez", email: "ana@example.com" }] } }) { id } }`, name))
	return dig(data, "createReferral", "id").(string)
}

// verified checks a delivery's signature with the Standard Webhooks
// library and returns its body.
func verified(t *testing.T, secret string, r hookRequest) map[string]any {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(r.body, r.header); err != nil {
		t.Fatalf("signature: %v (headers %v)", err, r.header)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return body
}

// webhookSelection is the selection a delivery's data holds.
var webhookSelection = `referralChanged { id type referralId changedFields at referral { ` + export.ReferralFields + ` } }`

// TestWebhookDeliversWhatASubscriptionReceives registers a webhook and
// subscribes (over SSE) with the same selection; each change's delivery,
// verified with the Standard Webhooks library, holds exactly the event the
// subscription received, under its id.
func TestWebhookDeliversWhatASubscriptionReceives(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--webhook-allow-private")
	rc := newReceiver(t, nil)
	hookID, secret := createHook(t, base, "", fmt.Sprintf("url: %q, description: \"CRM sync\"", rc.URL))
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < len("whsec_")+32 {
		t.Errorf("secret %q: want whsec_ and the base64 of at least 24 bytes", secret)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := openSSE(t, ctx, base, "", "subscription { "+webhookSelection+" }")
	waitForSubscriptions(t, base, 1)

	first := createNamed(t, base, "", "Webhook One")
	mustGraphQL(t, base, "", fmt.Sprintf(`mutation { updateReferral(id: %q, expectedVersion: 1, patch: { details: { dealValue: "10.50" } }) { id } }`, first))
	for i := range 2 {
		var ev struct {
			Data map[string]json.RawMessage
		}
		if err := json.Unmarshal([]byte((<-events).Data), &ev); err != nil {
			t.Fatal(err)
		}
		r := rc.next(t)
		body := verified(t, secret, r)
		want := map[string]any{}
		_ = json.Unmarshal(ev.Data["referralChanged"], &want)
		gotData, _ := json.Marshal(body["data"])
		wantData, _ := json.Marshal(want)
		if string(gotData) != string(wantData) {
			t.Errorf("delivery %d data:\n%s\nsubscription event:\n%s", i, gotData, wantData)
		}
		if id := r.header.Get("webhook-id"); id != want["id"] {
			t.Errorf("webhook-id %q, the subscription's event id %q", id, want["id"])
		}
		wantType := []string{"referral.created", "referral.updated"}[i]
		if body["type"] != wantType || body["timestamp"] != want["at"] {
			t.Errorf("delivery %d: type %v timestamp %v, want %s at %v", i, body["type"], body["timestamp"], wantType, want["at"])
		}
	}
	settled(t, base, hookID, 2)
	data := mustGraphQL(t, base, "", fmt.Sprintf(`{ webhook(id: %q) { id url events description enabled disabledReason organizationId
		deliveries(first: 10) { nodes { eventType status nextAttemptAt attempts { responseStatus error responseBody durationMs } } } } }`, hookID))
	nodes := dig(data, "webhook", "deliveries", "nodes").([]any)
	if len(nodes) != 2 {
		t.Fatalf("deliveries %v, want 2", nodes)
	}
	for _, n := range nodes {
		attempts := dig(n, "attempts").([]any)
		if dig(n, "status") != "SUCCEEDED" || dig(n, "nextAttemptAt") != nil || len(attempts) != 1 ||
			dig(attempts[0], "responseStatus") != 200.0 || !strings.HasPrefix(dig(attempts[0], "responseBody").(string), "answer 200") {
			t.Errorf("delivery %v: want SUCCEEDED after one attempt answered 200", n)
		}
	}
	if dig(data, "webhook", "organizationId") != nil || dig(data, "webhook", "description") != "CRM sync" || dig(data, "webhook", "enabled") != true {
		t.Errorf("webhook %v", data["webhook"])
	}
}

// TestWebhookRetries: a delivery answered 500 and 503 is attempted again
// with the same webhook-id until a 200; one that always fails is FAILED
// after the schedule's attempts, and a redelivery makes it again under
// the same id.
func TestWebhookRetries(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--webhook-allow-private", "--webhook-retry-schedule", "0s,0s,0s")
	var mu sync.Mutex
	failing := map[string]bool{} // customer names whose deliveries always fail
	rc := newReceiver(t, func(n int, r hookRequest) int {
		mu.Lock()
		defer mu.Unlock()
		for name, fail := range failing {
			if fail && strings.Contains(string(r.body), name) {
				return http.StatusInternalServerError
			}
		}
		return []int{500, 503, 200}[min(n-1, 2)]
	})
	hookID, secret := createHook(t, base, "", fmt.Sprintf("url: %q", rc.URL))
	retried := createNamed(t, base, "", "Retried Ltd")
	var ids []string
	for range 3 {
		r := rc.next(t)
		verified(t, secret, r)
		ids = append(ids, r.header.Get("webhook-id"))
	}
	if ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Errorf("webhook-ids %v, want one id on every attempt", ids)
	}
	d := deliveryOf(t, base, hookID, retried, "SUCCEEDED")
	if got := attemptStatuses(d); got != "500 503 200" {
		t.Errorf("attempts %s, want 500 503 200", got)
	}

	mu.Lock()
	failing["Doomed Ltd"] = true
	mu.Unlock()
	doomed := createNamed(t, base, "", "Doomed Ltd")
	for range 3 {
		rc.next(t)
	}
	d = deliveryOf(t, base, hookID, doomed, "FAILED")
	if got := attemptStatuses(d); got != "500 500 500" || dig(d, "nextAttemptAt") != nil {
		t.Errorf("attempts %s, next %v; want three 500s and none due", got, dig(d, "nextAttemptAt"))
	}

	mu.Lock()
	failing["Doomed Ltd"] = false
	mu.Unlock()
	data := mustGraphQL(t, base, "", fmt.Sprintf(`mutation { redeliverWebhookDelivery(id: %q) { id status } }`, dig(d, "id")))
	if dig(data, "redeliverWebhookDelivery", "status") != "PENDING" {
		t.Errorf("redeliver: %v", data)
	}
	r := rc.next(t)
	verified(t, secret, r)
	if r.header.Get("webhook-id") != dig(d, "eventId") {
		t.Errorf("redelivered as %q, first delivered as %q", r.header.Get("webhook-id"), dig(d, "eventId"))
	}
	d = deliveryOf(t, base, hookID, doomed, "SUCCEEDED")
	if got := attemptStatuses(d); got != "500 500 500 200" {
		t.Errorf("after the redelivery: attempts %s, want 500 500 500 200", got)
	}
}

// deliveryOf waits until the delivery of hookID about referral has
// status, and returns it.
func deliveryOf(t *testing.T, base, hookID, referral, status string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data := mustGraphQL(t, base, "", fmt.Sprintf(`{ webhook(id: %q) { deliveries(first: 100) { nodes {
			id eventId referralId status nextAttemptAt attempts { responseStatus error } } } } }`, hookID))
		for _, n := range dig(data, "webhook", "deliveries", "nodes").([]any) {
			if dig(n, "status") == status && dig(n, "referralId") == referral {
				return n.(map[string]any)
			}
		}
	}
	t.Fatalf("no %s delivery about %s within a minute", status, referral)
	return nil
}

// settled waits until hookID has n deliveries and none is due.
func settled(t *testing.T, base, hookID string, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data := mustGraphQL(t, base, "", fmt.Sprintf(`{ webhook(id: %q) { deliveries(first: 100) { nodes { nextAttemptAt } } } }`, hookID))
		nodes := dig(data, "webhook", "deliveries", "nodes").([]any)
		due := 0
		for _, d := range nodes {
			if dig(d, "nextAttemptAt") != nil {
				due++
			}
		}
		if len(nodes) == n && due == 0 {
			return
		}
	}
	t.Fatalf("webhook %s: never %d settled deliveries", hookID, n)
}

func attemptStatuses(d map[string]any) string {
	var out []string
	for _, a := range dig(d, "attempts").([]any) {
		out = append(out, fmt.Sprint(dig(a, "responseStatus")))
	}
	return strings.Join(out, " ")
}

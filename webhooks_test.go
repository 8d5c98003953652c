package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
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

func newReceiver(t testing.TB, answer func(n int, r hookRequest) int) *receiver {
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
func (rc *receiver) next(t testing.TB) hookRequest {
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
	// The subscription's events in order; the deliveries, which may
	// arrive in either order (attempts run concurrently), matched to
	// them by webhook-id.
	subscribed := map[any]map[string]any{}
	order := map[any]int{}
	for i := range 2 {
		var ev struct {
			Data map[string]json.RawMessage
		}
		if err := json.Unmarshal([]byte((<-events).Data), &ev); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{}
		_ = json.Unmarshal(ev.Data["referralChanged"], &want)
		subscribed[want["id"]], order[want["id"]] = want, i
	}
	for range 2 {
		r := rc.next(t)
		body := verified(t, secret, r)
		id := r.header.Get("webhook-id")
		want, ok := subscribed[id]
		if !ok {
			t.Errorf("webhook-id %q is none of the subscription's event ids (or came twice)", id)
			continue
		}
		delete(subscribed, id)
		i := order[id]
		gotData, _ := json.Marshal(body["data"])
		wantData, _ := json.Marshal(want)
		if string(gotData) != string(wantData) {
			t.Errorf("delivery %d data:\n%s\nsubscription event:\n%s", i, gotData, wantData)
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

// TestWebhookLifecycle: a ping is attempted at once and logged; after a
// rotation both secrets sign for a day (each verifies on its own with the
// Standard Webhooks library); a 410 disables the webhook with its reason;
// enabling it again clears the reason; deleting it makes it unknown.
func TestWebhookLifecycle(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--webhook-allow-private")
	var gone sync.Map // customer names answered 410
	rc := newReceiver(t, func(_ int, r hookRequest) int {
		status := http.StatusOK
		gone.Range(func(name, _ any) bool {
			if strings.Contains(string(r.body), name.(string)) {
				status = http.StatusGone
			}
			return true
		})
		return status
	})
	hookID, oldSecret := createHook(t, base, "", fmt.Sprintf("url: %q", rc.URL))

	data := mustGraphQL(t, base, "", fmt.Sprintf(`mutation { pingWebhook(id: %q) { eventId eventType referralId status attempts { responseStatus responseBody } } }`, hookID))
	ping := rc.next(t)
	body := verified(t, oldSecret, ping)
	if body["type"] != "webhook.ping" || dig(body, "data", "webhookId") != hookID || ping.header.Get("webhook-id") != dig(data, "pingWebhook", "eventId") {
		t.Errorf("ping body %v, header id %q; answer %v", body, ping.header.Get("webhook-id"), data)
	}
	if dig(data, "pingWebhook", "status") != "SUCCEEDED" || dig(data, "pingWebhook", "referralId") != nil {
		t.Errorf("pingWebhook answered %v, want SUCCEEDED with its attempt", data)
	}

	data = mustGraphQL(t, base, "", fmt.Sprintf(`mutation { rotateWebhookSecret(id: %q) { secret webhook { id } } }`, hookID))
	newSecret := dig(data, "rotateWebhookSecret", "secret").(string)
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotated secret %q", newSecret)
	}
	createNamed(t, base, "", "Rotated Ltd")
	r := rc.next(t)
	if sigs := strings.Fields(r.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Errorf("webhook-signature %q: want two v1 signatures during the overlap", r.header.Get("webhook-signature"))
	}
	for _, secret := range []string{newSecret, oldSecret} {
		one := r
		one.header = r.header.Clone()
		sigs := strings.Fields(r.header.Get("webhook-signature"))
		ok := false
		for _, sig := range sigs { // each signature alone, so that each secret is shown to sign
			one.header.Set("webhook-signature", sig)
			wh, _ := standardwebhooks.NewWebhook(secret)
			ok = ok || wh.Verify(one.body, one.header) == nil
		}
		if !ok {
			t.Errorf("no signature of the delivery verifies with secret %s…", secret[:10])
		}
	}

	gone.Store("Gone Ltd", true)
	createNamed(t, base, "", "Gone Ltd")
	rc.next(t)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		data = mustGraphQL(t, base, "", fmt.Sprintf(`{ webhook(id: %q) { enabled disabledReason } }`, hookID))
		if dig(data, "webhook", "enabled") == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a 410 did not disable the webhook")
		}
	}
	if reason, _ := dig(data, "webhook", "disabledReason").(string); !strings.Contains(reason, "410") {
		t.Errorf("disabledReason %q, want it to name the 410", reason)
	}
	data = mustGraphQL(t, base, "", fmt.Sprintf(`mutation { updateWebhook(id: %q, input: {enabled: true, description: "back"}) { enabled disabledReason description } }`, hookID))
	if dig(data, "updateWebhook", "enabled") != true || dig(data, "updateWebhook", "disabledReason") != nil || dig(data, "updateWebhook", "description") != "back" {
		t.Errorf("enabled again: %v", data)
	}
	data = mustGraphQL(t, base, "", fmt.Sprintf(`mutation { deleteWebhook(id: %q) }`, hookID))
	if dig(data, "deleteWebhook") != hookID {
		t.Errorf("deleteWebhook answered %v", data)
	}
	data = mustGraphQL(t, base, "", fmt.Sprintf(`{ webhook(id: %q) { id } webhooks { nodes { id } } }`, hookID))
	if data["webhook"] != nil || len(dig(data, "webhooks", "nodes").([]any)) != 0 {
		t.Errorf("after the delete: %v", data)
	}
	_, errs := graphQL(t, base, "", fmt.Sprintf(`mutation { pingWebhook(id: %q) { id } }`, hookID))
	if len(errs) != 1 || dig(errs[0], "extensions", "code") != "NOT_FOUND" {
		t.Errorf("ping of a deleted webhook: %v, want NOT_FOUND", errs)
	}
}

// TestWebhookURLsArePublic: without --webhook-allow-private, a URL that
// is not https or whose host is not public is BAD_USER_INPUT naming why,
// and no webhook is made.
func TestWebhookURLsArePublic(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0")
	for _, url := range []string{
		"http://hooks.example.com/x", "ftp://hooks.example.com/x", "https://user:pw@hooks.example.com/x", "not a url",
		"https://127.0.0.1/x", "https://localhost/x", "https://10.1.2.3/x", "https://172.16.0.1/x", "https://192.168.1.1/x",
		"https://169.254.169.254/latest/meta-data", "https://100.64.0.1/x", "https://224.0.0.1/x", "https://0.0.0.0/x",
		"https://[::1]/x", "https://[fd00::1]/x", "https://[fe80::1]/x", "https://[::ffff:127.0.0.1]/x", "https://[fd00:ec2::254]/x",
	} {
		_, errs := graphQL(t, base, "", fmt.Sprintf(`mutation { createWebhook(input: {url: %q}) { secret } }`, url))
		if len(errs) != 1 || dig(errs[0], "extensions", "code") != "BAD_USER_INPUT" {
			t.Errorf("%s: %v, want BAD_USER_INPUT", url, errs)
			continue
		}
		t.Logf("%s: %s", url, errs[0]["message"])
	}
	data := mustGraphQL(t, base, "", `{ webhooks { nodes { id } } }`)
	if n := len(dig(data, "webhooks", "nodes").([]any)); n != 0 {
		t.Errorf("%d webhooks made from refused URLs", n)
	}
}

// TestPartnerWebhooks: a partner's webhook gets exactly what its
// subscription gets (only referrals its organization takes part in, the
// customer's address and contacts hidden until it accepts), belongs to
// its organization, and is invisible and untouchable to another
// organization; an admin's gets every change.
func TestPartnerWebhooks(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--webhook-allow-private", "--jwt-secret", edgeSecret)
	admin := adminToken(t)
	alpha := partnerToken(t, "p-alpha", "org-alpha", time.Now().Add(time.Hour))
	beta := partnerToken(t, "p-beta", "org-beta", time.Now().Add(time.Hour))
	alphaHooks, adminHooks := newReceiver(t, nil), newReceiver(t, nil)
	alphaHook, alphaSecret := createHook(t, base, alpha, fmt.Sprintf("url: %q", alphaHooks.URL))
	_, adminSecret := createHook(t, base, admin, fmt.Sprintf("url: %q", adminHooks.URL))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := openSSE(t, ctx, base, alpha, "subscription { "+webhookSelection+" }")
	if events == nil {
		t.Fatal("alpha's subscription was refused")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, metrics := request(t, ctx, http.MethodGet, base+"/metrics", "", map[string]string{"Authorization": "Bearer " + admin})
		if strings.Contains(metrics, "\ngraphql_subscriptions 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alpha's subscription never started")
		}
	}

	hidden := createNamed(t, base, admin, "Not Alpha's Ltd")
	shared := createNamed(t, base, admin, "Alpha's Ltd")
	data := mustGraphQL(t, base, admin, fmt.Sprintf(`mutation { inviteParticipant(referralId: %q, input: {organizationId: "org-alpha", organizationName: "Alpha"}) { id } }`, shared))
	participant := dig(data, "inviteParticipant", "id").(string)
	mustGraphQL(t, base, alpha, fmt.Sprintf(`mutation { respondToInvitation(participantId: %q, response: ACCEPT) { id } }`, participant))

	// Created ×2, invited, accepted, in any order: attempts to one
	// webhook run concurrently, and the README tells receivers to expect
	// events out of order.
	got := map[any]int{}
	for range 4 {
		got[dig(verified(t, adminSecret, adminHooks.next(t)), "data", "referralId")]++
	}
	if got[hidden] != 1 || got[shared] != 3 {
		t.Errorf("admin's webhook got changes of %v, want one of %s and three of %s", got, hidden, shared)
	}
	// Invited (customer details hidden), accepted (shown): the
	// subscription's order; the deliveries may arrive in either.
	var subscribed []string
	for range 2 {
		var ev struct{ Data map[string]json.RawMessage }
		if err := json.Unmarshal([]byte((<-events).Data), &ev); err != nil {
			t.Fatal(err)
		}
		var want any
		_ = json.Unmarshal(ev.Data["referralChanged"], &want)
		wantData, _ := json.Marshal(want)
		subscribed = append(subscribed, string(wantData))
	}
	for range 2 {
		body := verified(t, alphaSecret, alphaHooks.next(t))
		gotData, _ := json.Marshal(body["data"])
		i := slices.Index(subscribed, string(gotData))
		if i < 0 {
			t.Errorf("alpha's delivery:\n%s\nis neither of alpha's subscription's events:\n%s", gotData, strings.Join(subscribed, "\n"))
			continue
		}
		subscribed[i] = "" // each once
		if dig(body, "data", "referralId") != shared {
			t.Errorf("alpha's webhook got a change of %v", dig(body, "data", "referralId"))
		}
		address := dig(body, "data", "referral", "customerProfile", "address")
		if (i == 0) != (address == nil) {
			t.Errorf("alpha's delivery of event %d shows the address %v (hidden until it accepts)", i, address)
		}
	}

	data = mustGraphQL(t, base, alpha, `{ webhooks { nodes { id organizationId } } }`)
	if nodes := dig(data, "webhooks", "nodes").([]any); len(nodes) != 1 || dig(nodes[0], "organizationId") != "org-alpha" {
		t.Errorf("alpha's webhooks: %v, want its one, of org-alpha", nodes)
	}
	data = mustGraphQL(t, base, beta, fmt.Sprintf(`{ webhook(id: %q) { id } webhooks { nodes { id } } }`, alphaHook))
	if data["webhook"] != nil || len(dig(data, "webhooks", "nodes").([]any)) != 0 {
		t.Errorf("beta sees alpha's webhook: %v", data)
	}
	for _, m := range []string{
		fmt.Sprintf(`updateWebhook(id: %q, input: {enabled: false}) { id }`, alphaHook),
		fmt.Sprintf(`deleteWebhook(id: %q)`, alphaHook),
		fmt.Sprintf(`rotateWebhookSecret(id: %q) { secret }`, alphaHook),
		fmt.Sprintf(`pingWebhook(id: %q) { id }`, alphaHook),
	} {
		_, errs := graphQL(t, base, beta, "mutation { "+m+" }")
		if len(errs) != 1 || dig(errs[0], "extensions", "code") != "NOT_FOUND" {
			t.Errorf("beta: %s: %v, want NOT_FOUND", m, errs)
		}
	}
	data = mustGraphQL(t, base, admin, `{ webhooks { nodes { id } } }`)
	if n := len(dig(data, "webhooks", "nodes").([]any)); n != 2 {
		t.Errorf("the admin sees %d webhooks, want both", n)
	}
}

// referralOf is the referral id and change type of a delivery's body.
func referralOf(t *testing.T, r hookRequest) (id, typ string) {
	t.Helper()
	var body struct {
		Type string
		Data struct{ ReferralID string }
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return body.Data.ReferralID, body.Type
}

// TestWebhookKillDuringABurstLosesNoChange kills a server process
// (SIGKILL) while 4 clients create referrals and its webhook receives
// them, and restarts it on the same data directory: every referral the
// store holds is delivered (at least once), whether or not its client was
// answered and whether or not its delivery was made or attempted before
// the kill.
func TestWebhookKillDuringABurstLosesNoChange(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--demo", "0", "--webhook-allow-private", "--webhook-timeout", "1s", "--webhook-retry-schedule", "0s,0s,0s,0s,0s,0s,0s,0s"}
	first := startProcess(t, args...)
	rc := newReceiver(t, nil)
	createHook(t, first.URL, "", fmt.Sprintf("url: %q", rc.URL))

	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := tryCreate(first.URL, fmt.Sprint("Hooked ", c, "-", i)); err != nil {
					return // the server is gone
				}
			}
		})
	}
	delivered := map[string]int{}
	for len(delivered) < 40 { // well into the burst
		id, typ := referralOf(t, rc.next(t))
		if typ != "referral.created" {
			t.Fatalf("a %s delivery, want referral.created", typ)
		}
		delivered[id]++
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	wg.Wait()

	second := startProcess(t, args...)
	marker, err := tryCreate(second.URL, "After The Kill")
	if err != nil {
		t.Fatal(err)
	}
	stored := allReferralIDs(t, second.URL)
	missing := 0
	for id := range stored {
		if delivered[id] == 0 {
			missing++
		}
	}
	for missing > 0 {
		id, _ := referralOf(t, rc.next(t))
		if delivered[id]++; delivered[id] == 1 && stored[id] {
			missing--
		}
	}
	again := 0
	for id, n := range delivered {
		if !stored[id] {
			t.Errorf("a delivery for referral %s, which the store does not hold", id)
		}
		again += n - 1
	}
	if delivered[marker] == 0 {
		t.Error("the change made after the restart was not delivered")
	}
	t.Logf("%d referrals stored across the kill, each delivered; %d deliveries made twice (at least once, as promised)", len(stored), again)
}

// TestTwoProcessesShareDeliveries runs two server processes on one store,
// each taking half the writes: every change is delivered exactly once
// (a receiver answering 200 gets each webhook-id once: no delivery was
// made or attempted by both), and both processes made attempts.
func TestTwoProcessesShareDeliveries(t *testing.T) {
	args := []string{"--demo", "0", "--webhook-allow-private"}
	first := startProcess(t, append(args, "--data-dir", t.TempDir(), "--embedded-listen", "127.0.0.1:0")...)
	second := startProcess(t, append(args, "--mongodb-uri", first.EmbeddedURI)...)
	rc := newReceiver(t, nil)
	hookID, _ := createHook(t, first.URL, "", fmt.Sprintf("url: %q", rc.URL))
	const n = 60
	var wg sync.WaitGroup
	for i, base := range []string{first.URL, second.URL} {
		wg.Go(func() {
			for j := range n / 2 {
				if _, err := tryCreate(base, fmt.Sprint("Shared ", i, "-", j)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ids := map[string]int{}
	for len(ids) < n {
		ids[rc.next(t).header.Get("webhook-id")]++
	}
	for id, count := range ids {
		if count != 1 {
			t.Errorf("webhook-id %s received %d times", id, count)
		}
	}
	// Two processes attempting one delivery would both record an attempt.
	settled(t, first.URL, hookID, n)
	data := mustGraphQL(t, first.URL, "", fmt.Sprintf(`{ webhook(id: %q) { deliveries(first: 100) { nodes { id attempts { at } } } } }`, hookID))
	for _, d := range dig(data, "webhook", "deliveries", "nodes").([]any) {
		if a := dig(d, "attempts").([]any); len(a) != 1 {
			t.Errorf("delivery %v: %d attempts, want 1", dig(d, "id"), len(a))
		}
	}
	for _, p := range []*serverProcess{first, second} {
		_, metrics := httpGet(t, p.URL+"/metrics")
		if !strings.Contains(metrics, `webhook_attempts_total{outcome="succeeded"}`) {
			t.Errorf("%s made no attempt", p.URL)
		}
	}
}

// TestWebhookInputs: an update that gives nothing changes nothing and
// answers the webhook (it was INTERNAL); an owner has at most 20
// webhooks; a description holds what stored text may, as a referral's
// notes (ESC, NUL and bidi overrides were stored).
func TestWebhookInputs(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--webhook-allow-private")
	hookID, _ := createHook(t, base, "", `url: "http://127.0.0.1:9/x", description: "kept"`)
	for _, input := range []string{`{}`, `{filter: null, description: null}`, `{url: null}`, `{enabled: null}`} {
		data := mustGraphQL(t, base, "", fmt.Sprintf(`mutation { updateWebhook(id: %q, input: %s) { id description enabled } }`, hookID, input))
		if dig(data, "updateWebhook", "id") != hookID || dig(data, "updateWebhook", "description") != "kept" || dig(data, "updateWebhook", "enabled") != true {
			t.Errorf("updateWebhook %s: %v, want the webhook unchanged", input, data)
		}
	}
	for range 19 { // 20 in all, the most one owner may have
		createHook(t, base, "", `url: "http://127.0.0.1:9/x"`)
	}
	_, errs := graphQL(t, base, "", `mutation { createWebhook(input: {url: "http://127.0.0.1:9/x"}) { secret } }`)
	if len(errs) != 1 || dig(errs[0], "extensions", "code") != "BAD_USER_INPUT" || !strings.Contains(errs[0]["message"].(string), "at most 20") {
		t.Errorf("a 21st webhook: %v, want BAD_USER_INPUT naming the bound", errs)
	}
	for _, desc := range []string{"a\u001b[31mred", "nul\u0000", "bidi \u202e", strings.Repeat("x", 1001)} {
		q, _ := json.Marshal(desc)
		for _, m := range []string{
			fmt.Sprintf(`createWebhook(input: {url: "http://127.0.0.1:9/x", description: %s}) { secret }`, q),
			fmt.Sprintf(`updateWebhook(id: %q, input: {description: %s}) { id }`, hookID, q),
		} {
			_, errs := graphQL(t, base, "", "mutation { "+m+" }")
			if len(errs) != 1 || dig(errs[0], "extensions", "code") != "BAD_USER_INPUT" || !strings.Contains(errs[0]["message"].(string), "description") {
				t.Errorf("%.60s: %v, want BAD_USER_INPUT naming the description", m, errs)
			}
		}
	}
}

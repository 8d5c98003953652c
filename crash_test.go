package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseFeed subscribes to referralChanged over SSE, after lastEventID when
// not empty, and sends each event (its `id:` line, type and referral id)
// to the returned channel, which is closed when the stream ends.
func sseFeed(t *testing.T, ctx context.Context, base, lastEventID string) <-chan [3]string {
	t.Helper()
	body := `{"query":"subscription { referralChanged { type referralId } }"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan [3]string, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		id := ""
		for lines := bufio.NewScanner(resp.Body); lines.Scan(); {
			if v, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
				id = v
			}
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				var ev struct {
					Data struct {
						ReferralChanged struct{ Type, ReferralID string }
					}
				}
				_ = json.Unmarshal([]byte(data), &ev)
				if ev.Data.ReferralChanged.Type == "" {
					out <- [3]string{id, "error", data}
					continue
				}
				out <- [3]string{id, ev.Data.ReferralChanged.Type, ev.Data.ReferralChanged.ReferralID}
				id = ""
			}
		}
	}()
	return out
}

// tryCreate creates a referral and returns its id, or an error once the
// server is gone.
func tryCreate(base, name string) (string, error) {
	body, _ := json.Marshal(map[string]any{"query": `mutation($name: String!) { createReferral(input: {referralSource: P2P,
		customerProfile: {name: $name, address: {addressLine1: "1 Loop", city: "Oslo", country: "NO"}}}) { id } }`,
		"variables": map[string]any{"name": name}})
	resp, err := http.Post(base+"/query", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Data struct{ CreateReferral struct{ ID string } }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Data.CreateReferral.ID == "" {
		return "", fmt.Errorf("createReferral: status %d, %v", resp.StatusCode, err)
	}
	return out.Data.CreateReferral.ID, nil
}

// allReferralIDs pages through every referral of the server.
func allReferralIDs(t *testing.T, base string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	after := "null"
	for {
		data := postQuery(t, base, `{ referrals(first: 100, after: `+after+`) { nodes { id } pageInfo { hasNextPage endCursor } } }`)
		page := data["referrals"].(map[string]any)
		for _, n := range page["nodes"].([]any) {
			ids[n.(map[string]any)["id"].(string)] = true
		}
		info := page["pageInfo"].(map[string]any)
		if !info["hasNextPage"].(bool) {
			return ids
		}
		cursor, _ := json.Marshal(info["endCursor"])
		after = string(cursor)
	}
}

// TestKillDuringABurstLosesNoChange kills a server process (SIGKILL)
// while 4 clients create referrals and a subscriber follows, and restarts
// it on the same data directory. Resuming after the last event it
// received, the subscriber gets the rest: over both streams, every
// referral in the store has exactly one CREATED event, whether or not its
// client was answered.
func TestKillDuringABurstLosesNoChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	first := startProcess(t, "--data-dir", dir, "--demo", "0")
	live := sseFeed(t, ctx, first.URL, "")
	waitForSubscriptions(t, first.URL, 1)

	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := tryCreate(first.URL, fmt.Sprint("Burst ", c, "-", i)); err != nil {
					return // the server is gone
				}
			}
		})
	}
	created := map[string]int{}
	lastID := ""
	for len(created) < 40 { // well into the burst
		ev, ok := <-live
		if !ok || ev[1] != "CREATED" {
			t.Fatalf("before the kill: %v, want CREATED events", ev)
		}
		created[ev[2]]++
		lastID = ev[0]
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	wg.Wait()
	for ev := range live { // what reached the subscriber before the kill
		created[ev[2]]++
		lastID = ev[0]
	}

	second := startProcess(t, "--data-dir", dir, "--demo", "0")
	resumed := sseFeed(t, ctx, second.URL, lastID) // gets every change after lastID, whenever it starts
	marker, err := tryCreate(second.URL, "After The Kill")
	if err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		select {
		case ev, ok := <-resumed:
			if !ok || ev[1] != "CREATED" {
				t.Fatalf("resumed: %v, want only CREATED events", ev)
			}
			created[ev[2]]++
			done = ev[2] == marker
		case <-ctx.Done():
			t.Fatal("the resumed stream never delivered the change made after the restart")
		}
	}
	stored := allReferralIDs(t, second.URL)
	for id := range stored {
		if n := created[id]; n != 1 {
			t.Errorf("referral %s had %d CREATED events, want 1", id, n)
		}
	}
	for id := range created {
		if !stored[id] {
			t.Errorf("an event for referral %s, which the store does not hold", id)
		}
	}
	t.Logf("%d referrals stored across the kill, each with one event", len(stored))
}

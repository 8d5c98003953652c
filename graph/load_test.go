//go:build load

package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestLoad runs 32 clients against one server for LOAD_DURATION (60s by
// default) on loopback: queries, mutations, malformed requests and abrupt
// WebSocket disconnects. It checks no 5xx and no crash, that goroutines
// and heap return to their level after the load, and that every accepted
// mutation is in the store.
//
// Run: go test -tags load ./graph -run TestLoad -v
func TestLoad(t *testing.T) {
	duration := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LOAD_DURATION")); err == nil {
		duration = d
	}
	e := newEnv(t, demoSize)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := apiGoroutines()

	var requests, serverErrors, wsSessions atomic.Int64
	post := func(body string) (int, []byte) {
		resp, err := client.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Errorf("request failed: %v", err)
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		requests.Add(1)
		if resp.StatusCode >= 500 {
			serverErrors.Add(1)
			t.Errorf("status %d for %.200s: %s", resp.StatusCode, body, b)
		}
		return resp.StatusCode, b
	}
	mutation := func(query string, vars map[string]any) map[string]any {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		_, out := post(string(b))
		var r struct {
			Data   map[string]any
			Errors []any
		}
		_ = json.Unmarshal(out, &r)
		if len(r.Errors) > 0 {
			return nil
		}
		return r.Data
	}

	type accepted struct {
		id      string
		version int
		notes   string
	}
	results := make([]accepted, 32)
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			created := mutation(createMutation, map[string]any{"input": validInput()})
			mine := accepted{id: created["createReferral"].(map[string]any)["id"].(string), version: 1}
			for ctx.Err() == nil {
				switch rng.IntN(10) {
				case 0, 1, 2:
					b, _ := json.Marshal(map[string]any{"query": nestedPageQuery, "variables": map[string]any{"first": 1 + rng.IntN(20)}})
					post(string(b))
				case 3, 4:
					notes := fmt.Sprintf("worker %d at %d", w, mine.version)
					if mutation(updateMutation, map[string]any{"id": mine.id, "v": mine.version, "patch": map[string]any{"details": map[string]any{"notes": notes}}}) != nil {
						mine.version++
						mine.notes = notes
					}
				case 5, 6, 7:
					post([]string{`{"query":`, `[]`, `{"query":"{ referrals(first: 1000) { totalCount } }"}`,
						`{"query":"{ referrals(after: \"garbage\") { totalCount } }"}`, `{"query":"{ nope }"}`,
						`{"query":"query($f: ReferralFilter) { referrals(filter: $f) { totalCount } }","variables":{"f":{"dealValue":{"min":"x"}}}}`}[rng.IntN(6)])
				default:
					conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("dial: %v", err)
						}
						continue
					}
					wsSessions.Add(1)
					_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`))
					_ = conn.Write(ctx, websocket.MessageText, []byte(`{"id":"1","type":"subscribe","payload":{"query":"subscription { referralChanged { type referralId } }"}}`))
					time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
					conn.CloseNow() // abrupt: no close handshake
				}
			}
			results[w] = mine
		}()
	}
	wg.Wait()
	srv.CloseClientConnections()
	client.CloseIdleConnections()

	// Every accepted mutation is in the store.
	for _, r := range results {
		var d struct {
			Referral struct {
				Version int
				Details struct{ Notes string }
			}
		}
		e.post(t, `query($id: ID!) { referral(id: $id) { version details { notes } } }`, map[string]any{"id": r.id}).mustData(t, &d)
		if d.Referral.Version != r.version || (r.notes != "" && d.Referral.Details.Notes != r.notes) {
			t.Errorf("referral %s: stored version %d notes %q, want %d %q", r.id, d.Referral.Version, d.Referral.Details.Notes, r.version, r.notes)
		}
	}

	// Goroutines and heap come back.
	var after runtime.MemStats
	goroutinesAfter := 0
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		goroutinesAfter = apiGoroutines()
		if goroutinesAfter <= goroutinesBefore+5 || time.Now().After(deadline) {
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%s: %d requests, %d WebSocket sessions cut off, %d server errors; goroutines %d before, %d after; heap %.1f MiB before, %.1f MiB after",
		duration, requests.Load(), wsSessions.Load(), serverErrors.Load(), goroutinesBefore, goroutinesAfter,
		float64(before.HeapAlloc)/(1<<20), float64(after.HeapAlloc)/(1<<20))
	if goroutinesAfter > goroutinesBefore+5 {
		t.Errorf("goroutines grew from %d to %d", goroutinesBefore, goroutinesAfter)
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
	}
	if after.HeapAlloc > before.HeapAlloc+64<<20 {
		t.Errorf("heap grew from %d to %d bytes", before.HeapAlloc, after.HeapAlloc)
	}
}

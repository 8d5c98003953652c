package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkBurst has 8 clients create N referrals at once over HTTP while
// S graphql-ws subscribers listen over WebSocket, all in one process on the
// embedded store. Per burst it reports, over every (change, subscriber)
// delivery: p50 and p99 of the time from the write's response to the
// delivery (a delivery before the writer got its response counts 0), the
// time from the last write's response to the last delivery, and the
// duplicates and misses summed over subscribers.
//
// Under -short (CI runs every benchmark once that way) only N=200, S=1.
//
// Run: go test ./graph -run '^$' -bench Burst -benchtime 1x
func BenchmarkBurst(b *testing.B) {
	for _, n := range []int{200, 1000} {
		for _, subs := range []int{1, 100, 1000} {
			if testing.Short() && (n > 200 || subs > 1) {
				continue
			}
			b.Run(fmt.Sprintf("changes=%d/subscribers=%d", n, subs), func(b *testing.B) { benchBurst(b, n, subs) })
		}
	}
}

const burstWriters = 8

// delivery is one event as a subscriber received it.
type delivery struct {
	referralID string
	at         time.Time
}

// deliveries is what one subscriber received.
type deliveries struct {
	mu  sync.Mutex
	got []delivery
}

func (d *deliveries) add(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, delivery{id, at})
}

// take returns what was received and starts over.
func (d *deliveries) take() []delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	got := d.got
	d.got = nil
	return got
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

func benchBurst(b *testing.B, changes, subscribers int) {
	e := newEnv(b, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	received := make([]deliveries, subscribers)
	var readers sync.WaitGroup
	var conns []*websocket.Conn
	for i := range subscribers {
		conn := subscribeOverWebSocket(b, ctx, srv.URL, "subscription { referralChanged { id type referralId } }")
		conns = append(conns, conn)
		readers.Go(func() {
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					return
				}
				pong(ctx, conn, data)
				if _, rest, ok := bytes.Cut(data, []byte(`"referralId":"`)); ok {
					id, _, _ := bytes.Cut(rest, []byte(`"`))
					received[i].add(string(id), time.Now())
				}
			}
		})
	}
	for deadline := time.Now().Add(time.Minute); e.broker.Subscribers() < subscribers; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d subscribed", e.broker.Subscribers(), subscribers)
		}
	}

	var latencies []time.Duration
	var tails []time.Duration
	var dups, misses int
	for b.Loop() {
		for i := range received {
			received[i].take()
		}
		written, err := burst(srv.URL, changes)
		if err != nil {
			b.Fatal(err)
		}
		var lastWrite time.Time
		for _, at := range written {
			if at.After(lastWrite) {
				lastWrite = at
			}
		}
		// Wait until every subscriber has every change, or a minute has
		// passed since the last write (then the rest are misses).
		for deadline := lastWrite.Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if allReceived(received, changes) {
				break
			}
		}
		var lastDelivery time.Time
		for i := range received {
			got := received[i].take()
			seen := map[string]bool{}
			for _, d := range got {
				w, ok := written[d.referralID]
				if !ok {
					continue // not this burst's
				}
				if seen[d.referralID] {
					dups++
					continue
				}
				seen[d.referralID] = true
				latencies = append(latencies, max(0, d.at.Sub(w)))
				if d.at.After(lastDelivery) {
					lastDelivery = d.at
				}
			}
			misses += changes - len(seen)
		}
		tails = append(tails, max(0, lastDelivery.Sub(lastWrite)))
	}
	b.StopTimer()
	slices.Sort(latencies)
	slices.Sort(tails)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if len(latencies) > 0 {
		b.ReportMetric(ms(latencies[len(latencies)/2]), "p50-ms")
		b.ReportMetric(ms(latencies[len(latencies)*99/100]), "p99-ms")
	}
	b.ReportMetric(ms(tails[len(tails)-1]), "last-ms")
	b.ReportMetric(float64(dups), "dups")
	b.ReportMetric(float64(misses), "misses")
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	cancel()
	readers.Wait()
}

// burst has burstWriters clients create n referrals through the API at
// url, and returns when each creation's response arrived, by referral id.
func burst(url string, n int) (map[string]time.Time, error) {
	var mu sync.Mutex
	written := map[string]time.Time{}
	var firstErr error
	var wg sync.WaitGroup
	body, _ := json.Marshal(map[string]any{"query": `mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }`, "variables": map[string]any{"input": validInput()}})
	for w := range burstWriters {
		wg.Go(func() {
			for i := w; i < n; i += burstWriters {
				resp, err := http.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				var out struct {
					Data struct{ CreateReferral struct{ ID string } }
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				at := time.Now()
				if err := json.Unmarshal(raw, &out); err != nil || out.Data.CreateReferral.ID == "" {
					mu.Lock()
					firstErr = fmt.Errorf("createReferral: %s", raw)
					mu.Unlock()
					return
				}
				mu.Lock()
				written[out.Data.CreateReferral.ID] = at
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return written, firstErr
}

// allReceived reports whether every subscriber has received n events.
func allReceived(received []deliveries, n int) bool {
	for i := range received {
		if received[i].count() < n {
			return false
		}
	}
	return true
}

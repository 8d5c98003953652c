package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"referrals/graph/transport"
	"referrals/storage"
)

// BenchmarkFanout measures one change delivered to 1, 100 and 1000
// subscribers of one process over WebSocket (graphql-transport-ws): the
// time from the write returning to the last subscriber receiving it (p50
// and p99 over the run's changes), the heap each subscription holds, and
// that the goroutine count returns to where it started once all leave.
//
// Run: go test ./graph -run '^$' -bench Fanout -benchtime 50x
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	e := newEnv(b, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := e.store.CreateReferral(storage.WithCaller(ctx, transport.DevCaller), storage.ReferralInput{
		ReferralSource: storage.SourceP2P,
		CustomerProfile: &storage.CustomerProfileInput{Name: ptr("Fan Out Ltd"),
			Address: &storage.Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}},
	})
	if err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	goroutinesBefore := apiGoroutines()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	arrivals := make(chan time.Time, n)
	var conns []*websocket.Conn
	for range n {
		conn := subscribeOverWebSocket(b, ctx, srv.URL, "subscription { referralChanged { type referralId referral { id version status } } }")
		conns = append(conns, conn)
		go func() {
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					return
				}
				pong(ctx, conn, data)
				var m struct{ Type string }
				_ = json.Unmarshal(data, &m)
				if m.Type == "next" {
					arrivals <- time.Now()
				}
			}
		}()
	}
	for deadline := time.Now().Add(time.Minute); e.broker.Subscribers() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d subscribed", e.broker.Subscribers(), n)
		}
	}
	runtime.GC()
	var subscribed runtime.MemStats
	runtime.ReadMemStats(&subscribed)

	var latencies []time.Duration
	version := r.Version
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.store.UpdateReferral(storage.WithCaller(ctx, transport.DevCaller), r.ID, version, storage.ReferralPatch{Details: &storage.DetailsInput{Notes: ptr("n")}}); err != nil {
			b.Fatal(err)
		}
		written := time.Now()
		version++
		var last time.Time
		for range n {
			select {
			case at := <-arrivals:
				if at.After(last) {
					last = at
				}
			case <-time.After(30 * time.Second):
				b.Fatal("a subscriber did not receive the change")
			}
		}
		latencies = append(latencies, last.Sub(written))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(int64(subscribed.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "heap-B/subscriber")

	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	srv.CloseClientConnections()
	cancel()
	for deadline := time.Now().Add(30 * time.Second); apiGoroutines() > goroutinesBefore+2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("goroutines: %d before the subscribers, %d after they left", goroutinesBefore, apiGoroutines())
		}
	}
	b.ReportMetric(float64(apiGoroutines()-goroutinesBefore), "goroutines-left")
}

func ptr[T any](v T) *T { return &v }

// pong answers a graphql-transport-ws ping as the protocol asks of
// clients: the server cuts off one that has not within two keep-alive
// intervals (20 s), which a long benchmark outlasts.
func pong(ctx context.Context, conn *websocket.Conn, msg []byte) {
	if bytes.Contains(msg, []byte(`"type":"ping"`)) {
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
	}
}

// subscribeOverWebSocket opens a graphql-transport-ws connection to the
// server at base and starts the subscription query on it (id "1"),
// without waiting for the acknowledgement.
func subscribeOverWebSocket(b *testing.B, ctx context.Context, base, query string) *websocket.Conn {
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		b.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	subscribe, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query}})
	for _, msg := range [][]byte{[]byte(`{"type":"connection_init"}`), subscribe} {
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
	}
	return conn
}

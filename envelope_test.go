package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer that a logger and a test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveFor runs the server with args and logs to logs until stop is
// called, and returns its base URL once it listens.
func serveFor(tb testing.TB, logs *syncBuffer, args ...string) (base string, stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	at := make(chan listening, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), func(string) string { return "" },
			slog.New(slog.NewTextHandler(logs, nil)), func(l listening) { at <- l })
	}()
	select {
	case l := <-at:
		return "http://" + l.API.String(), func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("shutdown: %v", err)
			}
		}
	case err := <-done:
		cancel()
		tb.Fatalf("server stopped: %v\n%s", err, logs)
	}
	return "", nil
}

// TestEmbeddedStoreWarnsWhenOutgrown starts the server on embedded stores
// of either side of embeddedComfortLimit (lowered to 30 here): past it the
// log says, once, that the embedded store holds more than it was measured
// with and how to point the server at MongoDB; below it, nothing.
func TestEmbeddedStoreWarnsWhenOutgrown(t *testing.T) {
	limit := embeddedComfortLimit
	embeddedComfortLimit = 30
	t.Cleanup(func() { embeddedComfortLimit = limit })
	for _, tt := range []struct {
		name  string
		demo  int
		warns int
	}{
		{"Small", 25, 0},
		{"Outgrown", 31, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			_, stop := serveFor(t, &logs, "--data-dir", t.TempDir(), "--demo", fmt.Sprint(tt.demo))
			stop()
			got := strings.Count(logs.String(), "the embedded store holds more referrals than it was measured with")
			if got != tt.warns || (got > 0 && !strings.Contains(logs.String(), "--mongodb-uri or MONGODB_URI")) {
				t.Errorf("%d warnings, want %d, naming --mongodb-uri and MONGODB_URI:\n%s", got, tt.warns, logs.String())
			}
		})
	}
}

// BenchmarkStart measures, on the embedded store, a first start that seeds
// N demo referrals (op=seed) and a later start on that store (op=restart):
// from run until the server is ready (/readyz) and has answered a read by
// id. Under -short (CI) only 200. The README's numbers:
//
//	go test . -run '^$' -bench Start -benchtime 3x
func BenchmarkStart(b *testing.B) {
	sizes := []int{200, 2000, 10000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		var seeded string
		b.Run(fmt.Sprintf("referrals=%d/op=seed", n), func(b *testing.B) {
			for range b.N {
				seeded = b.TempDir()
				startUntilReady(b, "--data-dir", seeded, "--demo", fmt.Sprint(n))
			}
		})
		b.Run(fmt.Sprintf("referrals=%d/op=restart", n), func(b *testing.B) {
			for range b.N {
				startUntilReady(b, "--data-dir", seeded, "--demo", fmt.Sprint(n))
			}
		})
	}
}

// startUntilReady starts the server, waits until it is ready and has
// answered a read by id, and stops it, untimed.
func startUntilReady(b *testing.B, args ...string) {
	b.Helper()
	var logs syncBuffer
	base, stop := serveFor(b, &logs, args...)
	defer func() {
		b.StopTimer()
		stop()
		b.StartTimer()
	}()
	ready, err := http.Get(base + "/readyz")
	if err != nil || ready.StatusCode != http.StatusOK {
		b.Fatalf("/readyz: %v %v\n%s", ready, err, logs.String())
	}
	ready.Body.Close()
	resp, err := http.Post(base+"/query", "application/json", strings.NewReader(`{"query":"{ referral(id: \"none\") { id } }"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("a read by id: %v %v\n%s", resp, err, logs.String())
	}
	resp.Body.Close()
}

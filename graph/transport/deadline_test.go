package transport_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"referrals/graph/transport"
)

// TestSlowBodyIsTimedOut: a request whose body dribbles in is answered
// 400 once the read deadline passes, whether it asks for an SSE stream or
// a plain response; the connection is not held.
func TestSlowBodyIsTimedOut(t *testing.T) {
	srv := httptest.NewServer(endpoint(t, transport.Options{ReadTimeout: 200 * time.Millisecond}))
	defer srv.Close()
	for name, accept := range map[string]string{"SSE": "text/event-stream", "Plain": "application/json"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			body, dribble := io.Pipe()
			defer dribble.Close()
			context.AfterFunc(ctx, func() { dribble.CloseWithError(ctx.Err()) })
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", accept)
			req.ContentLength = 100_000
			go func() { _, _ = dribble.Write([]byte(`{"query":"`)) }() // and nothing more
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("no answer while the body was still coming: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "in time") {
				t.Errorf("%d %s, want 400 saying the body did not come in time", resp.StatusCode, b)
			}
		})
	}
}

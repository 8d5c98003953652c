package transport_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
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

// TestStalledUploadIsCut: an upload's body may take as long as it keeps
// coming, but one that stops for the read timeout ends its handler's read
// with os.ErrDeadlineExceeded (an import whose client sent the headers
// and nothing more was still open after 300 s).
func TestStalledUploadIsCut(t *testing.T) {
	h := endpoint(t, transport.Options{ReadTimeout: 200 * time.Millisecond}).(*transport.Handler)
	read := make(chan error, 1)
	srv := httptest.NewServer(h.Upload(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		read <- err
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nthe first bytes"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the stalled body read ended with %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(20 * time.Second): // bounds a wait the old code never ended
		t.Fatal("the stalled body was still being read after 20 s")
	}
}

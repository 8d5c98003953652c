package transport_test

import (
	"bufio"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"referrals/graph/transport"
)

// TestWebSocketsArePinged: both WebSocket protocols get the keep-alive
// the README promises, seen by clients the project did not write (the npm
// graphql-ws client and the ws library, .ci/feed-client/ping.mjs):
// graphql-transport-ws gets the protocol's "ping", which gqlgen's
// keep-alive never sent (it goes to the legacy protocol only), and a
// client answering "pong" keeps its connection past two intervals; the
// legacy graphql-ws protocol gets "ka" (issue 21, 'also' list).
func TestWebSocketsArePinged(t *testing.T) {
	dir, _ := filepath.Abs("../../.ci/feed-client")
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("the test runs the npm graphql-ws client and needs Node.js: run `bash .ci/setup`")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws")); err != nil {
		t.Fatal("the npm graphql-ws client is not installed: run `bash .ci/setup`")
	}
	const interval, pings = 50 * time.Millisecond, 5
	srv := httptest.NewServer(endpoint(t, transport.Options{KeepAlive: interval}))
	defer srv.Close()
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(protocol, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "ping.mjs"), protocol, "ws"+strings.TrimPrefix(srv.URL, "http"), strconv.Itoa(pings))
			cmd.Stderr = t.Output()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var lines []string
			for s := bufio.NewScanner(out); s.Scan(); {
				lines = append(lines, s.Text())
			}
			if err := cmd.Wait(); err != nil || len(lines) != pings {
				t.Errorf("the client saw %q (%v), want %d pings", lines, err, pings)
			}
		})
	}
	t.Run("ClientNotAnsweringIsCutOff", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`))
		for {
			// reads pings, answers none
			if _, _, err := conn.Read(ctx); err != nil {
				if ctx.Err() != nil {
					t.Fatal("a client that never answers ping still has its connection")
				}
				return
			}
		}
	})
}

package graph

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWebSocketAndSSE runs a query over the graphql-transport-ws protocol
// and over Server-Sent Events on /query: the transports GraphiQL and
// integrators use for subscriptions.
func TestWebSocketAndSSE(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("GraphQLTransportWS", func(t *testing.T) {
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		send := func(msg string) {
			if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
		read := func() map[string]any {
			_, b, err := conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			return m
		}
		send(`{"type":"connection_init"}`)
		if m := read(); m["type"] != "connection_ack" {
			t.Fatalf("got %v, want connection_ack", m)
		}
		send(`{"id":"1","type":"subscribe","payload":{"query":"{ tags(category: SERVICE_TYPES) { id } }"}}`)
		next := read()
		if next["type"] != "next" || !strings.Contains(mustJSON(next["payload"]), `"ManagedServices"`) {
			t.Fatalf("got %v, want the service types", next)
		}
		if m := read(); m["type"] != "complete" {
			t.Fatalf("got %v, want complete", m)
		}
	})

	t.Run("ServerSentEvents", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`{"query":"{ tags(category: SERVICE_TYPES) { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") ||
			!strings.Contains(string(body), "event: next") || !strings.Contains(string(body), "ManagedServices") {
			t.Errorf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

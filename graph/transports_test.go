package graph

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
		c := dialWS(t, ctx, srv.URL, false)
		c.send(ctx, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "{ tags(category: SERVICE_TYPES) { id } }"}})
		if next := c.read(ctx); next["type"] != "next" || !strings.Contains(mustJSON(next["payload"]), `"ManagedServices"`) {
			t.Fatalf("got %v, want the service types", next)
		}
		if m := c.read(ctx); m["type"] != "complete" {
			t.Fatalf("got %v, want complete", m)
		}
	})

	t.Run("ServerSentEvents", func(t *testing.T) {
		resp := postSSE(t, ctx, srv.URL, "{ tags(category: SERVICE_TYPES) { id } }", nil)
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

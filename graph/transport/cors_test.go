package transport_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"referrals/graph"
	"referrals/graph/transport"
	"referrals/storage"
)

func TestAllowedOrigins(t *testing.T) {
	srv := httptest.NewServer(endpoint(t, transport.Options{AllowedOrigins: []string{"https://app.example"}}))
	defer srv.Close()

	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := preflight("https://app.example"); resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused preflight: %d %v", resp.StatusCode, resp.Header)
	}

	post := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"query":"{ __typename }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if got := post("https://app.example").Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Errorf("allowed origin: Access-Control-Allow-Origin %q", got)
	}
	if got := post("https://evil.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin: Access-Control-Allow-Origin %q", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(origin string) error {
		h := http.Header{}
		h.Set("Origin", origin)
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h})
		if err == nil {
			conn.CloseNow()
		}
		return err
	}
	if err := dial("https://app.example"); err != nil {
		t.Errorf("WebSocket from an allowed origin: %v", err)
	}
	if err := dial("https://evil.example"); err == nil {
		t.Error("WebSocket from another origin was accepted")
	}
	if err := dial(srv.URL); err != nil {
		t.Errorf("WebSocket from the API's own origin (GraphiQL): %v", err)
	}
}

// endpoint is the GraphQL endpoint in open mode over the API's executor
// with no store behind it (a nil *storage.Store, never called): the edge
// needs none, and `{ __typename }` reads nothing.
func endpoint(t *testing.T, opts transport.Options) http.Handler {
	t.Helper()
	auth, err := transport.NewAuth(t.Context(), transport.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return transport.New(graph.NewExecutor((*storage.Store)(nil), nil, slog.New(slog.DiscardHandler), nil, graph.Options{}), auth, opts)
}

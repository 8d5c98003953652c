package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

// These tests talk to a real server over raw HTTP and WebSocket, as a
// client or an attacker would, in authenticated mode.

const edgeSecret = "edge-test-secret-of-enough-length"

// bearer signs a token with claims for the server started with edgeSecret.
func bearer(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(edgeSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func adminToken(t *testing.T) string {
	return bearer(t, jwt.MapClaims{"sub": "admin-1", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()})
}

func partnerToken(t *testing.T, sub, org string, exp time.Time) string {
	return bearer(t, jwt.MapClaims{"sub": sub, "role": "partner", "org": org, "exp": exp.Unix()})
}

// request sends a raw HTTP request and returns its status and body.
func request(t *testing.T, ctx context.Context, method, url, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNoHeaderSkipsAuthentication: whatever Upgrade or Connection headers
// a request carries, it is not served without a token unless it really is
// a WebSocket handshake, which then authenticates at connection_init.
func TestNoHeaderSkipsAuthentication(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "3", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	query := `{"query":"{ tags { id } }"}`
	for name, header := range map[string]map[string]string{
		"UpgradeSSE":       {"Upgrade": "x", "Accept": "text/event-stream"},
		"UpgradeJSON":      {"Upgrade": "x"},
		"WebSocketOnPOST":  {"Upgrade": "websocket", "Connection": "Upgrade", "Accept": "text/event-stream"},
		"ConnectionHeader": {"Connection": "Upgrade", "Accept": "text/event-stream"},
		"PlainSSE":         {"Accept": "text/event-stream"},
	} {
		t.Run(name, func(t *testing.T) {
			header["Content-Type"] = "application/json"
			status, body := request(t, ctx, http.MethodPost, base+"/query", query, header)
			if status != http.StatusUnauthorized || strings.Contains(body, "data") || !strings.Contains(body, `"UNAUTHENTICATED"`) {
				t.Errorf("status %d, body %.200s; want 401 UNAUTHENTICATED and no data", status, body)
			}
		})
	}
	t.Run("WebSocketHeadersOnAPlainGET", func(t *testing.T) {
		status, body := request(t, ctx, http.MethodGet, base+"/query?query=%7B__typename%7D", "",
			map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"})
		if status != http.StatusUnauthorized || !strings.Contains(body, `"UNAUTHENTICATED"`) {
			t.Errorf("status %d, body %.200s; want 401 UNAUTHENTICATED", status, body)
		}
	})
	t.Run("WebSocketWithoutToken", func(t *testing.T) {
		conn := dialGraphQLWS(t, ctx, base)
		if err := wsInit(ctx, conn, ""); websocket.CloseStatus(err) != 4401 {
			t.Errorf("connection_init without a token: %v, want close 4401", err)
		}
	})
}

// dialGraphQLWS opens a graphql-transport-ws connection to base.
func dialGraphQLWS(t *testing.T, ctx context.Context, base string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// wsInit sends connection_init with token and returns nil once it is
// acknowledged, or the error (a close status) that ended the connection.
func wsInit(ctx context.Context, conn *websocket.Conn, token string) error {
	init, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	if err := conn.Write(ctx, websocket.MessageText, init); err != nil {
		return err
	}
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var m struct{ Type string }
		_ = json.Unmarshal(msg, &m)
		if m.Type == "connection_ack" {
			return nil
		}
	}
}

// TestStreamCapCoversEveryTransport: one token's streams are capped
// (default 10) whether they are SSE requests, WebSocket connections or
// imports.
func TestStreamCapCoversEveryTransport(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	token := partnerToken(t, "greedy", "org-g", time.Now().Add(time.Hour))
	for i := range 9 {
		if events := openSSE(t, ctx, base, token, "subscription { referralChanged { type } }"); events == nil {
			t.Fatalf("SSE stream %d was refused", i+1)
		}
	}
	conn := dialGraphQLWS(t, ctx, base)
	if err := wsInit(ctx, conn, token); err != nil {
		t.Fatalf("the 10th stream (a WebSocket): %v", err)
	}
	status, body := request(t, ctx, http.MethodPost, base+"/query", `{"query":"subscription { referralChanged { type } }"}`,
		map[string]string{"Content-Type": "application/json", "Accept": "text/event-stream", "Authorization": "Bearer " + token})
	if status != http.StatusTooManyRequests || !strings.Contains(body, `"STREAM_LIMIT"`) {
		t.Errorf("the 11th stream (SSE): %d %.200s, want 429 STREAM_LIMIT", status, body)
	}
	if err := wsInit(ctx, dialGraphQLWS(t, ctx, base), token); websocket.CloseStatus(err) != 4403 {
		t.Errorf("the 11th stream (a WebSocket): %v, want close 4403", err)
	}
	other := partnerToken(t, "someone-else", "org-g", time.Now().Add(time.Hour))
	if events := openSSE(t, ctx, base, other, "subscription { referralChanged { type } }"); events == nil {
		t.Error("another identity's first stream was refused")
	}
	// An import is a stream too: an admin holding the cap in SSE requests
	// is refused one, before anything is read.
	admin := adminToken(t)
	for i := range 10 {
		if events := openSSE(t, ctx, base, admin, "subscription { referralChanged { type } }"); events == nil {
			t.Fatalf("the admin's SSE stream %d was refused", i+1)
		}
	}
	if res := postImport(t, ctx, base, admin, "", "application/x-ndjson", "{}\n"); res.status != http.StatusTooManyRequests || !strings.Contains(res.body, `"STREAM_LIMIT"`) {
		t.Errorf("an import past the cap: %d %.200s, want 429 STREAM_LIMIT", res.status, res.body)
	}
}

// sseEvent is one event of an SSE response.
type sseEvent struct{ Event, Data string }

// openSSE starts an SSE request and returns its events, or nil when the
// server answered anything but a stream.
func openSSE(t *testing.T, ctx context.Context, base, token, query string) <-chan sseEvent {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		return nil
	}
	t.Cleanup(func() { resp.Body.Close() })
	out := make(chan sseEvent, 16)
	go func() {
		defer close(out)
		lines := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for lines.Scan() {
			line := lines.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.Event != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

// TestSlowBodyWithoutTokenIsRefusedAtOnce: an SSE request without a token
// is refused before its body is read, however slowly the body comes.
func TestSlowBodyWithoutTokenIsRefusedAtOnce(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body, dribble := io.Pipe()
	defer dribble.Close()
	context.AfterFunc(ctx, func() { dribble.CloseWithError(ctx.Err()) })
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.ContentLength = 100_000
	go func() { _, _ = dribble.Write([]byte(`{"query":"`)) }() // and nothing more
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer while the body was still coming: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", resp.StatusCode)
	}
}

// TestExpiredTokenEndsSubscriptions: a subscription ends when its token
// expires, with an UNAUTHENTICATED error saying so, over SSE and WebSocket.
func TestExpiredTokenEndsSubscriptions(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// JWT expiry has a resolution of seconds; 4 s leaves time to subscribe.
	shortLived := func() string { return partnerToken(t, "short-lived", "org-s", time.Now().Add(4*time.Second)) }
	const sub = "subscription { referralChanged { type } }"

	t.Run("SSE", func(t *testing.T) {
		events := openSSE(t, ctx, base, shortLived(), sub)
		if events == nil {
			t.Fatal("the subscription was refused")
		}
		var got []sseEvent
		for ev := range events {
			got = append(got, ev)
		}
		if len(got) != 2 || got[0].Event != "next" || !strings.Contains(got[0].Data, `"UNAUTHENTICATED"`) ||
			!strings.Contains(got[0].Data, "expired") || got[1].Event != "complete" {
			t.Errorf("events %v, want an UNAUTHENTICATED error, then complete", got)
		}
	})
	t.Run("WebSocket", func(t *testing.T) {
		conn := dialGraphQLWS(t, ctx, base)
		if err := wsInit(ctx, conn, shortLived()); err != nil {
			t.Fatal(err)
		}
		msg, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": sub}})
		_ = conn.Write(ctx, websocket.MessageText, msg)
		var types []string
		var errorPayload string
		for len(types) < 2 {
			_, b, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("after %v: %v", types, err)
			}
			var m struct {
				Type    string
				Payload json.RawMessage
			}
			_ = json.Unmarshal(b, &m)
			if m.Type == "ping" || m.Type == "pong" {
				continue
			}
			types = append(types, m.Type)
			if m.Type == "next" {
				errorPayload = string(m.Payload)
			}
		}
		if types[0] != "next" || !strings.Contains(errorPayload, `"UNAUTHENTICATED"`) || types[1] != "complete" {
			t.Errorf("messages %v (%s), want an UNAUTHENTICATED error, then complete", types, errorPayload)
		}
		// Its last subscription over, the connection of an expired token
		// is closed and gives back its stream slot (issue 21, 'also' list).
		if err := readUntilClosed(ctx, conn); websocket.CloseStatus(err) != 4401 {
			t.Errorf("after its last subscription: %v, want close 4401", err)
		}
	})
	t.Run("WebSocketWithoutSubscriptions", func(t *testing.T) {
		conn := dialGraphQLWS(t, ctx, base)
		if err := wsInit(ctx, conn, shortLived()); err != nil {
			t.Fatal(err)
		}
		if err := readUntilClosed(ctx, conn); websocket.CloseStatus(err) != 4401 {
			t.Errorf("at the token's expiry: %v, want close 4401", err)
		}
	})
}

// readUntilClosed reads a WebSocket, skipping pings and pongs, and returns
// the error that ends it; any other message is an error.
func readUntilClosed(ctx context.Context, conn *websocket.Conn) error {
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var m struct{ Type string }
		if _ = json.Unmarshal(b, &m); m.Type != "ping" && m.Type != "pong" {
			return fmt.Errorf("unexpected message %s", b)
		}
	}
}

// TestPersistedQueryMistakes: the client's persisted-query mistakes are
// BAD_USER_INPUT, and one organization's registered documents are not
// visible to another's hash-only requests.
func TestPersistedQueryMistakes(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	post := func(token string, body map[string]any) (int, string) {
		b, _ := json.Marshal(body)
		return request(t, ctx, http.MethodPost, base+"/query", string(b), map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + token})
	}
	query := "{ tags(category: SOLUTIONS) { id } }"
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	a := partnerToken(t, "a", "org-a", time.Now().Add(time.Hour))
	b := partnerToken(t, "b", "org-b", time.Now().Add(time.Hour))
	for name, ext := range map[string]any{
		"ErrHashMismatch": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)},
		"ErrNotAnObject":  "abc",
		"ErrVersion":      map[string]any{"version": 2, "sha256Hash": hash},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := post(a, map[string]any{"query": query, "extensions": map[string]any{"persistedQuery": ext}})
			if status >= 500 || !strings.Contains(body, `"BAD_USER_INPUT"`) || strings.Contains(body, `"data"`) {
				t.Errorf("%d %s, want BAD_USER_INPUT", status, body)
			}
		})
	}
	t.Run("ScopedPerOrganization", func(t *testing.T) {
		persisted := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
		if _, body := post(a, map[string]any{"query": query, "extensions": persisted}); !strings.Contains(body, `"data"`) {
			t.Fatalf("registering: %s", body)
		}
		if _, body := post(a, map[string]any{"extensions": persisted}); !strings.Contains(body, `"data"`) {
			t.Errorf("the same organization by hash: %s", body)
		}
		if _, body := post(b, map[string]any{"extensions": persisted}); !strings.Contains(body, `"PERSISTED_QUERY_NOT_FOUND"`) {
			t.Errorf("another organization by hash: %s, want PERSISTED_QUERY_NOT_FOUND", body)
		}
	})
}

// TestMetricsNeedAnAdminToken: with authentication on, /metrics is not
// open to whoever reaches the port.
func TestMetricsNeedAnAdminToken(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if status, _ := request(t, ctx, http.MethodGet, base+"/metrics", "", nil); status != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", status)
	}
	partner := partnerToken(t, "p", "org-p", time.Now().Add(time.Hour))
	if status, _ := request(t, ctx, http.MethodGet, base+"/metrics", "", map[string]string{"Authorization": "Bearer " + partner}); status != http.StatusForbidden {
		t.Errorf("with a partner token: %d, want 403", status)
	}
	status, body := request(t, ctx, http.MethodGet, base+"/metrics", "", map[string]string{"Authorization": "Bearer " + adminToken(t)})
	if status != http.StatusOK || !strings.Contains(body, "graphql_subscriptions") {
		t.Errorf("with an admin token: %d %.100s", status, body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		if status, _ := request(t, ctx, http.MethodGet, base+path, "", nil); status != http.StatusOK {
			t.Errorf("public %s: %d, want 200", path, status)
		}
	}
}

// TestWebSocketBounds: one connection runs at most as many subscriptions
// as an identity may hold streams (10), and a connection that never says
// connection_init is closed.
func TestWebSocketBounds(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := dialGraphQLWS(t, ctx, base)
	if err := wsInit(ctx, conn, partnerToken(t, "many-subs", "org-m", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	subscribe := func(id string) {
		msg, _ := json.Marshal(map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": "subscription { referralChanged { type } }"}})
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 11 {
		subscribe(fmt.Sprint(i))
	}
	// One (they start concurrently) is refused with an error and
	// completed; the others live on.
	var refused []string
	refusedID := ""
	for len(refused) < 2 {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", refused, err)
		}
		var m struct {
			ID, Type string
			Payload  json.RawMessage
		}
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "ping", "pong":
		case "next":
			if refusedID != "" || !strings.Contains(string(m.Payload), `"STREAM_LIMIT"`) {
				t.Fatalf("got %s after subscription %q was refused", b, refusedID)
			}
			refusedID = m.ID
			refused = append(refused, "next")
		case "complete":
			if m.ID != refusedID {
				t.Fatalf("subscription %s ended, not the refused %q", m.ID, refusedID)
			}
			refused = append(refused, "complete")
		default:
			t.Fatalf("got %s", b)
		}
	}

	t.Run("NoConnectionInit", func(t *testing.T) {
		silent := dialGraphQLWS(t, ctx, base)
		if _, _, err := silent.Read(ctx); websocket.CloseStatus(err) == -1 {
			t.Errorf("a connection that never said connection_init: %v, want it closed", err)
		}
	})
}

// TestUnreadableQueryStringIsRefused: Go's URL parsing drops a pair it
// cannot read (an unencoded ";"), so a filter or the variables written so
// would be left out silently — an export of everything, a query without
// its variables. Such query strings are refused, 400 BAD_USER_INPUT.
func TestUnreadableQueryStringIsRefused(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "5", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token := "Bearer " + adminToken(t)
	for name, target := range map[string]string{
		"Export":          `/export/referrals?filter={"status":["WON"]};`,
		"ExportSeparator": `/export/referrals?orderBy={"field":"DEAL_VALUE"};filter={"status":["WON"]}`,
		"QueryVariables":  `/query?query=query($f:ReferralFilter){referrals(filter:$f){totalCount}}&variables={"f":{"status":["WON"]}};`,
	} {
		t.Run(name, func(t *testing.T) {
			accept := "application/json"
			if strings.HasPrefix(target, "/export") {
				accept = "application/x-ndjson"
			}
			status, body := request(t, ctx, http.MethodGet, base+target, "", map[string]string{"Authorization": token, "Accept": accept})
			if status != http.StatusBadRequest || !strings.Contains(body, `"BAD_USER_INPUT"`) || !strings.Contains(body, "%3B") {
				t.Errorf("status %d, body %.300s; want 400 BAD_USER_INPUT saying to encode ';'", status, body)
			}
		})
	}
}

// TestExportRefusesUnknownParameters: a parameter the export does not know
// (a misspelt FILTER, an extra one) is 400 naming it; before, it was
// ignored and the export held everything the caller may see.
func TestExportRefusesUnknownParameters(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "5", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token := "Bearer " + adminToken(t)
	for _, c := range []struct{ query, names string }{
		{`FILTER=%7B%22status%22%3A%5B%22WON%22%5D%7D`, `"FILTER"`},
		{`filter=%7B%7D&bogus=1`, `"bogus"`},
	} {
		status, body := request(t, ctx, http.MethodGet, base+"/export/referrals?"+c.query, "", map[string]string{"Authorization": token, "Accept": "application/x-ndjson"})
		if status != http.StatusBadRequest || !strings.Contains(body, `"BAD_USER_INPUT"`) || !strings.Contains(body, strings.ReplaceAll(c.names, `"`, `\"`)) {
			t.Errorf("?%s: status %d, body %.300s; want 400 BAD_USER_INPUT naming %s", c.query, status, body, c.names)
		}
	}
}

// TestQueryParametersAreReadOnce: a GET to /query that gives a parameter
// twice, or spells one with other letter case ("Variables"), is 400
// naming it; before, the first was used, or the query ran without its
// variables. Other parameters (a cache buster) are ignored.
func TestQueryParametersAreReadOnce(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "5", "--jwt-secret", edgeSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token := "Bearer " + adminToken(t)
	query := "query=" + url.QueryEscape(`query($f:ReferralFilter){referrals(filter:$f){totalCount}}`)
	vars := url.QueryEscape(`{"f":{"status":["WON"]}}`)
	for params, says := range map[string]string{
		query + "&Variables=" + vars:                        `\"Variables\" is not a parameter`,
		query + "&variables=" + vars + "&variables=" + vars: "variables: given 2 times",
		query + "&" + query:                                 "query: given 2 times",
	} {
		status, body := request(t, ctx, http.MethodGet, base+"/query?"+params, "", map[string]string{"Authorization": token, "Accept": "application/json"})
		if status != http.StatusBadRequest || !strings.Contains(body, says) {
			t.Errorf("?%.80s: status %d, body %.300s; want 400 saying %s", params, status, body, says)
		}
	}
	if status, body := request(t, ctx, http.MethodGet, base+"/query?"+query+"&variables="+vars+"&_=123", "", map[string]string{"Authorization": token, "Accept": "application/json"}); status != http.StatusOK || !strings.Contains(body, "totalCount") {
		t.Errorf("with a cache buster: status %d, body %.300s", status, body)
	}
}

// TestExportCORS: /export/referrals has /query's CORS policy, so a page
// of an allowed origin can download an export: its preflight is answered
// 204 (405 before), the export carries Access-Control-Allow-Origin, and
// another origin gets neither (issue 21, 'also' list).
func TestExportCORS(t *testing.T) {
	const app, other = "https://app.example.com", "https://evil.example.com"
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "3", "--jwt-secret", edgeSecret, "--allowed-origins", app)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	send := func(t *testing.T, method, origin string, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, base+"/export/referrals", nil)
		req.Header.Set("Origin", origin)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	preflight := map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
	t.Run("Preflight", func(t *testing.T) {
		resp := send(t, http.MethodOptions, app, preflight)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: %d %v, want 204 allowing %s to GET with Authorization", resp.StatusCode, resp.Header, app)
		}
	})
	t.Run("PreflightOfAnotherOrigin", func(t *testing.T) {
		if resp := send(t, http.MethodOptions, other, preflight); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight of %s: %d %v, want 403 without CORS headers", other, resp.StatusCode, resp.Header)
		}
	})
	auth := map[string]string{"Authorization": "Bearer " + adminToken(t)}
	t.Run("Export", func(t *testing.T) {
		resp := send(t, http.MethodGet, app, auth)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Content-Disposition") {
			t.Errorf("export: %d %v, want 200 readable by %s, its file name too", resp.StatusCode, resp.Header, app)
		}
	})
	t.Run("ExportToAnotherOrigin", func(t *testing.T) {
		if resp := send(t, http.MethodGet, other, auth); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("export to %s: %v, want no Access-Control-Allow-Origin", other, resp.Header)
		}
	})
	t.Run("OtherMethods", func(t *testing.T) {
		if resp := send(t, http.MethodPost, app, auth); resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
			t.Errorf("POST: %d %v, want 405 allowing GET", resp.StatusCode, resp.Header)
		}
	})
}

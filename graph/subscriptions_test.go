package graph

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"referrals/graph/transport"
	"referrals/live"
	"referrals/storage"
)

const changedSubscription = `subscription Changed($filter: ReferralFilter) {
  referralChanged(filter: $filter) { type referralId changedFields at referral { id status version customerProfile { name } participants { organizationId } } }
}`

type changeEvent struct {
	ReferralChanged struct {
		Type, ReferralID string
		ChangedFields    []string
		At               time.Time
		Referral         struct {
			ID, Status string
			Version    int
		}
	}
}

// wsClient speaks one of the two WebSocket subprotocols.
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	legacy bool // graphql-ws (subscriptions-transport-ws) rather than graphql-transport-ws
}

func dialWS(t *testing.T, ctx context.Context, url string, legacy bool) *wsClient {
	t.Helper()
	proto := "graphql-transport-ws"
	if legacy {
		proto = "graphql-ws"
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &wsClient{t: t, conn: conn, legacy: legacy}
	c.send(ctx, map[string]any{"type": "connection_init", "payload": map[string]any{"client": "test"}})
	if m := c.read(ctx); m["type"] != "connection_ack" {
		t.Fatalf("got %v, want connection_ack", m)
	}
	return c
}

func (c *wsClient) send(ctx context.Context, msg map[string]any) {
	b, _ := json.Marshal(msg)
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next message that is not a keep-alive.
func (c *wsClient) read(ctx context.Context) map[string]any {
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m["type"] == "ping" {
			c.send(ctx, map[string]any{"type": "pong"})
		}
		if t := m["type"]; t != "ka" && t != "ping" && t != "pong" {
			return m
		}
	}
}

func (c *wsClient) subscribe(ctx context.Context, id string, vars map[string]any) {
	typ := "subscribe"
	if c.legacy {
		typ = "start"
	}
	c.send(ctx, map[string]any{"id": id, "type": typ, "payload": map[string]any{"query": changedSubscription, "variables": vars}})
}

// next returns the data of the next event, failing on anything else.
func (c *wsClient) next(ctx context.Context) changeEvent {
	m := c.read(ctx)
	want := "next"
	if c.legacy {
		want = "data"
	}
	if m["type"] != want {
		c.t.Fatalf("got %v, want %s", m, want)
	}
	var ev struct{ Data changeEvent }
	b, _ := json.Marshal(m["payload"])
	if err := json.Unmarshal(b, &ev); err != nil {
		c.t.Fatal(err)
	}
	return ev.Data
}

func TestSubscriptions(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, legacy := range []bool{false, true} {
		name := "GraphQLTransportWS"
		if legacy {
			name = "LegacyGraphQLWS"
		}
		t.Run(name, func(t *testing.T) {
			c := dialWS(t, ctx, srv.URL, legacy)
			c.subscribe(ctx, "all", nil)
			c.subscribe(ctx, "active", map[string]any{"filter": map[string]any{"status": []string{"ACTIVE"}}})
			waitForSubscribers(t, e, 2)

			r := e.create(t) // PENDING: only the unfiltered subscription sees it
			ev := c.next(ctx)
			if ev.ReferralChanged.Type != "CREATED" || ev.ReferralChanged.ReferralID != r.ID || ev.ReferralChanged.Referral.Version != 1 {
				t.Errorf("got %+v, want CREATED of %s", ev.ReferralChanged, r.ID)
			}
			e.post(t, statusMutation, map[string]any{"id": r.ID, "v": 1, "s": "ACTIVE"}).mustData(t, &struct{}{})
			got := map[string]changeEvent{}
			for range 2 {
				m := c.read(ctx)
				var p struct{ Data changeEvent }
				b, _ := json.Marshal(m["payload"])
				_ = json.Unmarshal(b, &p)
				got[m["id"].(string)] = p.Data
			}
			for _, id := range []string{"all", "active"} {
				ev := got[id].ReferralChanged
				if ev.Type != "STATUS_CHANGED" || ev.Referral.Status != "ACTIVE" || ev.Referral.Version != 2 ||
					strings.Join(ev.ChangedFields, ",") != "status,statusReason" || time.Since(ev.At) > time.Minute {
					t.Errorf("subscription %s got %+v", id, ev)
				}
			}
			stop := "complete"
			if legacy {
				stop = "stop"
			}
			c.send(ctx, map[string]any{"id": "all", "type": stop})
			c.send(ctx, map[string]any{"id": "active", "type": stop})
			waitForSubscribers(t, e, 0)
		})
	}

	t.Run("ServerSentEvents", func(t *testing.T) {
		resp := postSSE(t, ctx, srv.URL, changedSubscription, map[string]any{"filter": map[string]any{"customerName": "fourth coffee"}})
		defer resp.Body.Close()
		waitForSubscribers(t, e, 1)
		r := e.create(t)
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			data, ok := strings.CutPrefix(lines.Text(), "data: ")
			if !ok {
				continue
			}
			var ev struct{ Data changeEvent }
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Data.ReferralChanged.ReferralID != r.ID || ev.Data.ReferralChanged.Type != "CREATED" {
				t.Errorf("got %+v", ev.Data)
			}
			return
		}
		t.Fatalf("stream ended: %v", lines.Err())
	})

	t.Run("ErrBadFilter", func(t *testing.T) {
		c := dialWS(t, ctx, srv.URL, false)
		c.subscribe(ctx, "bad", map[string]any{"filter": map[string]any{"dealValue": map[string]any{}}})
		// The subscription fails at once: its one result carries the error,
		// then it completes, and nothing stays subscribed.
		m := c.read(ctx)
		if m["type"] != "next" || !strings.Contains(mustJSON(m["payload"]), `"code":"BAD_USER_INPUT"`) || !strings.Contains(mustJSON(m["payload"]), "filter.dealValue") {
			t.Errorf("got %v, want an error naming filter.dealValue", m)
		}
		if m := c.read(ctx); m["type"] != "complete" {
			t.Errorf("got %v, want complete", m)
		}
		waitForSubscribers(t, e, 0)
	})
}

// postSSE sends a GraphQL request asking for a Server-Sent Events stream.
func postSSE(t *testing.T, ctx context.Context, url, query string, vars map[string]any) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitForSubscribers waits until the broker has n subscribers.
func waitForSubscribers(t *testing.T, e *env, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if e.broker.Subscribers() == n {
			return
		}
	}
	t.Fatalf("broker has %d subscribers, want %d", e.broker.Subscribers(), n)
}

// subscribeBroker subscribes to e's broker after the change numbered
// after (nil: from now) and sends each change to the returned channel,
// which is closed when the subscription ends (with the error sent to ended,
// if given).
func subscribeBroker(t *testing.T, e *env, after *int64) <-chan storage.Change {
	t.Helper()
	return subscribeAs(t, e, context.Background(), after)
}

// subscribeAs is subscribeBroker for the caller of ctx.
func subscribeAs(t *testing.T, e *env, ctx context.Context, after *int64) <-chan storage.Change {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	sub, err := e.broker.Subscribe(ctx, after, "")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan storage.Change, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer sub.Close()
		for {
			changes, err := sub.Next(ctx)
			if err != nil {
				return
			}
			for _, c := range changes {
				out <- c
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

// collect reads n changes from a subscribeBroker channel, failing after a
// generous budget (the broker delivers in milliseconds).
func collect(t *testing.T, changes <-chan storage.Change, n int) []storage.Change {
	t.Helper()
	var out []storage.Change
	for len(out) < n {
		select {
		case c, ok := <-changes:
			if !ok {
				t.Fatalf("the subscription ended after %d changes, want %d", len(out), n)
			}
			out = append(out, c)
		case <-time.After(30 * time.Second):
			t.Fatalf("%d changes in 30 s, want %d", len(out), n)
		}
	}
	return out
}

// TestSlowSubscriberIsDropped lets one subscription fall more than the
// broker keeps behind while another keeps reading: the slow one ends with
// SUBSCRIBER_TOO_SLOW, the fast one receives every change.
func TestSlowSubscriberIsDropped(t *testing.T) {
	e := newEnvLive(t, 0, nil, live.Options{Window: 8})
	ctx := t.Context()
	slow, err := e.broker.Subscribe(ctx, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := subscribeBroker(t, e, nil)
	r := e.create(t)
	const updates = 12
	for i := range updates {
		e.post(t, updateMutation, map[string]any{"id": r.ID, "v": 1 + i, "patch": map[string]any{"details": map[string]any{"notes": "n"}}}).mustData(t, &struct{}{})
	}
	for i := range updates + 1 { // the creation, then each update
		select {
		case c, ok := <-fast:
			if !ok {
				t.Fatalf("the fast subscriber was dropped after %d changes", i)
			}
			if c.After.Version != int64(i+1) {
				t.Fatalf("fast subscriber got version %d, want %d", c.After.Version, i+1)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the fast subscriber did not get change %d", i)
		}
	}
	if _, err := slow.Next(ctx); storage.ErrorCodeOf(err) != storage.CodeSubscriberTooSlow {
		t.Errorf("the slow subscriber, %d changes behind a broker keeping 8: %v, want SUBSCRIBER_TOO_SLOW", updates, err)
	}
}

// TestSubscriptionsLeaveNoGoroutines opens and closes many subscriptions and
// checks the goroutine count comes back.
func TestSubscriptionsLeaveNoGoroutines(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := apiGoroutines()
	for range 3 {
		var clients []*wsClient
		for range 30 {
			c := dialWS(t, ctx, srv.URL, false)
			c.subscribe(ctx, "1", nil)
			clients = append(clients, c)
		}
		waitForSubscribers(t, e, 30)
		for _, c := range clients {
			c.conn.Close(websocket.StatusNormalClosure, "")
		}
		waitForSubscribers(t, e, 0)
	}
	srv.CloseClientConnections()
	var now int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if now = apiGoroutines(); now <= before+2 {
			return
		}
	}
	t.Errorf("goroutines: %d before, %d after", before, now)
}

// TestEventsCarryTheirChangesState makes two status changes in a row
// before the feed has delivered the first: each event shows the status and
// version its own change left, not the referral as it is when delivered.
func TestEventsCarryTheirChangesState(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dialWS(t, ctx, srv.URL, false)
	c.subscribe(ctx, "1", nil)
	waitForSubscribers(t, e, 1)
	admin := storage.WithCaller(ctx, transport.DevCaller)
	r, err := e.store.CreateReferral(admin, storage.ReferralInput{ReferralSource: storage.SourceP2P, CustomerProfile: &storage.CustomerProfileInput{
		Name: ptr("Two Steps Ltd"), Address: &storage.Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ChangeReferralStatus(admin, r.ID, 1, storage.ReferralActive, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ChangeReferralStatus(admin, r.ID, 2, storage.ReferralWon, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"CREATED PENDING 1", "STATUS_CHANGED ACTIVE 2", "STATUS_CHANGED WON 3"}
	for i, w := range want {
		ev := c.next(ctx).ReferralChanged
		if got := fmt.Sprintf("%s %s %d", ev.Type, ev.Referral.Status, ev.Referral.Version); got != w {
			t.Errorf("event %d: %s, want %s", i, got, w)
		}
	}
}

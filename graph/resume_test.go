package graph

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/live"
	"referrals/storage"
)

const resumableSubscription = `subscription Changed($after: ID) {
  referralChanged(after: $after) { id type referralId referral { version } }
}`

// feedEvent is one referralChanged event as a client sees it: the event id
// (the field and the extension), its type and referral, or its errors.
type feedEvent struct {
	ID, ExtensionID, Type, ReferralID string
	Version                           int
	Errors                            []gqlError
}

func decodeEvent(t *testing.T, payload []byte) feedEvent {
	t.Helper()
	var p struct {
		Data struct {
			ReferralChanged struct {
				ID, Type, ReferralID string
				Referral             struct{ Version int }
			}
		}
		Extensions map[string]string
		Errors     []gqlError
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatalf("%v: %s", err, payload)
	}
	rc := p.Data.ReferralChanged
	return feedEvent{ID: rc.ID, ExtensionID: p.Extensions[transport.EventIDExtension], Type: rc.Type, ReferralID: rc.ReferralID, Version: rc.Referral.Version, Errors: p.Errors}
}

// nextEvent reads the next graphql-transport-ws message, which must be an
// event of subscription "1".
func (c *wsClient) nextEvent(ctx context.Context) feedEvent {
	c.t.Helper()
	m := c.read(ctx)
	if m["type"] != "next" {
		c.t.Fatalf("got %v, want next", m)
	}
	b, _ := json.Marshal(m["payload"])
	return decodeEvent(c.t, b)
}

// TestResumeAfterDisconnect: a graphql-ws subscriber receives two
// changes, each with an id (the field and extensions.eventId agree), and
// disconnects; two changes are made; subscribing again after the last id
// received delivers exactly those two, then the next live one.
func TestResumeAfterDisconnect(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c := dialWS(t, ctx, srv.URL, false)
	c.send(ctx, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": resumableSubscription}})
	waitForSubscribers(t, e, 1)
	seen := []string{e.create(t).ID, e.create(t).ID}
	var last feedEvent
	for _, id := range seen {
		last = c.nextEvent(ctx)
		if last.ReferralID != id || last.ID == "" || last.ExtensionID != last.ID {
			t.Fatalf("got %+v, want the creation of %s with its id in the field and the extension", last, id)
		}
	}
	c.conn.Close(websocket.StatusNormalClosure, "")
	waitForSubscribers(t, e, 0)
	missed := []string{e.create(t).ID, e.create(t).ID}

	c = dialWS(t, ctx, srv.URL, false)
	c.send(ctx, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": resumableSubscription, "variables": map[string]any{"after": last.ID}}})
	waitForSubscribers(t, e, 1)
	live := e.create(t).ID
	for _, want := range append(missed, live) {
		if ev := c.nextEvent(ctx); ev.ReferralID != want || ev.Type != "CREATED" {
			t.Fatalf("resumed: got %+v, want the creation of %s", ev, want)
		}
	}
}

// TestServerSentEventsResumeFromLastEventID: SSE events carry the event id
// as `id:`; a new request with Last-Event-ID set to the last one received
// gets exactly the changes made since.
func TestServerSentEventsResumeFromLastEventID(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	first, stop := context.WithCancel(ctx)
	events := sseStream(t, first, srv.URL, "")
	waitForSubscribers(t, e, 1)
	seen := e.create(t).ID
	ev := <-events
	if ev.ReferralID != seen || ev.ID == "" || ev.ExtensionID != ev.ID {
		t.Fatalf("got %+v, want the creation of %s with `id:` = its id", ev, seen)
	}
	stop()
	waitForSubscribers(t, e, 0)
	missed := []string{e.create(t).ID, e.create(t).ID}

	events = sseStream(t, ctx, srv.URL, ev.ID)
	for _, want := range missed {
		select {
		case ev := <-events:
			if ev.ReferralID != want {
				t.Fatalf("resumed: got %+v, want the creation of %s", ev, want)
			}
		case <-ctx.Done():
			t.Fatalf("no event for %s", want)
		}
	}
}

// sseStream subscribes over SSE with the given Last-Event-ID and sends each
// event to the returned channel; ExtensionID is the SSE `id:` line.
func sseStream(t *testing.T, ctx context.Context, url, lastEventID string) <-chan feedEvent {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": resumableSubscription})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan feedEvent, 16)
	go func() {
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		id := ""
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
				id = v
			}
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				var ev feedEvent
				var p struct {
					Data struct {
						ReferralChanged struct{ ID, Type, ReferralID string }
					}
				}
				_ = json.Unmarshal([]byte(data), &p)
				ev.ID, ev.Type, ev.ReferralID = p.Data.ReferralChanged.ID, p.Data.ReferralChanged.Type, p.Data.ReferralChanged.ReferralID
				ev.ExtensionID, id = id, ""
				out <- ev
			}
		}
	}()
	return out
}

// TestNewSubscriptionGetsOnlyLaterChanges records a burst of changes just
// before subscribing: the subscription's first event is the change made
// after it started, not one of the burst.
func TestNewSubscriptionGetsOnlyLaterChanges(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := e.create(t)
	admin := storage.WithCaller(ctx, transport.DevCaller)
	for v := int64(1); v <= 30; v++ {
		if _, err := e.store.UpdateReferral(admin, r.ID, v, storage.ReferralPatch{Details: &storage.DetailsInput{Notes: ptr("burst")}}); err != nil {
			t.Fatal(err)
		}
	}
	c := dialWS(t, ctx, srv.URL, false)
	c.send(ctx, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": resumableSubscription}})
	waitForSubscribers(t, e, 1)
	after := e.create(t).ID
	if ev := c.nextEvent(ctx); ev.ReferralID != after {
		t.Errorf("first event: %+v, want the creation of %s made after subscribing", ev, after)
	}
}

// TestResumeRefusals: an id that is not one of the feed's (the earlier
// `change:N` form included) is BAD_USER_INPUT naming the argument; one the
// feed does not hold is CHANGE_ID_EXPIRED, and the subscription completes.
func TestResumeRefusals(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for name, tc := range map[string]struct{ after, code, mention string }{
		"ErrNotAnID":   {"not-an-id", string(storage.CodeBadUserInput), "after"},
		"ErrForgedID":  {base64.RawURLEncoding.EncodeToString([]byte("change:1")), string(storage.CodeBadUserInput), "after"},
		"ErrExpiredID": {e.broker.EventIDs().Encode(transport.DevCaller, 1_000_000), string(storage.CodeChangeIDExpired), "subscribe without a resume id"},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialWS(t, ctx, srv.URL, false)
			c.send(ctx, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": resumableSubscription, "variables": map[string]any{"after": tc.after}}})
			ev := c.nextEvent(ctx)
			if len(ev.Errors) != 1 || ev.Errors[0].Extensions["code"] != tc.code || !strings.Contains(ev.Errors[0].Message, tc.mention) {
				t.Errorf("errors %+v, want one %s mentioning %q", ev.Errors, tc.code, tc.mention)
			}
			if m := c.read(ctx); m["type"] != "complete" {
				t.Errorf("got %v, want complete", m)
			}
		})
	}
}

// TestSlowSubscriberIsTold: a graphql-ws client that stops reading while
// the feed moves on more than the broker keeps gets, once it reads again,
// the events that were on their way, then a SUBSCRIBER_TOO_SLOW error
// with the advice to resume, then complete. Small socket buffers make
// the server's writes to it block early.
func TestSlowSubscriberIsTold(t *testing.T) {
	e := newEnvLive(t, 0, nil, live.Options{Window: 8})
	srv := httptest.NewUnstartedServer(e.handler)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial.DialContext(ctx, network, addr)
		if err == nil {
			_ = conn.(*net.TCPConn).SetReadBuffer(1024)
		}
		return conn, err
	}}}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	c := &wsClient{t: t, conn: conn}
	c.send(ctx, map[string]any{"type": "connection_init"})
	if m := c.read(ctx); m["type"] != "connection_ack" {
		t.Fatalf("got %v, want connection_ack", m)
	}
	c.send(ctx, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { referralChanged { id referral { details { notes } } } }`}})
	waitForSubscribers(t, e, 1)
	r := e.create(t)
	notes := strings.Repeat("n", 4000)
	for v := 1; v <= 60; v++ {
		e.post(t, updateMutation, map[string]any{"id": r.ID, "v": v, "patch": map[string]any{"details": map[string]any{"notes": notes}}}).mustData(t, &struct{}{})
	}
	for events := 0; ; events++ {
		m := c.read(ctx)
		if m["type"] != "next" {
			t.Fatalf("after %d events: %v, want an error first", events, m)
		}
		b, _ := json.Marshal(m["payload"])
		if ev := decodeEvent(t, b); len(ev.Errors) > 0 {
			if ev.Errors[0].Extensions["code"] != string(storage.CodeSubscriberTooSlow) || !strings.Contains(ev.Errors[0].Message, "after") {
				t.Errorf("after %d events: %+v, want SUBSCRIBER_TOO_SLOW saying to resume with after", events, ev.Errors)
			}
			break
		}
	}
	if m := c.read(ctx); m["type"] != "complete" {
		t.Errorf("got %v, want complete", m)
	}
}

// smallBuffers gives accepted connections a small send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(1024)
	}
	return conn, err
}

// TestResumeIDsAreTheAudiences: two partners whose organizations take part
// in one referral receive its change under different ids. Each resumes
// with its own id; the other's, an admin's, or a forged `change:N` id is
// refused over SSE with BAD_USER_INPUT naming Last-Event-ID, then the
// stream completes, before anything is read.
func TestResumeIDsAreTheAudiences(t *testing.T) {
	e := newEnv(t, demoSize)
	auth, err := transport.NewAuth(t.Context(), transport.AuthOptions{Secret: transporttest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(e.store, e.broker, auth, Options{}, transport.Options{}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := openReferrals(e.referrals)
	i := slices.IndexFunc(open, func(r storage.Referral) bool {
		return len(r.Participation) > 1 && r.Participation[0].OrganizationID != r.Participation[1].OrganizationID
	})
	if i < 0 {
		t.Fatal("no open demo referral has two organizations")
	}
	shared := open[i]
	bearer := func(role, org string) string {
		return transporttest.HS(t, jwt.MapClaims{"sub": role + org, "role": role, "org": org, "exp": transporttest.InAnHour()})
	}
	orgA, orgB := bearer("partner", shared.Participation[0].OrganizationID), bearer("partner", shared.Participation[1].OrganizationID)
	admin := bearer("admin", "")
	update := func() {
		got, err := e.store.UpdateReferral(storage.WithCaller(ctx, transport.DevCaller), shared.ID, shared.Version, storage.ReferralPatch{Details: &storage.DetailsInput{Notes: ptr("n")}})
		if err != nil {
			t.Fatal(err)
		}
		shared.Version = got.Version
	}
	live, stop := context.WithCancel(ctx)
	onA, onB := partnerSSE(t, live, srv.URL, orgA, ""), partnerSSE(t, live, srv.URL, orgB, "")
	waitForSubscribers(t, e, 2)
	update()
	a, b := <-onA, <-onB
	stop()
	if a.id == "" || b.id == "" || a.id == b.id {
		t.Fatalf("ids %q and %q: want one per organization", a.id, b.id)
	}
	waitForSubscribers(t, e, 0)
	update()

	forged := base64.RawURLEncoding.EncodeToString([]byte("change:1"))
	for name, tc := range map[string]struct{ bearer, id, want string }{
		"OK":                   {orgA, a.id, "UPDATED " + shared.ID},
		"ErrOtherOrganization": {orgB, a.id, "BAD_USER_INPUT"},
		"ErrPartnerIDToAdmin":  {admin, a.id, "BAD_USER_INPUT"},
		"ErrForged":            {orgA, forged, "BAD_USER_INPUT"},
	} {
		t.Run(name, func(t *testing.T) {
			events := partnerSSE(t, ctx, srv.URL, tc.bearer, tc.id)
			if got := <-events; got.answer != tc.want {
				t.Fatalf("got %+v, want %s", got, tc.want)
			}
			if tc.want != "BAD_USER_INPUT" {
				return
			}
			if rest, open := <-events; open {
				t.Errorf("after the error: %+v, want the stream to complete", rest)
			}
		})
	}
}

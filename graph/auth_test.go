package graph

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
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
	"referrals/storage"
)

// securedHandler serves e's store with HS256 tokens required.
func securedHandler(t *testing.T, e *env, o transport.AuthOptions, edge transport.Options) http.Handler {
	t.Helper()
	if o.Secret == "" && o.JWKSURL == "" {
		o.Secret = transporttest.Secret
	}
	auth, err := transport.NewAuth(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return newHandler(e.store, e.broker, auth, Options{}, edge)
}

func postAs(t *testing.T, h http.Handler, bearer, query string) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := gqlResponse{Status: rec.Code, raw: rec.Body.Bytes()}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("not JSON (%d): %s", rec.Code, rec.Body)
	}
	return resp
}

// TestAuthentication: an admin's token sees every referral, a partner's
// those its organization takes part in, and a partner may not create
// (the tokens the edge refuses: graph/transport's TestRefusedTokens).
func TestAuthentication(t *testing.T) {
	e := newEnv(t, 40)
	h := securedHandler(t, e, transport.AuthOptions{Issuer: "https://id.example", Audience: "referrals-api"}, transport.Options{})
	good := jwt.MapClaims{"sub": "u1", "role": "admin", "iss": "https://id.example", "aud": "referrals-api", "exp": transporttest.InAnHour()}
	with := func(changes jwt.MapClaims) jwt.MapClaims { return transporttest.Claims(good, changes) }
	const count = `{ referrals { totalCount } }`
	t.Run("Admin", func(t *testing.T) {
		var d struct{ Referrals struct{ TotalCount int } }
		postAs(t, h, transporttest.HS(t, with(nil)), count).mustData(t, &d)
		if d.Referrals.TotalCount != 40 {
			t.Errorf("admin sees %d, want 40", d.Referrals.TotalCount)
		}
	})
	t.Run("PartnerSeesItsOrganization", func(t *testing.T) {
		org := e.referrals[0].Participation[0].OrganizationID
		want := len(idsWhere(e.referrals, func(r storage.Referral) bool {
			return hasParticipant(r, func(p storage.Participation) bool { return p.OrganizationID == org })
		}))
		var d struct{ Referrals struct{ TotalCount int } }
		postAs(t, h, transporttest.HS(t, with(jwt.MapClaims{"role": "partner", "org": org})), count).mustData(t, &d)
		if d.Referrals.TotalCount != want || want == 40 {
			t.Errorf("partner sees %d, want %d", d.Referrals.TotalCount, want)
		}
	})
	t.Run("ErrPartnerCannotCreate", func(t *testing.T) {
		resp := postAs(t, h, transporttest.HS(t, with(jwt.MapClaims{"role": "partner", "org": "o"})),
			`mutation { createReferral(input: {referralSource: P2P, customerProfile: {name: "X", address: {addressLine1: "a", city: "b", country: "NO"}}}) { id } }`)
		if code, _ := resp.code(t); code != "FORBIDDEN" {
			t.Errorf("code %s, want FORBIDDEN", code)
		}
	})
}

// TestJWKS verifies RS256 tokens with keys served as a JWKS, as an OIDC
// provider such as Microsoft Entra ID publishes them.
func TestJWKS(t *testing.T) {
	e := newEnv(t, 3)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	defer provider.Close()
	h := securedHandler(t, e, transport.AuthOptions{JWKSURL: provider.URL}, transport.Options{})
	var d struct{ Referrals struct{ TotalCount int } }
	postAs(t, h, transporttest.Token(t, key, jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u", "role": "admin", "exp": transporttest.InAnHour()}), `{ referrals { totalCount } }`).mustData(t, &d)
	if d.Referrals.TotalCount != 3 {
		t.Errorf("got %d referrals, want 3", d.Referrals.TotalCount)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if resp := postAs(t, h, transporttest.Token(t, other, jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u", "role": "admin", "exp": transporttest.InAnHour()}), `{ __typename }`); resp.Status != http.StatusUnauthorized {
		t.Errorf("a token signed by another key: status %d, want 401", resp.Status)
	}
}

// TestWebSocketAuthentication reads the token from connection_init, caps
// connections per token, and shows a partner subscribed without a filter
// only its organization's changes, redacted until it accepts.
func TestWebSocketAuthentication(t *testing.T) {
	e := newEnv(t, 0)
	srv := httptest.NewServer(securedHandler(t, e, transport.AuthOptions{}, transport.Options{MaxStreams: 2}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(init map[string]any) (*websocket.Conn, map[string]any) {
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": init})
		_ = conn.Write(ctx, websocket.MessageText, b)
		_, msg, err := conn.Read(ctx)
		var m map[string]any
		if err == nil {
			_ = json.Unmarshal(msg, &m)
		}
		return conn, m
	}
	if _, m := dial(nil); m["type"] == "connection_ack" {
		t.Error("a connection without a token was acknowledged")
	}
	partner := transporttest.HS(t, jwt.MapClaims{"sub": "partner-1", "role": "partner", "org": "org-x", "exp": transporttest.InAnHour()})
	c1, m1 := dial(map[string]any{"Authorization": "Bearer " + partner})
	_, m2 := dial(map[string]any{"authorization": partner})
	_, m3 := dial(map[string]any{"Authorization": "Bearer " + partner})
	if m1["type"] != "connection_ack" || m2["type"] != "connection_ack" || m3["type"] == "connection_ack" {
		t.Errorf("with a cap of 2 per token: %v, %v, %v", m1["type"], m2["type"], m3["type"])
	}

	sub, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": "subscription { referralChanged { type referralId referral { customerProfile { name address { city } } } } }"}})
	_ = c1.Write(ctx, websocket.MessageText, sub)
	waitForSubscribers(t, e, 1)
	admin := storage.WithCaller(ctx, transport.DevCaller)
	in := storage.ReferralInput{ReferralSource: storage.SourceP2P, CustomerProfile: &storage.CustomerProfileInput{
		Name: ptr("Hidden Ltd"), Address: &storage.Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}}
	hidden, err := e.store.CreateReferral(admin, in) // org-x takes no part: not for the partner
	if err != nil {
		t.Fatal(err)
	}
	in.CustomerProfile.Name = ptr("Shared Ltd")
	shared, err := e.store.CreateReferral(admin, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.InviteParticipant(admin, shared.ID, storage.InviteInput{OrganizationID: "org-x", OrganizationName: "X"}); err != nil {
		t.Fatal(err)
	}
	// Each event carries the referral as its change left it: the shared
	// referral's creation does not name org-x yet, so the partner first
	// hears of it at its invitation, and never of the hidden one; the
	// customer's address stays hidden until org-x accepts.
	for _, want := range []string{"PARTICIPANT_CHANGED"} { // the first event the partner may see
		_, msg, err := c1.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Payload struct {
				Data struct {
					ReferralChanged struct {
						Type, ReferralID string
						Referral         struct {
							CustomerProfile struct {
								Name    string
								Address *struct{ City string }
							}
						}
					}
				}
			}
		}
		_ = json.Unmarshal(msg, &ev)
		got := ev.Payload.Data.ReferralChanged
		if got.ReferralID != shared.ID || got.Type != want || got.Referral.CustomerProfile.Address != nil {
			t.Errorf("partner got %s (hidden one is %s), want %s of %s: %s", got.ReferralID, hidden.ID, want, shared.ID, msg)
		}
	}
}

// TestPartnerViewOverHTTP checks the visibility rules through GraphQL with
// a partner token: invisible referrals are null, the customer's address
// and contacts are null until the partner accepted, and other
// organizations' users are null.
func TestPartnerViewOverHTTP(t *testing.T) {
	e := newEnv(t, demoSize)
	h := securedHandler(t, e, transport.AuthOptions{}, transport.Options{})
	org := e.referrals[0].Participation[0].OrganizationID
	bearer := transporttest.HS(t, jwt.MapClaims{"sub": "p", "role": "partner", "org": org, "exp": transporttest.InAnHour()})
	var accepted, pending, invisible string
	for _, r := range e.referrals {
		i := -1
		for j, p := range r.Participation {
			if p.OrganizationID == org {
				i = j
			}
		}
		switch {
		case i < 0:
			invisible = r.ID
		case r.Participation[i].Status == storage.ParticipantAccepted && len(r.Participation) > 1:
			accepted = r.ID
		case r.Participation[i].Status != storage.ParticipantAccepted:
			pending = r.ID
		}
	}
	if accepted == "" || pending == "" || invisible == "" {
		t.Fatalf("the seed lacks a case: accepted %q pending %q invisible %q", accepted, pending, invisible)
	}
	type view struct {
		Referral *struct {
			CustomerProfile struct {
				Address  *struct{ City string }
				Contacts []struct{ Email string }
			}
			Participants []struct {
				OrganizationID string
				Users          []struct{ ID string }
			}
		}
	}
	read := func(id string) view {
		var v view
		postAs(t, h, bearer, `{ referral(id: "`+id+`") { customerProfile { address { city } contacts { email } } participants { organizationId users { id } } } }`).mustData(t, &v)
		return v
	}
	if v := read(invisible); v.Referral != nil {
		t.Errorf("a referral of other organizations is visible: %+v", v.Referral)
	}
	if v := read(pending); v.Referral == nil || v.Referral.CustomerProfile.Address != nil || v.Referral.CustomerProfile.Contacts != nil {
		t.Errorf("before accepting, the customer's address and contacts show: %+v", v.Referral)
	}
	v := read(accepted)
	if v.Referral == nil || v.Referral.CustomerProfile.Address == nil || len(v.Referral.CustomerProfile.Contacts) == 0 {
		t.Fatalf("after accepting, the customer's address or contacts are missing: %+v", v.Referral)
	}
	for _, p := range v.Referral.Participants {
		if own := p.OrganizationID == org; own != (p.Users != nil) {
			t.Errorf("participant of %s: users shown = %v", p.OrganizationID, p.Users != nil)
		}
	}

	// A partner's nested page costs what an admin's does: the page query
	// carries the partner's scope, and the participants read relies on it.
	e.reads()
	body, _ := json.Marshal(map[string]any{"query": nestedPageQuery, "variables": map[string]any{"first": 20}})
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	h.ServeHTTP(httptest.NewRecorder(), req)
	got := e.reads()
	want := []string{"planned", "planned", "planned", "planned"}
	if !slices.Equal(got, want) {
		t.Errorf("partner page commands = %v, want %v", got, want)
	}
}

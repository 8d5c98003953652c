package transport_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph"
	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/storage"
)

// TestRefusedTokens: every token the edge must not take (missing,
// malformed, wrongly signed, expired or without expiry, not yet valid,
// from another issuer or for another audience, an unknown role, a partner
// without a valid organization, no subject, alg none) is answered 401
// with UNAUTHENTICATED before the executor sees the request; the same
// claims well signed are taken.
func TestRefusedTokens(t *testing.T) {
	auth, err := transport.NewAuth(t.Context(), transport.AuthOptions{Secret: transporttest.Secret, Issuer: "https://id.example", Audience: "referrals-api"})
	if err != nil {
		t.Fatal(err)
	}
	// No store behind it (a nil *storage.Store, never called): refused
	// requests never reach the executor, and `{ __typename }` reads nothing.
	h := transport.New(graph.NewExecutor((*storage.Store)(nil), nil, slog.New(slog.DiscardHandler), nil, graph.Options{}), auth, transport.Options{})
	good := jwt.MapClaims{"sub": "u1", "role": "admin", "iss": "https://id.example", "aud": "referrals-api", "exp": transporttest.InAnHour()}
	with := func(changes jwt.MapClaims) jwt.MapClaims { return transporttest.Claims(good, changes) }
	post := func(bearer string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"query": "{ __typename }"}`))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body struct {
			Errors []struct {
				Extensions struct{ Code string }
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("not JSON (%d): %s", rec.Code, rec.Body)
		}
		if len(body.Errors) == 0 {
			return rec.Code, ""
		}
		return rec.Code, body.Errors[0].Extensions.Code
	}
	refused := map[string]string{
		"ErrNoToken":            "",
		"ErrGarbage":            "not.a.token",
		"ErrWrongSecret":        transporttest.Token(t, []byte("another-secret-entirely"), jwt.SigningMethodHS256, with(nil)),
		"ErrExpired":            transporttest.HS(t, with(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()})),
		"ErrNoExpiry":           transporttest.HS(t, with(jwt.MapClaims{"exp": nil})),
		"ErrNotYetValid":        transporttest.HS(t, with(jwt.MapClaims{"nbf": time.Now().Add(time.Hour).Unix()})),
		"ErrOtherIssuer":        transporttest.HS(t, with(jwt.MapClaims{"iss": "https://evil.example"})),
		"ErrOtherAudience":      transporttest.HS(t, with(jwt.MapClaims{"aud": "other"})),
		"ErrUnknownRole":        transporttest.HS(t, with(jwt.MapClaims{"role": "root"})),
		"ErrPartnerWithoutOrg":  transporttest.HS(t, with(jwt.MapClaims{"role": "partner"})),
		"ErrOrgOutsideAlphabet": transporttest.HS(t, with(jwt.MapClaims{"role": "partner", "org": "evil/Accepted"})),
		"ErrNoSubject":          transporttest.HS(t, with(jwt.MapClaims{"sub": nil})),
		"ErrEmptySubject":       transporttest.HS(t, with(jwt.MapClaims{"sub": ""})),
		"ErrAlgNone":            transporttest.Token(t, jwt.UnsafeAllowNoneSignatureType, jwt.SigningMethodNone, with(nil)),
	}
	for name, bearer := range refused {
		t.Run(name, func(t *testing.T) {
			if status, code := post(bearer); status != http.StatusUnauthorized || code != "UNAUTHENTICATED" {
				t.Errorf("status %d code %s, want 401 UNAUTHENTICATED", status, code)
			}
		})
	}
	if status, code := post(transporttest.HS(t, with(nil))); status != http.StatusOK || code != "" {
		t.Errorf("the good token: status %d code %q, want 200 and no error", status, code)
	}
}

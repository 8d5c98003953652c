package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"referrals/storage"
)

// AuthOptions configures token verification. With neither Secret nor
// JWKSURL the API runs in open development mode: every caller is an admin.
type AuthOptions struct {
	Secret   string // HS256 shared secret
	JWKSURL  string // keys of an OIDC provider (RS256, ES256…), fetched and cached
	Issuer   string // required "iss" when set
	Audience string // required "aud" when set
	// MaxConnectionsPerToken caps the WebSocket connections one token
	// (subject) may hold open at once.
	MaxConnectionsPerToken int
}

// DefaultMaxConnectionsPerToken is the WebSocket cap when none is set.
const DefaultMaxConnectionsPerToken = 10

// Auth turns bearer tokens into callers.
type Auth struct {
	keyfunc jwt.Keyfunc // nil in open mode
	parser  *jwt.Parser
	maxConn int

	mu    sync.Mutex
	conns map[string]int // open WebSocket connections by subject
}

// claims are the token claims the API reads.
type claims struct {
	jwt.RegisteredClaims
	Org  string `json:"org"`
	Role string `json:"role"`
}

// NewAuth prepares verification; with a JWKS URL it fetches the keys now
// and refreshes them in the background until ctx ends.
func NewAuth(ctx context.Context, o AuthOptions) (*Auth, error) {
	a := &Auth{maxConn: o.MaxConnectionsPerToken, conns: map[string]int{}}
	if a.maxConn == 0 {
		a.maxConn = DefaultMaxConnectionsPerToken
	}
	opts := []jwt.ParserOption{jwt.WithExpirationRequired()}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	switch {
	case o.Secret != "" && o.JWKSURL != "":
		return nil, errors.New("give a JWT secret or a JWKS URL, not both")
	case o.Secret != "":
		secret := []byte(o.Secret)
		a.keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
		opts = append(opts, jwt.WithValidMethods([]string{"HS256"}))
	case o.JWKSURL != "":
		k, err := keyfunc.NewDefaultCtx(ctx, []string{o.JWKSURL})
		if err != nil {
			return nil, fmt.Errorf("load JWKS from %s: %w", o.JWKSURL, err)
		}
		a.keyfunc = k.Keyfunc
		opts = append(opts, jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// Open reports whether the API runs without authentication.
func (a *Auth) Open() bool { return a.keyfunc == nil }

// devCaller is everyone in open development mode.
var devCaller = storage.Caller{Subject: "dev", Role: storage.RoleAdmin}

// verify returns the caller a token names, or an error a client may read.
func (a *Auth) verify(token string) (storage.Caller, error) {
	if a.Open() {
		return devCaller, nil
	}
	token = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(token), "Bearer "))
	if token == "" {
		return storage.Caller{}, errors.New("a bearer token is required")
	}
	var c claims
	if _, err := a.parser.ParseWithClaims(token, &c, a.keyfunc); err != nil {
		return storage.Caller{}, fmt.Errorf("invalid token: %w", err)
	}
	switch storage.Role(c.Role) {
	case storage.RoleAdmin:
	case storage.RolePartner:
		if c.Org == "" {
			return storage.Caller{}, errors.New("invalid token: a partner token needs an org claim")
		}
	default:
		return storage.Caller{}, fmt.Errorf("invalid token: role %q is neither admin nor partner", c.Role)
	}
	return storage.Caller{Subject: c.Subject, OrganizationID: c.Org, Role: storage.Role(c.Role)}, nil
}

// middleware puts the caller of an HTTP request in its context, answering
// 401 without a valid token. WebSocket upgrades pass: their token comes in
// connection_init (initFunc).
func (a *Auth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" && !a.Open() {
			next.ServeHTTP(w, r)
			return
		}
		caller, err := a.verify(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
			w.Header().Set("WWW-Authenticate", `Bearer realm="referrals"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, `{"errors":[{"message":%q,"extensions":{"code":"UNAUTHENTICATED"}}]}`, err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(storage.WithCaller(r.Context(), caller)))
	})
}

// initFunc reads the token of a WebSocket connection from its
// connection_init payload ("Authorization" or "authorization", with or
// without "Bearer ") and holds one of the token's connection slots.
func (a *Auth) initFunc(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	token := payload.Authorization()
	if token == "" {
		token, _ = payload["authorization"].(string)
	}
	caller, err := a.verify(token)
	if err != nil {
		return ctx, nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.Open() && a.conns[caller.Subject] >= a.maxConn {
		return ctx, nil, fmt.Errorf("this token already holds %d WebSocket connections, the most allowed", a.maxConn)
	}
	a.conns[caller.Subject]++
	return storage.WithCaller(ctx, caller), nil, nil
}

// closeFunc gives a connection's slot back. It gets the context initFunc
// returned, so a connection refused at init (no caller) gives nothing back.
func (a *Auth) closeFunc(ctx context.Context, _ int) {
	subject := storage.CallerFrom(ctx).Subject
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conns[subject] > 0 {
		a.conns[subject]--
	}
}

package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// AuthOptions configures token verification. With neither Secret nor
// JWKSURL the API runs in open development mode: every caller is an admin.
type AuthOptions struct {
	Secret   string // HS256 shared secret
	JWKSURL  string // keys of an OIDC provider (RS256, ES256…), fetched and cached
	Issuer   string // required "iss" when set
	Audience string // required "aud" when set
}

// Auth turns bearer tokens into callers.
type Auth struct {
	keyfunc jwt.Keyfunc // nil in open mode
	parser  *jwt.Parser
}

// claims are the token claims the API reads.
type claims struct {
	jwt.RegisteredClaims
	Org  string `json:"org"`
	Role string `json:"role"`
}

// token is a verified identity: the caller and when its token expires
// (zero in open mode, where nothing expires).
type token struct {
	storage.Caller
	Expires time.Time
}

// NewAuth prepares verification; with a JWKS URL it fetches the keys now
// and refreshes them in the background until ctx ends.
func NewAuth(ctx context.Context, o AuthOptions) (*Auth, error) {
	a := &Auth{}
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

// DevCaller is everyone in open development mode.
var DevCaller = storage.Caller{Subject: "dev", Role: storage.RoleAdmin}

// verify returns the identity a bearer token names, or an error a client
// may read.
func (a *Auth) verify(bearer string) (token, error) {
	if a.Open() {
		return token{Caller: DevCaller}, nil
	}
	bearer = strings.TrimSpace(bearer)
	if len(bearer) >= 7 && strings.EqualFold(bearer[:7], "bearer ") {
		bearer = strings.TrimSpace(bearer[7:])
	}
	if bearer == "" {
		return token{}, errors.New("a bearer token is required")
	}
	var c claims
	if _, err := a.parser.ParseWithClaims(bearer, &c, a.keyfunc); err != nil {
		return token{}, fmt.Errorf("invalid token: %w", err)
	}
	if c.Subject == "" {
		return token{}, errors.New("invalid token: it names no subject (sub)")
	}
	switch storage.Role(c.Role) {
	case storage.RoleAdmin:
	case storage.RolePartner:
		if c.Org == "" {
			return token{}, errors.New("invalid token: a partner token needs an org claim")
		}
		if err := storage.CheckOrganizationID(c.Org); err != nil {
			return token{}, fmt.Errorf("invalid token: its org claim: %w", err)
		}
	default:
		return token{}, fmt.Errorf("invalid token: role %q is neither admin nor partner", c.Role)
	}
	// WithExpirationRequired guarantees exp.
	return token{
		Caller:  storage.Caller{Subject: c.Subject, OrganizationID: c.Org, Role: storage.Role(c.Role)},
		Expires: c.ExpiresAt.Time,
	}, nil
}

// authenticate verifies the Authorization header of a request.
func (a *Auth) authenticate(r *http.Request) (token, error) {
	return a.verify(r.Header.Get("Authorization"))
}

// Authenticated wraps a handler other than the GraphQL endpoint (such as
// /metrics) so that it needs an admin token in authenticated mode.
func (a *Auth) Authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := a.authenticate(r)
		if err != nil {
			writeUnauthenticated(w, err)
			return
		}
		if !tok.IsAdmin() {
			writeError(w, storage.CodeForbidden, "only admins may read this")
			return
		}
		next.ServeHTTP(w, r)
	})
}

type expiryKey struct{}

// withToken returns ctx carrying the caller of tok and its expiry.
func withToken(ctx context.Context, tok token) context.Context {
	noteSubject(ctx, tok.Subject)
	return context.WithValue(storage.WithCaller(ctx, tok.Caller), expiryKey{}, tok.Expires)
}

// errTokenExpired is why an operation's context ends when its token does.
var errTokenExpired = errors.New("token expired")

// tokenLifetime ends what a token started when the token expires: an
// operation started with an expired token is refused, and a subscription
// ends at the token's expiry with an UNAUTHENTICATED error that says why,
// so the client subscribes again with a fresh token.
type tokenLifetime struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = tokenLifetime{}

func (tokenLifetime) ExtensionName() string                   { return "TokenLifetime" }
func (tokenLifetime) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation applies the token's expiry to the operation.
func (tokenLifetime) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	exp, _ := ctx.Value(expiryKey{}).(time.Time)
	if exp.IsZero() {
		return next(ctx)
	}
	if !time.Now().Before(exp) {
		return graphql.OneShot(expiredResponse(exp))
	}
	if op := graphql.GetOperationContext(ctx).Operation; op == nil || op.Operation != ast.Subscription {
		return next(ctx)
	}
	ctx, cancel := context.WithDeadlineCause(ctx, exp, errTokenExpired)
	responses := next(ctx)
	ended := false
	return func(rctx context.Context) *graphql.Response {
		if ended {
			return nil
		}
		resp := responses(rctx)
		if resp == nil {
			ended = true
			expired := errors.Is(context.Cause(ctx), errTokenExpired)
			cancel()
			if expired {
				return expiredResponse(exp)
			}
		}
		return resp
	}
}

func expiredResponse(exp time.Time) *graphql.Response {
	return &graphql.Response{Errors: gqlerror.List{{
		Message:    fmt.Sprintf("the token expired at %s; start again with a fresh token", exp.UTC().Format(time.RFC3339)),
		Extensions: map[string]any{"code": string(storage.CodeUnauthenticated)},
	}}}
}

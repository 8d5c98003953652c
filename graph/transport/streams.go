package transport

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	gqltransport "github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// streamSlots caps the streams each identity holds open at once, across
// every streaming transport: WebSocket connections, SSE requests and
// exports (Handler.Stream) draw on the same slots, so one token cannot
// open hundreds of any.
type streamSlots struct {
	max int // 0: no cap

	mu   sync.Mutex
	held map[string]int // by token subject
}

func newStreamSlots(max int) *streamSlots {
	return &streamSlots{max: max, held: map[string]int{}}
}

// running is how many slots are held, all subjects together.
func (s *streamSlots) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, held := range s.held {
		n += held
	}
	return n
}

// acquire takes a slot for subject, or fails when it holds max already.
// The returned release gives the slot back; calling it again does nothing.
func (s *streamSlots) acquire(subject string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && s.held[subject] >= s.max {
		return nil, fmt.Errorf("this identity already holds %d open streams (WebSocket connections, SSE requests, exports and imports), the most allowed; close one first", s.max)
	}
	s.held[subject]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.held[subject]--; s.held[subject] <= 0 {
				delete(s.held, subject)
			}
		})
	}, nil
}

// Close codes of the graphql-transport-ws protocol for a connection_init
// that is refused: no valid token, or no stream slot left for it.
const (
	closeUnauthorized = 4401
	closeForbidden    = 4403
)

// wsInit reads the token of a WebSocket connection from its
// connection_init payload ("Authorization" or "authorization", with or
// without "Bearer ") and holds one of the identity's stream slots until
// the connection closes. A refusal closes the connection with the
// protocol's 4401 (no valid token) or 4403 (no slot left) and a reason.
func (e *edge) wsInit(ctx context.Context, payload gqltransport.InitPayload) (context.Context, *gqltransport.InitPayload, error) {
	tok, err := e.auth.verify(payload.Authorization())
	if err != nil {
		ctx = gqltransport.WithWebsocketCloseCode(ctx, closeUnauthorized)
		return gqltransport.AppendCloseReason(ctx, truncate("unauthorized: "+err.Error(), 120)), nil, err
	}
	release, err := e.streams.acquire(tok.Subject)
	if err != nil {
		ctx = gqltransport.WithWebsocketCloseCode(ctx, closeForbidden)
		return gqltransport.AppendCloseReason(ctx, "forbidden: too many open streams"), nil, err
	}
	if s, ok := ctx.Value(sessionKey{}).(*wsSession); ok {
		s.start(tok.Expires, newStreamSlots(e.streams.max))
	}
	return context.WithValue(withToken(ctx, tok), releaseKey{}, release), nil, nil
}

// subscriptionCap caps the subscriptions one WebSocket connection runs at
// once at the identity's stream cap, so that one connection slot cannot
// carry an unbounded number of subscriptions.
type subscriptionCap struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = subscriptionCap{}

func (subscriptionCap) ExtensionName() string                   { return "SubscriptionCap" }
func (subscriptionCap) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation takes one of the connection's slots for a
// subscription until it ends.
func (subscriptionCap) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	s, ok := ctx.Value(sessionKey{}).(*wsSession)
	if op := graphql.GetOperationContext(ctx).Operation; !ok || s.subscriptions == nil || op == nil || op.Operation != ast.Subscription {
		return next(ctx)
	}
	release, err := s.subscriptions.acquire("")
	if err != nil {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    fmt.Sprintf("this connection already runs %d subscriptions, the most allowed; stop one first", s.subscriptions.max),
			Extensions: map[string]any{"code": string(storage.CodeStreamLimit)},
		}}})
	}
	// The transport ends the context with the subscription.
	context.AfterFunc(ctx, func() {
		release()
		s.closeIfExpired()
	})
	return next(ctx)
}

type releaseKey struct{}

// wsClose gives a connection's slot back. It gets the context wsInit
// returned, so a connection refused at init gives nothing back.
func (e *edge) wsClose(ctx context.Context, _ int) {
	if release, ok := ctx.Value(releaseKey{}).(func()); ok {
		release()
	}
	if s, ok := ctx.Value(sessionKey{}).(*wsSession); ok {
		s.stop()
	}
}

// sessionKey marks the context of a WebSocket connection with its
// wsSession, from the handshake on.
type sessionKey struct{}

// wsSession is what the edge knows of one WebSocket connection: the
// connection, the slots of its subscriptions, and when its token expires.
// A connection whose token has expired can run nothing more, so it is
// closed (4401) as soon as it runs no subscription: at the expiry, or
// when its last subscription ends with the token's expiry error. It would
// otherwise keep its stream slot for as long as the client stays.
type wsSession struct {
	conn          gqltransport.WebsocketConn // set at the handshake
	subscriptions *streamSlots               // set at connection_init
	expires       time.Time                  // zero: never
	timer         *time.Timer
	closed        sync.Once
}

// start records what connection_init established.
func (s *wsSession) start(expires time.Time, subscriptions *streamSlots) {
	s.subscriptions, s.expires = subscriptions, expires
	if !expires.IsZero() {
		s.timer = time.AfterFunc(time.Until(expires), s.closeIfExpired)
	}
}

// closeIfExpired closes the connection with 4401 once its token has
// expired and none of its subscriptions runs.
func (s *wsSession) closeIfExpired() {
	if s.expires.IsZero() || time.Now().Before(s.expires) || s.subscriptions.running() > 0 {
		return
	}
	s.closed.Do(func() {
		_ = s.conn.WriteClose(closeUnauthorized, "unauthorized: the token expired; connect again with a fresh token")
	})
}

func (s *wsSession) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

// sessionAcceptor accepts WebSocket connections as the implementation it
// holds does, and records each in the wsSession of its request.
type sessionAcceptor struct {
	gqltransport.WebsocketImplementation
}

func (a sessionAcceptor) Accept(w http.ResponseWriter, r *http.Request, opts gqltransport.WebsocketAcceptOptions) (gqltransport.WebsocketConn, error) {
	conn, err := a.WebsocketImplementation.Accept(w, r, opts)
	if s, ok := r.Context().Value(sessionKey{}).(*wsSession); ok && err == nil {
		s.conn = conn
	}
	return conn, err
}

// truncate keeps a WebSocket close reason within the protocol's 123 bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

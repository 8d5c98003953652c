package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/graph/transport"
	"referrals/storage"
)

// eventStream is what a subscription's resolver tells the transport about
// its events beyond their data: each event's id, and why the stream ended
// when the subscription ended it.
type eventStream struct {
	mu    sync.Mutex
	ids   []string // of events sent to the executor and not yet answered, in order
	cause error
}

type eventStreamKey struct{}

// eventStreamOf returns the stream state subscriptionEvents put in ctx; a
// throwaway one outside it.
func eventStreamOf(ctx context.Context) *eventStream {
	if s, ok := ctx.Value(eventStreamKey{}).(*eventStream); ok {
		return s
	}
	return &eventStream{}
}

// Sending notes the id of the event the resolver sends next. The executor
// answers the events in the order it receives them, one response each.
func (s *eventStream) Sending(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, id)
}

// End notes why the resolver is ending the stream, for its last response.
func (s *eventStream) End(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cause = err
}

func (s *eventStream) answered() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return "", false
	}
	id := s.ids[0]
	s.ids = s.ids[1:]
	return id, true
}

func (s *eventStream) ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// subscriptionEvents puts each event's id in its response's extensions
// (transport.EventIDExtension, which SSE also sends as the event's id),
// and ends a stream that its resolver ended with the error that says why:
// a GraphQL error with its code before the stream completes.
type subscriptionEvents struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = subscriptionEvents{}

func (subscriptionEvents) ExtensionName() string                   { return "SubscriptionEvents" }
func (subscriptionEvents) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation wraps the responses of a subscription.
func (subscriptionEvents) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if op := graphql.GetOperationContext(ctx).Operation; op == nil || op.Operation != ast.Subscription {
		return next(ctx)
	}
	stream := &eventStream{}
	responses := next(context.WithValue(ctx, eventStreamKey{}, stream))
	ended := false
	return func(rctx context.Context) *graphql.Response {
		if ended {
			return nil
		}
		resp := responses(rctx)
		if resp == nil {
			ended = true
			if err := stream.ended(); err != nil {
				return &graphql.Response{Errors: gqlerror.List{codedError(storage.ErrorCodeOf(err), "%s", err.Error())}}
			}
			return nil
		}
		if id, ok := stream.answered(); ok {
			if resp.Extensions == nil {
				resp.Extensions = map[string]any{}
			}
			resp.Extensions[transport.EventIDExtension] = id
		}
		return resp
	}
}

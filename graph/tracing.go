package graph

import (
	"context"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the instrumentation scope of the GraphQL spans.
const tracerName = "referrals/graph"

// tracing is the executor extension that records, with OpenTelemetry, a
// span for each query and mutation, child of the span of the HTTP request
// that carries it, and inside it one for each field whose resolver calls
// the store itself (storeResolver). Nested fields read through a loader get
// none: the loader's batch read has one instead (traceBatch), once per
// batch rather than once per field of a page.
//
// Subscriptions are not traced: gqlgen runs each of their responses
// around the wait for its event, so a span would last from one change to
// the next, and the stream's end would be one more.
//
// Spans carry the operation's type and name and each field's path, and
// the error codes of a failure, never the document, its variables or its
// arguments, which hold customers' data, nor an error's message, which can
// quote them. github.com/ravilushqa/otelgqlgen does not allow that: it
// records the whole document on every operation and each field's literal
// arguments, with no option to leave them out.
type tracing struct {
	tracer trace.Tracer
}

func newTracing(tp trace.TracerProvider) tracing {
	return tracing{tracer: tp.Tracer(tracerName, trace.WithSchemaURL(semconv.SchemaURL))}
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.FieldInterceptor
} = tracing{}

// tracingName names the extension, and marks the operations whose
// response it has traced.
const tracingName = "Tracing"

// ExtensionName names the extension for gqlgen.
func (tracing) ExtensionName() string { return tracingName }

// Validate accepts any schema.
func (tracing) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse records the span of one response, named as the
// semantic conventions ask: "query Name", or "query" for an anonymous
// operation, "GraphQL Operation" for a document that did not validate.
func (t tracing) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation != nil && oc.Operation.Operation == ast.Subscription || oc.Stats.GetExtension(tracingName) != nil {
		return next(ctx) // a subscription, or the end of a stream after the response
	}
	oc.Stats.SetExtension(tracingName, true)
	name, attrs := "GraphQL Operation", []attribute.KeyValue(nil)
	if op := oc.Operation; op != nil {
		name = string(op.Operation)
		attrs = append(attrs, semconv.GraphQLOperationTypeKey.String(name))
		if op.Name != "" {
			name += " " + op.Name
			attrs = append(attrs, semconv.GraphQLOperationName(op.Name))
		}
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	defer span.End()
	resp := next(ctx)
	if resp != nil {
		setErrorStatus(span, resp.Errors)
	}
	return resp
}

// InterceptField records the span of a field whose resolver calls the
// store: "Query.referrals", with its path in the response.
func (t tracing) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if !storeResolver(fc) {
		return next(ctx)
	}
	ctx, span := t.tracer.Start(ctx, fc.Object+"."+fc.Field.Name, trace.WithAttributes(fieldPathKey.String(fc.Path().String())))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		span.SetStatus(codes.Error, string(errorCode(err)))
	}
	return res, err
}

// fieldPathKey is the attribute of a field's path in the response
// ("referrals", "a.participants"): aliases and list indexes, no values.
const fieldPathKey = attribute.Key("graphql.field.path")

// storeResolver reports whether the field's resolver calls the store
// itself: every field of a query or mutation but introspection, and the
// nested fields of nestedStoreResolvers.
func storeResolver(fc *graphql.FieldContext) bool {
	if !fc.IsResolver {
		return false
	}
	switch fc.Object {
	case "Query", "Mutation":
		return true
	}
	return nestedStoreResolvers[fc.Object+"."+fc.Field.Name]
}

// nestedStoreResolvers are the nested fields whose resolvers read the
// store rather than a loader.
var nestedStoreResolvers = map[string]bool{
	"ReferralConnection.totalCount":    true,
	"ParticipantConnection.totalCount": true,
}

// setErrorStatus marks span failed with the API's codes of errs
// ("NOT_FOUND,FORBIDDEN"), in the order first met, when there are any.
func setErrorStatus(span trace.Span, errs gqlerror.List) {
	if len(errs) == 0 {
		return
	}
	var found []string
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = "UNKNOWN"
		}
		if !slices.Contains(found, code) {
			found = append(found, code)
		}
	}
	span.SetStatus(codes.Error, strings.Join(found, ","))
}

// traceBatch records a loader's batch read as a span when the operation
// that asked for it is traced: the point where nested fields reach the
// store. It returns the context of the read and what ends the span.
func traceBatch(ctx context.Context, loader string, keys int) (context.Context, func(error)) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, func(error) {}
	}
	ctx, span := parent.TracerProvider().Tracer(tracerName, trace.WithSchemaURL(semconv.SchemaURL)).Start(ctx, "load "+loader,
		trace.WithAttributes(loaderKeysKey.Int(keys)))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, "batch read failed")
		}
		span.End()
	}
}

// loaderKeysKey is the attribute of how many keys a batch read asks for.
const loaderKeysKey = attribute.Key("graphql.loader.keys")

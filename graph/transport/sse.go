package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"referrals/storage"
)

// EventIDExtension is the key of a subscription event's id in its
// response's extensions; the GraphQL layer sets it, and SSE sends it as
// the event's `id:` too, which a client sends back as Last-Event-ID.
const EventIDExtension = "eventId"

type lastEventIDKey struct{}

// LastEventID returns the Last-Event-ID header of the SSE request ctx
// serves: the id of the last event the client received, "" when none.
func LastEventID(ctx context.Context) string {
	id, _ := ctx.Value(lastEventIDKey{}).(string)
	return id
}

// isSSE reports whether r asks for GraphQL over Server-Sent Events (the
// GraphQL over SSE protocol's distinct connections mode): a JSON POST
// that accepts text/event-stream.
func isSSE(r *http.Request) bool {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && r.Method == http.MethodPost && mediaType == "application/json" &&
		strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// streamSSE runs the request in body and writes each response as an SSE
// `next` event (with the event's id, if it has one), then `complete`;
// keep-alive comments go out every e.keepAlive in between. One goroutine
// writes, so nothing is written once it returns.
func (e *edge) streamSSE(w http.ResponseWriter, r *http.Request, body []byte) {
	start := graphql.Now()
	var params graphql.RawParams
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		writeError(w, storage.CodeBadUserInput, "the body is not a GraphQL request in JSON: "+err.Error())
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	ctx := context.WithValue(r.Context(), lastEventIDKey{}, r.Header.Get("Last-Event-ID"))
	rc, opErr := e.exec.CreateOperationContext(ctx, &params)
	ctx = graphql.WithOperationContext(ctx, rc)

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	out := sseOut{w: w, rc: http.NewResponseController(w)}
	out.write(":\n\n")
	if opErr != nil {
		out.write(nextEvent(e.exec.DispatchError(ctx, opErr)))
		out.write("event: complete\n\n")
		return
	}
	// The operation's context may end before its last response (a token's
	// expiry ends it, then says so): responses are read until nil, and only
	// the request's end stops the stream early. Each is encoded before the
	// next is asked for: the executor reuses a response's buffer.
	responses, opCtx := e.exec.DispatchOperation(ctx, rc)
	frames := make(chan string)
	go func() {
		defer close(frames)
		for resp := responses(opCtx); resp != nil; resp = responses(opCtx) {
			select {
			case frames <- nextEvent(resp):
			case <-ctx.Done():
				return
			}
		}
	}()
	ping := time.NewTicker(e.keepAlive)
	defer ping.Stop()
	for out.err == nil {
		select {
		case frame, ok := <-frames:
			if !ok {
				out.write("event: complete\n\n")
				return
			}
			out.write(frame)
			ping.Reset(e.keepAlive)
		case <-ping.C:
			out.write(": ping\n\n")
		case <-ctx.Done():
			return
		}
	}
}

// nextEvent encodes resp as an SSE `next` event, with the event's id when
// it has one.
func nextEvent(resp *graphql.Response) string {
	b, _ := json.Marshal(resp) // cannot fail: Data is JSON the executor wrote
	id := ""
	if s, ok := resp.Extensions[EventIDExtension].(string); ok {
		id = "id: " + s + "\n"
	}
	return "event: next\n" + id + "data: " + string(b) + "\n\n"
}

// sseOut writes to an SSE response and flushes each write; after a failed
// write it writes nothing more.
type sseOut struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (o *sseOut) write(s string) {
	if o.err == nil {
		_, o.err = fmt.Fprint(o.w, s)
	}
	if o.err == nil {
		o.err = o.rc.Flush()
	}
}

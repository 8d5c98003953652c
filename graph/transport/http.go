package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// plainHTTP serves GraphQL over plain HTTP (GET for queries, POST with
// a JSON body) following the GraphQL-over-HTTP specification, its SHOULDs
// included: the response media type follows Accept (application/json when
// the client accepts anything or says nothing, as the specification asks
// until clients have moved to application/graphql-response+json); under
// application/graphql-response+json a request that cannot execute answers
// 4xx without a `data` entry, and application/json keeps 200 for every
// well-formed request.
// The edge hands it every request that is neither a WebSocket handshake
// nor an SSE request.
type plainHTTP struct{}

// Do runs one request.
func (plainHTTP) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	media, ok := responseMedia(r.Header.Get("Accept"))
	if !ok {
		w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
		writeRequestError(w, exec, r, http.StatusNotAcceptable, "the Accept header allows neither application/graphql-response+json nor application/json")
		return
	}
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	params, status, msg := readParams(r)
	if msg != "" {
		writeRequestError(w, exec, r, status, msg)
		return
	}
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		// A document that does not parse or validate, or bad variables: the
		// request never executes.
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		status := http.StatusOK
		if media == mediaGraphQLResponse {
			status = http.StatusBadRequest
		}
		writeResponse(w, status, resp, false)
		return
	}
	if r.Method == http.MethodGet {
		if op := opCtx.Doc.Operations.ForName(opCtx.OperationName); op != nil && op.Operation != ast.Query {
			w.Header().Set("Allow", http.MethodPost)
			writeRequestError(w, exec, r, http.StatusMethodNotAllowed, "only queries may be sent with GET; send "+string(op.Operation)+"s with POST")
			return
		}
	}
	handle, ctx := exec.DispatchOperation(ctx, opCtx)
	writeResponse(w, http.StatusOK, handle(ctx), true)
}

// responseMedia picks the response media type from the Accept header.
func responseMedia(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON, true
	}
	for part := range strings.SplitSeq(accept, ",") {
		t, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch t {
		case mediaGraphQLResponse:
			return mediaGraphQLResponse, true
		case mediaJSON, "*/*", "application/*":
			return mediaJSON, true
		}
	}
	return "", false
}

// rawRequest is the JSON body of a POST, and the parameters of a GET,
// with each field checked for its type before use.
type rawRequest struct {
	Query         json.RawMessage `json:"query"`
	OperationName json.RawMessage `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// readParams reads the request parameters. On failure it returns the HTTP
// status and a message for the client.
func readParams(r *http.Request) (*graphql.RawParams, int, string) {
	start := graphql.Now()
	var raw rawRequest
	switch r.Method {
	case http.MethodGet:
		// Go's r.URL.Query() drops a pair it cannot read (an unencoded
		// ";"), which would run the query without its variables.
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, http.StatusBadRequest, "the query string cannot be read (" + err.Error() + "): percent-encode each parameter, \";\" as %3B"
		}
		if msg := checkQueryParams(q); msg != "" {
			return nil, http.StatusBadRequest, msg
		}
		if q.Has("query") {
			raw.Query, _ = json.Marshal(q.Get("query"))
		}
		if q.Has("operationName") {
			raw.OperationName, _ = json.Marshal(q.Get("operationName"))
		}
		raw.Variables = json.RawMessage(q.Get("variables"))
		raw.Extensions = json.RawMessage(q.Get("extensions"))
	default:
		t, p, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || t != mediaJSON {
			return nil, http.StatusUnsupportedMediaType, "send the request body as application/json"
		}
		if cs, ok := p["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, http.StatusUnsupportedMediaType, "the request body must be encoded as utf-8"
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			status, msg := bodyError(err)
			return nil, status, msg
		}
		if !isJSONObject(body) {
			return nil, http.StatusBadRequest, "the request body must be a JSON object with a \"query\" string"
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			return nil, http.StatusBadRequest, "the request body is not valid JSON: " + err.Error()
		}
	}
	params := &graphql.RawParams{Headers: r.Header}
	if msg := decodeParams(raw, params); msg != "" {
		return nil, http.StatusBadRequest, msg
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	return params, 0, ""
}

// queryParams are the parameters of a GET request.
var queryParams = []string{"query", "operationName", "variables", "extensions"}

// checkQueryParams refuses a GET request's parameter given twice, or
// spelt with other letter case than one of queryParams (a "Variables"
// would run the query without them); other parameters (a cache buster)
// are left alone, as GraphQL over HTTP has them.
func checkQueryParams(q url.Values) string {
	for name, values := range q {
		for _, known := range queryParams {
			switch {
			case name == known && len(values) > 1:
				return fmt.Sprintf("%s: given %d times; give it once", known, len(values))
			case name != known && strings.EqualFold(name, known):
				return fmt.Sprintf("%.100q is not a parameter: did you mean %q? (names are case-sensitive)", name, known)
			}
		}
	}
	return ""
}

// decodeParams checks each parameter's JSON type and copies it into p. The
// query may be left out only by an automatic persisted query, which names
// its document by hash in the extensions.
func decodeParams(raw rawRequest, p *graphql.RawParams) string {
	if !isNull(raw.Extensions) && (!isJSONObject(raw.Extensions) || decodeObject(raw.Extensions, &p.Extensions) != nil) {
		return "the \"extensions\" parameter must be a JSON object"
	}
	_, persisted := p.Extensions["persistedQuery"]
	if (isNull(raw.Query) && !persisted) || (!isNull(raw.Query) && json.Unmarshal(raw.Query, &p.Query) != nil) {
		return "the \"query\" parameter must be a string holding a GraphQL document"
	}
	if !isNull(raw.OperationName) && json.Unmarshal(raw.OperationName, &p.OperationName) != nil {
		return "the \"operationName\" parameter must be a string"
	}
	if !isNull(raw.Variables) && (!isJSONObject(raw.Variables) || decodeObject(raw.Variables, &p.Variables) != nil) {
		return "the \"variables\" parameter must be a JSON object"
	}
	return ""
}

// decodeObject decodes a JSON object keeping numbers exact (json.Number),
// which Decimal and Int inputs rely on.
func decodeObject(b []byte, v *map[string]any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func isNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// writeRequestError answers a request that could not be read, without a
// `data` entry since nothing executed.
func writeRequestError(w http.ResponseWriter, exec graphql.GraphExecutor, r *http.Request, status int, msg string) {
	err := &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": string(storage.CodeBadUserInput)}}
	writeResponse(w, status, exec.DispatchError(r.Context(), gqlerror.List{err}), false)
}

func writeResponse(w http.ResponseWriter, status int, resp *graphql.Response, executed bool) {
	var body any = resp
	if !executed {
		body = requestErrorBody{Errors: resp.Errors, Extensions: resp.Extensions}
	}
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"internal error: the response could not be encoded","extensions":{"code":"INTERNAL"}}]}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

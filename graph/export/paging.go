package export

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"

	"referrals/storage"
)

// page is one page of the export's query.
type page struct {
	PageInfo struct {
		HasNextPage bool
		EndCursor   string
	}
	Nodes []json.RawMessage
}

// pageError is an error of a page's GraphQL response.
type pageError struct {
	code    storage.ErrorCode
	message string
}

// prepare parses and validates the export's query with vars as the
// caller of ctx, as the executor does before running an operation, and
// returns the operation's context to run it in.
func (h *Handler) prepare(ctx context.Context, vars map[string]any) (context.Context, *graphql.OperationContext, *pageError) {
	ctx = graphql.StartOperationTrace(ctx)
	params := &graphql.RawParams{Query: exportQuery, OperationName: "Export", Variables: vars,
		ReadTime: graphql.TraceTiming{Start: graphql.Now(), End: graphql.Now()}}
	opCtx, errs := h.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		return nil, nil, responseError(h.exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
	}
	return ctx, opCtx, nil
}

// page reads the page after vars["after"] as the caller of ctx.
func (h *Handler) page(ctx context.Context, vars map[string]any) (*page, *pageError) {
	ctx, opCtx, err := h.prepare(ctx, vars)
	if err != nil {
		return nil, err
	}
	handler, ctx := h.exec.DispatchOperation(ctx, opCtx)
	resp := handler(ctx)
	if err := responseError(resp); err != nil {
		return nil, err
	}
	p, ok := splitPage(resp.Data)
	if !ok {
		return nil, &pageError{code: storage.CodeInternal, message: "internal error: the page could not be read"}
	}
	return p, nil
}

// splitPage reads a page the executor wrote, compact JSON in the query's
// order ({"referrals":{"pageInfo":{…},"nodes":[{…},…]}}), taking each
// node's bytes as they are: reading every node with encoding/json only to
// copy it took a quarter of an export's own time. ok is false for data of
// any other shape.
func splitPage(data []byte) (*page, bool) {
	const head, nodesKey = `{"referrals":`, `,"nodes":[`
	at := bytes.Index(data, []byte(nodesKey)) // a key: in a string its quotes would be escaped
	if !bytes.HasPrefix(data, []byte(head)) || at < 0 {
		return nil, false
	}
	var info struct {
		PageInfo struct {
			HasNextPage bool
			EndCursor   string
		}
	}
	if err := json.Unmarshal(append(data[len(head):at:at], '}'), &info); err != nil {
		return nil, false
	}
	p := &page{}
	p.PageInfo.HasNextPage, p.PageInfo.EndCursor = info.PageInfo.HasNextPage, info.PageInfo.EndCursor
	rest := data[at+len(nodesKey):]
	depth, inString, escaped, start := 0, false, false, -1
	for i, c := range rest {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth == 0 {
				start = i
			}
			depth++
		case c == '}' || c == ']':
			if depth == 0 { // the end of the nodes
				return p, c == ']' && string(rest[i+1:]) == "}}"
			}
			depth--
			if depth == 0 {
				p.Nodes = append(p.Nodes, json.RawMessage(rest[start:i+1]))
			}
		}
	}
	return nil, false
}

// responseError is the first error of resp, nil when it has none. A nil
// resp (the executor's "no more responses") is an error too.
func responseError(resp *graphql.Response) *pageError {
	if resp == nil {
		return &pageError{code: storage.CodeInternal, message: "internal error: the page was not read"}
	}
	if len(resp.Errors) == 0 {
		return nil
	}
	e := resp.Errors[0]
	code, _ := e.Extensions["code"].(string)
	if code == "" {
		code = string(storage.CodeInternal)
	}
	return &pageError{code: storage.ErrorCode(code), message: e.Message}
}

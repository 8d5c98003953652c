package export

import (
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
	var data struct{ Referrals page }
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		return nil, &pageError{code: storage.CodeInternal, message: "internal error: the page could not be read"}
	}
	return &data.Referrals, nil
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

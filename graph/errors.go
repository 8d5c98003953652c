package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"referrals/graph/transport"
	"referrals/storage"
)

// errRunTimeout is the cause (context.Cause) of a response's context that
// ran past RunTimeout.
var errRunTimeout = errors.New("the operation ran past its time limit")

// presentError gives every error one of the API's codes. Errors whose cause
// is known keep their message; anything else is logged with the request id
// and shown only as "internal error", so no driver text reaches a client.
func presentError(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var known *storage.Error
		switch {
		case errors.Is(context.Cause(ctx), errRunTimeout) && !errors.As(err, &known):
			// whatever failed, it failed because the operation ran too long
			gqlErr.Message = "the operation ran past the time limit of a request and was stopped: ask for less at a time (a narrower filter, fewer aliases or groupings)"
			gqlErr.Extensions = nil
			setCode(gqlErr, storage.CodeComplexityLimit)
		case errors.As(err, &known):
			gqlErr.Message = known.Message
			if arg := argumentPath(ctx, gqlErr.Path, known.Field); arg != "" {
				gqlErr.Message = arg + ": " + known.Message
			}
			setCode(gqlErr, known.Code)
		case isAPICode(gqlErr.Extensions["code"]):
			// set by our extensions, or required by a client protocol
		case gqlErr.Rule == rules.MaxIntrospectionDepth.Name:
			// graphql-js's bound on introspection, one of the operation limits
			setCode(gqlErr, storage.CodeComplexityLimit)
		case gqlErr.Extensions["code"] != nil:
			// gqlgen's own parse, validation and variable errors: the
			// client's request is at fault and the message says how.
			if len(gqlErr.Path) > 1 && gqlErr.Path[0] == ast.PathName("variable") {
				gqlErr.Message = "$" + gqlErr.Path[1:].String() + ": " + gqlErr.Message
			}
			setCode(gqlErr, storage.CodeBadUserInput)
		default:
			id := transport.RequestID(ctx)
			logger.ErrorContext(ctx, "internal error", "request_id", id, "path", gqlErr.Path.String(), "error", err)
			gqlErr.Message = fmt.Sprintf("internal error (request id %s)", id)
			gqlErr.Extensions = nil
			setCode(gqlErr, storage.CodeInternal)
		}
		gqlErr.Message = capMessage(gqlErr.Message)
		for i, el := range gqlErr.Path {
			// a variable's key, as long as the request allows
			if name, ok := el.(ast.PathName); ok && len(name) > maxPathName {
				gqlErr.Path[i] = ast.PathName(strings.ToValidUTF8(string(name[:maxPathName]), "") + "…")
			}
		}
		return gqlErr
	}
}

// capMessage cuts msg to maxMessageBytes, at a character boundary, saying so.
func capMessage(msg string) string {
	if len(msg) <= maxMessageBytes {
		return msg
	}
	cut := maxMessageBytes
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "… (message cut)"
}

// argumentPath names the argument an input error is about ("filter.dealValue.min").
// gqlgen reports errors of reading arguments at the field's path followed
// by the argument's; storage names the value in the domain's terms (field),
// whose input argumentNames may call otherwise. It returns "" for errors of
// the field itself.
func argumentPath(ctx context.Context, p ast.Path, field []string) string {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return ""
	}
	if n := len(fc.Path()); len(p) > n {
		return p[n:].String()
	}
	if len(field) == 0 {
		return ""
	}
	arg := field[0]
	if name, ok := argumentNames[arg]; ok && (fc.Field.Definition == nil || fc.Field.Definition.Arguments.ForName(arg) == nil) {
		arg = name
	}
	path := ast.Path{ast.PathName(arg)}
	for _, f := range field[1:] {
		if i, err := strconv.Atoi(f); err == nil {
			path = append(path, ast.PathIndex(i))
		} else {
			path = append(path, ast.PathName(f))
		}
	}
	return path.String()
}

// argumentNames maps the names storage gives the inputs of its operations
// (storage.Error.Field) to the arguments that carry them, where they differ.
var argumentNames = map[string]string{
	"referral":    "input",         // createReferral
	"invitation":  "input",         // inviteParticipant
	"participant": "participantId", // respondToInvitation
	"order":       "orderBy",       // referrals
}

// isAPICode reports whether an error code set before the presenter (by
// our extensions, or the persisted query protocol) is one of the API's.
func isAPICode(code any) bool {
	switch storage.ErrorCode(fmt.Sprint(code)) {
	case storage.CodeComplexityLimit, storage.CodeForbidden, storage.CodePersistedQueryNotFound,
		storage.CodeUnauthenticated, storage.CodeBadUserInput:
		return true
	}
	return false
}

// codedError is an error of the API's code set, for extensions that refuse
// an operation before it runs.
func codedError(code storage.ErrorCode, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	setCode(err, code)
	return err
}

func setCode(e *gqlerror.Error, code storage.ErrorCode) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = string(code)
}

// recoverPanic turns a panic in a resolver into an internal error, logged
// with its stack; the process keeps serving.
func recoverPanic(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in resolver", "request_id", transport.RequestID(ctx), "panic", p, "stack", string(debug.Stack()))
		return errors.New("panic in resolver") // presented as internal
	}
}

// errorCode is the API's code for a resolver's error, as the error
// presenter will show it.
func errorCode(err error) storage.ErrorCode {
	var coded *gqlerror.Error
	if errors.As(err, &coded) && isAPICode(coded.Extensions["code"]) {
		return storage.ErrorCode(fmt.Sprint(coded.Extensions["code"]))
	}
	return storage.ErrorCodeOf(err)
}

func limitError(format string, args ...any) *gqlerror.Error {
	return codedError(storage.CodeComplexityLimit, format, args...)
}

// notFound is the error of a webhook or delivery the caller does not
// manage, whether it exists or not.
func notFound(what, id string) error {
	return storage.Errorf(storage.CodeNotFound, "no %s with id %.100q", what, id)
}

// webhookError turns storage.ErrNotFound into the API's NOT_FOUND.
func webhookError(err error, what, id string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return notFound(what, id)
	}
	return err
}

// maxMessageBytes bounds an error message: many quote the value they
// refuse, and a request may send a value of nearly a megabyte.
const maxMessageBytes = 1000

// maxPathName bounds each name of an error's path, in bytes.
const maxPathName = 100

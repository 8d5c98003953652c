package storage

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorCode classifies a failure. The values are the `extensions.code`
// values of the GraphQL API: this is the one set of codes the API returns,
// documented in the README. The GraphQL error presenter copies them as-is,
// and the HTTP edge maps each to the status of a response that never
// reached GraphQL.
type ErrorCode string

// The error codes a caller can act on. Anything that is not an *Error is
// internal.
const (
	// CodeBadUserInput: the request is malformed or an argument is invalid.
	CodeBadUserInput ErrorCode = "BAD_USER_INPUT"
	// CodeNotFound: the record to change does not exist (reads give null).
	CodeNotFound ErrorCode = "NOT_FOUND"
	// CodeConflict: someone changed the record meanwhile (expectedVersion).
	CodeConflict ErrorCode = "CONFLICT"
	// CodeUnauthenticated: no valid bearer token, or it expired.
	CodeUnauthenticated ErrorCode = "UNAUTHENTICATED"
	// CodeForbidden: the caller may not do this.
	CodeForbidden ErrorCode = "FORBIDDEN"
	// CodeComplexityLimit: the operation is over a cost, depth or size limit.
	CodeComplexityLimit ErrorCode = "COMPLEXITY_LIMIT"
	// CodePersistedQueryNotFound: the automatic persisted query protocol's
	// own code; clients then send the full document.
	CodePersistedQueryNotFound ErrorCode = "PERSISTED_QUERY_NOT_FOUND"
	// CodeStreamLimit: the identity holds as many open streams as allowed.
	CodeStreamLimit ErrorCode = "STREAM_LIMIT"
	// CodeChangeIDExpired: a subscription asked to resume after an event
	// the change feed no longer holds (or never held); resubscribe without
	// a resume id and read the current state.
	CodeChangeIDExpired ErrorCode = "CHANGE_ID_EXPIRED"
	// CodeSubscriberTooSlow: the subscription fell so far behind the feed
	// that it was ended; resubscribe from the id of the last event read.
	CodeSubscriberTooSlow ErrorCode = "SUBSCRIBER_TOO_SLOW"
	// CodeShuttingDown: the server is stopping and ended a stream (an
	// export) before its end; ask again once it is back.
	CodeShuttingDown ErrorCode = "SHUTTING_DOWN"
	// CodeInternal: anything else; the cause is logged with the request id.
	CodeInternal ErrorCode = "INTERNAL"
)

// Error is a failure whose cause is known and whose message is safe to show
// to the client.
type Error struct {
	Code    ErrorCode
	Message string
	// Field locates the input value a validation error is about, in the
	// domain's terms: the input of the operation ("referral", "patch",
	// "invitation", "filter", "order", "first", "after"…), then field names
	// and list indexes (as decimal strings). Empty when the error is about
	// no single value. The API edge turns it into the argument path.
	Field []string
}

func (e *Error) Error() string {
	if len(e.Field) == 0 {
		return e.Message
	}
	return strings.Join(e.Field, ".") + ": " + e.Message
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// badInput returns a CodeBadUserInput error about the value at path, a
// dotted path in the terms of Error.Field with list indexes written [i]
// ("referral.customerProfile.contacts[0].email").
func badInput(path, format string, args ...any) *Error {
	var field []string
	for _, name := range strings.Split(path, ".") {
		name, index, _ := strings.Cut(strings.TrimSuffix(name, "]"), "[")
		field = append(field, name)
		if index != "" {
			field = append(field, index)
		}
	}
	return &Error{Code: CodeBadUserInput, Message: fmt.Sprintf(format, args...), Field: field}
}

// ErrorCodeOf returns the code of err when it is (or wraps) an *Error, and
// CodeInternal for anything else, nil included.
func ErrorCodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

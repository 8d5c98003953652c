package storage

import (
	"errors"
	"fmt"
)

// ErrorCode classifies a failure for the API edge. The values are the
// `extensions.code` values of the GraphQL API, so the edge copies them as-is.
type ErrorCode string

// The error codes a caller can act on. Anything that is not an *Error is
// internal.
const (
	CodeBadUserInput ErrorCode = "BAD_USER_INPUT"
	CodeNotFound     ErrorCode = "NOT_FOUND"
	CodeConflict     ErrorCode = "CONFLICT"
	CodeForbidden    ErrorCode = "FORBIDDEN"
	CodeInternal     ErrorCode = "INTERNAL"
)

// Error is a failure whose cause is known and whose message is safe to show
// to the client.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
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

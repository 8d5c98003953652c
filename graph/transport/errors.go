package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// Media types of the GraphQL-over-HTTP specification.
const (
	mediaGraphQLResponse = "application/graphql-response+json"
	mediaJSON            = "application/json"
)

// httpStatus is the status of a response that carries only an error of
// code, for requests that never reach GraphQL execution.
func httpStatus(code storage.ErrorCode) int {
	switch code {
	case storage.CodeUnauthenticated:
		return http.StatusUnauthorized
	case storage.CodeForbidden:
		return http.StatusForbidden
	case storage.CodeStreamLimit:
		return http.StatusTooManyRequests
	case storage.CodeInternal:
		return http.StatusInternalServerError
	case storage.CodeShuttingDown:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// writeError answers a request that never reached GraphQL execution with
// a GraphQL-shaped error body of code and the status that code maps to.
// It is the one place such responses are written.
func writeError(w http.ResponseWriter, code storage.ErrorCode, msg string) {
	writeErrorStatus(w, httpStatus(code), code, msg)
}

// WriteError is writeError for handlers outside this package that answer
// requests beside GraphQL (the export), so every such response has one shape.
func WriteError(w http.ResponseWriter, code storage.ErrorCode, msg string) {
	writeError(w, code, msg)
}

// WriteErrorStatus is WriteError with a status of its own, for an answer
// that no code maps to (406 to an export's unsupported Accept).
func WriteErrorStatus(w http.ResponseWriter, status int, code storage.ErrorCode, msg string) {
	writeErrorStatus(w, status, code, msg)
}

func writeErrorStatus(w http.ResponseWriter, status int, code storage.ErrorCode, msg string) {
	body, _ := json.Marshal(requestErrorBody{Errors: gqlerror.List{{
		Message: msg, Extensions: map[string]any{"code": string(code)},
	}}})
	w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeUnauthenticated answers a request without a valid bearer token.
func writeUnauthenticated(w http.ResponseWriter, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="referrals"`)
	writeError(w, storage.CodeUnauthenticated, err.Error())
}

// writeBodyError answers a request whose body could not be read: too
// large (413) or not sent in time or at all (400).
func writeBodyError(w http.ResponseWriter, err error) {
	status, msg := bodyError(err)
	writeErrorStatus(w, status, storage.CodeBadUserInput, msg)
}

// bodyError turns a body read error into a status and a message for the
// client.
func bodyError(err error) (int, string) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body exceeds the limit of %d bytes", tooLarge.Limit)
	}
	return http.StatusBadRequest, "the request body could not be read in time"
}

// requestErrorBody is a response without `data`, for requests that did not
// execute.
type requestErrorBody struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

package graph

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"referrals/graph/transport"
)

// TestPanicBecomesInternalError runs the recover and present functions the
// executor calls for a panicking resolver: the client gets INTERNAL with
// the request id, the log gets the panic value and the stack.
func TestPanicBecomesInternalError(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := transport.WithRequestID(context.Background(), "req-7")
	err := recoverPanic(logger)(ctx, "boom")
	got := presentError(logger)(ctx, err)
	if got.Extensions["code"] != "INTERNAL" || got.Message != "internal error (request id req-7)" {
		t.Errorf("got %q %v", got.Message, got.Extensions)
	}
	for _, want := range []string{"panic in resolver", "request_id=req-7", "panic=boom", "goroutine"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

package embedded

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// attrCounter is a handler that counts the attributes it is given.
type attrCounter struct {
	attrs   *int
	records *[]string
}

func (h attrCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h attrCounter) Handle(_ context.Context, r slog.Record) error {
	*h.records = append(*h.records, r.Message)
	return nil
}
func (h attrCounter) WithAttrs(a []slog.Attr) slog.Handler { *h.attrs += len(a); return h }
func (h attrCounter) WithGroup(string) slog.Handler        { return h }

// TestEmbeddedLoggerSkipsDebugAttributes: FerretDB adds every statement's
// arguments to its logger before each debug call; they reach the server's
// handler only with a record that is logged.
func TestEmbeddedLoggerSkipsDebugAttributes(t *testing.T) {
	var attrs int
	var records []string
	logger := slog.New(errorsOnly{base: attrCounter{&attrs, &records}})
	logger.With("args", strings.Repeat("document ", 1000)).Debug("statement")
	logger.WithGroup("g").With("args", "x").Warn("routine")
	if attrs != 0 || len(records) != 0 {
		t.Fatalf("below error level: %d attributes passed on, records %v", attrs, records)
	}
	logger.With("args", "x").Error("failed")
	if attrs != 1 || !slices.Equal(records, []string{"failed"}) {
		t.Errorf("an error: %d attributes and records %v, want 1 and [failed]", attrs, records)
	}
}

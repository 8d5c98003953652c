package importer

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// TestLineSourceStoppedMidLine: a body that fails in the middle of a line
// (it stopped coming, and its read deadline passed) gives the lines
// before, then the failure; the part of the line read is not a record
// (the Scanner handed it over as a last line, and an import whose client
// stalled there answered an empty 200 and wrote nothing).
func TestLineSourceStoppedMidLine(t *testing.T) {
	body := io.MultiReader(strings.NewReader("{\"id\":\"whole\"}\n{\"id\":\"ha"), failing{os.ErrDeadlineExceeded})
	src := newLineSource(body, 1<<20)
	at, line, err := src.next()
	if err != nil || string(line) != `{"id":"whole"}` || at.line != 1 {
		t.Fatalf("first: line %d %q, %v; want the whole line 1", at.line, line, err)
	}
	at, line, err = src.next()
	if !errors.Is(err, os.ErrDeadlineExceeded) || line != nil || at.line != 2 {
		t.Fatalf("then: line %d %q, %v; want the deadline error at line 2, no record", at.line, line, err)
	}
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

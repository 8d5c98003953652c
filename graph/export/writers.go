package export

import (
	"encoding/json"
	"net/http"
	"time"
)

// writer writes the rows of one format.
type writer interface {
	start(w http.ResponseWriter)
	rows(nodes []json.RawMessage) error
	fail(err *pageError)
	flush() error
}

func newWriter(w http.ResponseWriter, ndjson bool) writer {
	if ndjson {
		return &jsonLines{w: w}
	}
	return &csvWriter{w: w}
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }

// pacedWriter writes an export under its Limits: every ProgressBytes
// written open a window whose bytes the client must take within
// ProgressInterval (a write deadline on the connection, renewed as bytes
// flow). A write that misses its deadline fails with
// os.ErrDeadlineExceeded, and the export ends. Each flush (the end of a
// page) closes the window, so the time spent reading the next page is not
// counted against the client.
type pacedWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	limits Limits
	end    time.Time // of MaxDuration
	left   int       // bytes the current window may still carry
}

func newPacedWriter(w http.ResponseWriter, limits Limits) *pacedWriter {
	return &pacedWriter{ResponseWriter: w, rc: http.NewResponseController(w), limits: limits, end: time.Now().Add(limits.MaxDuration)}
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if p.left == 0 {
			// Responses that cannot take a deadline (a recorder in tests)
			// are written without one.
			_ = p.rc.SetWriteDeadline(time.Now().Add(p.limits.ProgressInterval))
			p.left = p.limits.ProgressBytes
		}
		n, err := p.ResponseWriter.Write(b[:min(len(b), p.left)])
		written, p.left, b = written+n, p.left-n, b[n:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// Flush sends what is buffered and closes the window.
func (p *pacedWriter) Flush() {
	_ = p.rc.Flush()
	p.left = 0
}

// overdue reports whether the export has run for MaxDuration. It is asked
// between pages, so that the file can say why it ends there.
func (p *pacedWriter) overdue() bool { return !time.Now().Before(p.end) }

// jsonLines writes each referral as the API returns it, one per line.
type jsonLines struct{ w http.ResponseWriter }

func (j *jsonLines) start(w http.ResponseWriter) {
	attachment(w, MediaNDJSON+"; charset=utf-8", "jsonl")
}

func (j *jsonLines) rows(nodes []json.RawMessage) error {
	for _, n := range nodes {
		if _, err := j.w.Write(append(n, '\n')); err != nil {
			return err
		}
	}
	flush(j.w)
	return nil
}

// fail ends the stream with a line in the API's error shape.
func (j *jsonLines) fail(err *pageError) {
	line, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{
		"message": "the export failed and is incomplete: " + err.message, "extensions": map[string]any{"code": err.code},
	}}})
	_, _ = j.w.Write(append(line, '\n'))
	flush(j.w)
}

func (j *jsonLines) flush() error { flush(j.w); return nil }

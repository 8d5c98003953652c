// Package importer serves POST /import/referrals: referrals in the shape
// GET /export/referrals writes them (JSON Lines or CSV) or in a JSON array, reconciled with the store one record
// at a time (created, updated, unchanged or skipped), with a report line
// per record streamed as it is processed.
//
// It reads the body as a stream, one bounded line, CSV row or array element at
// a time, so an import holds one record in memory whatever its size. It imports the storage
// package (the one write of a whole referral, ImportReferral) and the
// HTTP edge's error writer, not the GraphQL layer.
package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"referrals/graph/transport"
	"referrals/storage"
)

// MediaNDJSON is the media type of the body: JSON Lines, one referral a
// line, as the export writes them.
const MediaNDJSON = "application/x-ndjson"

// MediaJSON is the media type of a body that is a JSON array of
// referrals, or an object whose "value" or "items" is that array.
const MediaJSON = "application/json"

// Store is what an import needs of the store.
type Store interface {
	ImportReferrals(ctx context.Context, recs []*storage.ImportedReferral, opts storage.ImportOptions) []storage.ImportResult
}

// Limits bound what one import reads.
type Limits struct {
	// MaxBytes bounds the body: one that declares more is refused before
	// anything is read, one that sends more ends the import there.
	MaxBytes int64
	// MaxLineBytes bounds one line (one record), its newline included.
	MaxLineBytes int
	// BatchRecords and BatchBytes bound the records the store reads and
	// writes together (see storage.ImportReferrals): their reports go
	// out when the batch is written.
	BatchRecords, BatchBytes int
}

// DefaultLimits are the limits of New: 512 MiB a file (about 250,000
// referrals as the export writes them) and 1 MiB a record (the largest a
// referral within the API's own limits is about 700 KB).
var DefaultLimits = Limits{MaxBytes: 512 << 20, MaxLineBytes: 1 << 20, BatchRecords: 200, BatchBytes: 8 << 20}

// Handler serves imports into a store. The request's context must carry
// its caller (transport.Handler.Upload).
type Handler struct {
	store  Store
	logger *slog.Logger
	// Limits are DefaultLimits unless changed before the handler serves.
	Limits Limits
}

// New returns the import handler over store.
func New(store Store, logger *slog.Logger) *Handler {
	return &Handler{store: store, logger: logger, Limits: DefaultLimits}
}

// Report is one line of an import's response: the outcome of one record.
type Report struct {
	// Line is the line of the record, or where its element of an array
	// starts.
	Line int `json:"line"`
	// Index is the position of the element in an array, from 0 (absent
	// for JSON Lines).
	Index   *int   `json:"index,omitempty"`
	ID      string `json:"id,omitempty"`
	Outcome string `json:"outcome"`
	Code    string `json:"code,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message,omitempty"`
}

// OutcomeError is the outcome of a record that was not imported.
const OutcomeError = "error"

// Summary is the last line of an import's response.
type Summary struct {
	Summary struct {
		Lines     int  `json:"lines"`
		Created   int  `json:"created"`
		Updated   int  `json:"updated"`
		Unchanged int  `json:"unchanged"`
		Skipped   int  `json:"skipped"`
		Error     int  `json:"error"`
		DryRun    bool `json:"dryRun"`
		// Complete is false when the import stopped before the end of
		// the body (a line or the body over its limit, an unreadable body).
		Complete bool `json:"complete"`
	} `json:"summary"`
}

// options reads the query string: dryRun and mode. Anything else is
// refused, as the export refuses it, rather than ignored.
func options(raw string) (storage.ImportOptions, error) {
	var opts storage.ImportOptions
	query, err := url.ParseQuery(raw)
	if err != nil {
		return opts, fmt.Errorf("the query string cannot be read (%v)", err)
	}
	for name, values := range query {
		if len(values) > 1 {
			return opts, fmt.Errorf("%s: given %d times; give it once", name, len(values))
		}
		switch v := values[0]; {
		case name == "dryRun" && (v == "true" || v == "false"):
			opts.DryRun = v == "true"
			if opts.DryRun {
				opts.Planned = storage.NewImportMemory()
			}
		case name == "mode" && (v == "overwrite" || v == "newer"):
			opts.Overwrite = v == "overwrite"
		case name == "dryRun":
			return opts, fmt.Errorf("dryRun: %.100q is neither true nor false", v)
		case name == "mode":
			return opts, fmt.Errorf("mode: %.100q is neither newer (the default) nor overwrite", v)
		default:
			return opts, fmt.Errorf("%.100q is not a parameter of the import: give dryRun and mode only (names are case-sensitive)", name)
		}
	}
	return opts, nil
}

// ServeHTTP imports the body. What makes the whole request unusable is
// answered with a coded JSON body before anything is read or written: a
// partner (403 FORBIDDEN), a query string it does not know (400), a
// Content-Type other than JSON Lines, JSON or CSV (415), a declared length
// over MaxBytes (413), a JSON body that does not open an array of
// referrals or a CSV header naming a column the export does not write
// (400). Then the response is JSON Lines: a Report per record,
// and a Summary.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, code storage.ErrorCode, msg string) {
		w.Header().Set("Connection", "close") // the body is left unread
		transport.WriteErrorStatus(w, status, code, msg)
	}
	if !storage.CallerFrom(r.Context()).IsAdmin() {
		refuse(http.StatusForbidden, storage.CodeForbidden, "only administrators may import referrals")
		return
	}
	opts, err := options(r.URL.RawQuery)
	if err != nil {
		refuse(http.StatusBadRequest, storage.CodeBadUserInput, err.Error())
		return
	}
	media, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (media != MediaNDJSON && media != MediaJSON && media != MediaCSV) {
		refuse(http.StatusUnsupportedMediaType, storage.CodeBadUserInput,
			fmt.Sprintf("Content-Type: send referrals as %s, one a line, as the export writes them, as %s, an array of referrals, or as %s, the export's CSV", MediaNDJSON, MediaJSON, MediaCSV))
		return
	}
	if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") && !strings.EqualFold(charset, "utf8") {
		// Read as UTF-8 it would be another text: refused, not guessed.
		refuse(http.StatusUnsupportedMediaType, storage.CodeBadUserInput,
			fmt.Sprintf("Content-Type: charset %.40q: send the file as UTF-8 (charset=utf-8, or no charset)", charset))
		return
	}
	if r.ContentLength > h.Limits.MaxBytes {
		refuse(http.StatusRequestEntityTooLarge, storage.CodeBadUserInput,
			fmt.Sprintf("the file is %d bytes, over the limit of %d bytes: import it in parts", r.ContentLength, h.Limits.MaxBytes))
		return
	}
	body := bufio.NewReader(http.MaxBytesReader(w, r.Body, h.Limits.MaxBytes))
	// Read before the response begins: a client that sent "Expect:
	// 100-continue" sends the body when asked, and net/http asks at the
	// first read only if no response has begun (curl, which asks for
	// files over 1 MB, otherwise waited a second, its timeout, on each).
	_, _ = body.Peek(1)
	// A byte order mark (Windows editors, and the CSV export, write one)
	// is not part of the first record, in any format.
	if b, err := body.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = body.Discard(3)
	}
	var src source = newLineSource(body, h.Limits.MaxLineBytes)
	switch media {
	case MediaJSON:
		src, err = newArraySource(body, h.Limits.MaxLineBytes)
	case MediaCSV:
		src, err = newCSVSource(body, h.Limits.MaxLineBytes)
	}
	if err != nil {
		refuse(http.StatusBadRequest, storage.CodeBadUserInput, h.readError(err)+": nothing was imported")
		return
	}
	// Reports go out while the body comes in: without full duplex, HTTP/1.1
	// in net/http closes the body at the first flush of the response.
	_ = http.NewResponseController(w).EnableFullDuplex()
	// Closed when the handler returns, read whole or not: net/http would
	// otherwise read on for the next request while the body is being
	// closed, and panic ("invalid concurrent Body.Read call", Go issue
	// 68560), ending the connection.
	defer r.Body.Close()
	w.Header().Set("Content-Type", MediaNDJSON+"; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	h.importRecords(w, r, src, opts)
}

// importRecords imports the records of src and writes their reports, then
// the summary.
func (h *Handler) importRecords(w http.ResponseWriter, r *http.Request, src source, opts storage.ImportOptions) {
	out := json.NewEncoder(w)
	out.SetEscapeHTML(false)
	rc := http.NewResponseController(w)
	var sum Summary
	sum.Summary.DryRun = opts.DryRun
	counts := map[string]*int{
		string(storage.ImportCreated): &sum.Summary.Created, string(storage.ImportUpdated): &sum.Summary.Updated,
		string(storage.ImportUnchanged): &sum.Summary.Unchanged, string(storage.ImportSkipped): &sum.Summary.Skipped,
		OutcomeError: &sum.Summary.Error,
	}
	_, fromCSV := src.(*csvSource)
	report := func(rep Report) bool {
		(*counts[rep.Outcome])++
		if fromCSV {
			rep.Field = csvColumnOf(rep.Field)
		}
		return out.Encode(rep) == nil
	}
	// A batch of records read, written together; its reports, in the
	// order of the records, go out once it is written.
	var batch []pendingRecord
	size := 0
	flush := func() bool {
		ok := true
		for _, rep := range h.importBatch(r.Context(), batch, opts) {
			ok = ok && report(rep)
		}
		batch, size = batch[:0], 0
		_ = rc.Flush()
		return ok
	}
	for {
		at, rec, err := src.next()
		if err == io.EOF {
			sum.Summary.Complete = true
			break
		}
		var bad *recordError
		if errors.As(err, &bad) {
			batch = append(batch, pendingRecord{report: &Report{Line: at.line, ID: bad.id, Outcome: OutcomeError, Code: string(storage.CodeBadUserInput), Field: bad.field, Message: bad.message}})
			continue
		}
		if err != nil {
			if !flush() {
				return
			}
			report(Report{Line: at.line, Outcome: OutcomeError, Code: string(storage.CodeBadUserInput), Message: h.readError(err) + ": the import stopped here"})
			break
		}
		if r.Context().Err() != nil {
			h.logger.InfoContext(r.Context(), "import ended early: the client went away", "request_id", transport.RequestID(r.Context()), "line", at.line)
			return
		}
		// A copy: a source reuses its buffer for the next record.
		batch, size = append(batch, pendingRecord{at: at, raw: bytes.Clone(rec)}), size+len(rec)
		if (len(batch) >= h.Limits.BatchRecords || size >= h.Limits.BatchBytes) && !flush() {
			return
		}
	}
	if !flush() {
		return
	}
	sum.Summary.Lines = src.seen()
	_ = out.Encode(sum)
}

// pendingRecord is a record of a batch: read, to import, or already
// reported (a line that could not be read as a record).
type pendingRecord struct {
	at     position
	raw    []byte
	report *Report
}

// readError says why the body could not be read on.
func (h *Handler) readError(err error) string {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var shape shapeError
	var parse *csv.ParseError
	switch {
	case errors.As(err, &shape):
		return shape.Error()
	case errors.As(err, &syntax):
		return fmt.Sprintf("the JSON is malformed at byte %d (%v)", syntax.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON ends in the middle of a value"
	case errors.As(err, &tooLarge):
		return fmt.Sprintf("the file exceeds the limit of %d bytes; import the rest in another file", tooLarge.Limit)
	case errors.As(err, &parse):
		return fmt.Sprintf("the CSV is malformed at line %d, column %d (%v)", parse.Line, parse.Column, parse.Err)
	case errors.Is(err, errElementTooLong):
		return fmt.Sprintf("a value of the body (an element of the array, or a member of the object around it) is longer than %d bytes, 4 times the limit of a record", 4*h.Limits.MaxLineBytes)
	case errors.Is(err, errRowTooLong):
		return fmt.Sprintf("a CSV row is longer than %d bytes", h.Limits.MaxLineBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "the file stopped coming: nothing of it arrived for the read timeout"
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Sprintf("the line is longer than %d bytes", h.Limits.MaxLineBytes)
	}
	return "the file could not be read on"
}

// importBatch imports the records of batch and returns their reports,
// in order. The writes are not cut short when the client leaves: a record
// is written whole.
func (h *Handler) importBatch(ctx context.Context, batch []pendingRecord, opts storage.ImportOptions) []Report {
	reports := make([]Report, len(batch))
	decoded := make([]*storage.ImportedReferral, len(batch))
	namings := make([]naming, len(batch))
	// Decoded on every processor: reading JSON is most of an unchanged
	// record's cost.
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range batch {
		if p.report != nil {
			reports[i] = *p.report
			continue
		}
		g.Go(func() error {
			reports[i] = Report{Line: p.at.line, Index: p.at.index, Outcome: OutcomeError}
			if len(p.raw) > h.Limits.MaxLineBytes { // an element of an array; a line is bounded as it is read
				reports[i].Code, reports[i].Message = string(storage.CodeBadUserInput), fmt.Sprintf("the record is %d bytes, over the limit of %d bytes a record", len(p.raw), h.Limits.MaxLineBytes)
				return nil
			}
			if !utf8.Valid(p.raw) {
				reports[i].Code, reports[i].Message = string(storage.CodeBadUserInput), fmt.Sprintf("the record is not valid UTF-8 (at byte %d of it): send the file as UTF-8", invalidUTF8At(p.raw))
				return nil
			}
			rec, id, naming, err := decode(p.raw)
			reports[i].ID, namings[i] = id, naming
			if err != nil {
				h.fail(ctx, &reports[i], err)
				return nil
			}
			rec.Partial = p.at.missing
			decoded[i] = rec
			return nil
		})
	}
	_ = g.Wait()
	var recs []*storage.ImportedReferral
	var at []int // the position in batch of each of recs
	for i, rec := range decoded {
		if rec != nil {
			recs, at = append(recs, rec), append(at, i)
		}
	}
	if len(recs) == 0 {
		return reports
	}
	for k, res := range h.store.ImportReferrals(context.WithoutCancel(ctx), recs, opts) {
		rep := &reports[at[k]]
		if res.Err != nil {
			h.fail(ctx, rep, namings[at[k]].fieldOf(res.Err))
			continue
		}
		rep.Outcome, rep.Message = string(res.Outcome), res.Reason
	}
	return reports
}

// fail reports err as the error of the record of rep.
func (h *Handler) fail(ctx context.Context, rep *Report, err error) {
	rep.Outcome, rep.Code, rep.Message = OutcomeError, string(storage.ErrorCodeOf(err)), err.Error()
	var se *storage.Error
	if errors.As(err, &se) {
		rep.Field, rep.Message = strings.Join(se.Field, "."), se.Message
		return
	}
	h.logger.ErrorContext(ctx, "import a referral", "request_id", transport.RequestID(ctx), "line", rep.Line, "referral_id", rep.ID, "error", err)
	rep.Message = "internal error (request id " + transport.RequestID(ctx) + "): the record was not imported or was imported whole; import the file again to know"
}

// invalidUTF8At is the offset of the first byte of b that is not UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

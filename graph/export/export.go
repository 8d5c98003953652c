// Package export serves GET /export/referrals: every referral matching a
// filter, streamed as CSV or JSON Lines.
//
// It reads through the GraphQL executor, a page of the `referrals`
// connection at a time with its keyset cursor, so an export is validated,
// limited and scoped to the caller exactly as the API's own reads are, and
// holds one page in memory whatever its size. It imports the executor's
// interface and the HTTP edge's error writer, not the GraphQL layer.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/99designs/gqlgen/graphql"

	"referrals/graph/transport"
	"referrals/storage"
)

// pageSize is how many referrals one read of an export asks for: the
// largest page of the API.
const pageSize = storage.MaxPageSize

// Media types of the export, asked for with Accept.
const (
	MediaCSV    = "text/csv"
	MediaNDJSON = "application/x-ndjson"
)

// ReferralFields is the selection of a referral that an export writes a
// line of, and that a webhook delivery's body holds.
const ReferralFields = `id createdDateTime updatedDateTime version status statusReason referralSource
      customerProfile {
        id name size
        address { addressLine1 addressLine2 city state postalCode country }
        contacts { firstName lastName email phoneNumber }
      }
      details {
        notes dealValue closingDate
        requirements { industryFocus { id } products { id } serviceTypes { id } solutions { id } }
      }
      participants { id organizationId organizationName status expirationDateTime }`

// exportQuery is what an export reads, one page at a time.
var exportQuery = fmt.Sprintf(`query Export($filter: ReferralFilter, $orderBy: ReferralOrder, $after: String) {
  referrals(filter: $filter, orderBy: $orderBy, first: %d, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      %s
    }
  }
}`, pageSize, ReferralFields)

// Limits bound how long an export may hold its connection and stream
// slot: a client that reads slowly, or not at all, would otherwise keep
// both for as long as it likes (one reading a byte a second held an
// export for minutes).
type Limits struct {
	// Each ProgressBytes of the export (or what is left of a page) must be
	// taken by the client within ProgressInterval of being offered.
	ProgressBytes    int
	ProgressInterval time.Duration
	// MaxDuration bounds the whole export; past it the export ends.
	MaxDuration time.Duration
}

// DefaultLimits are the limits of New: at least 64 KiB every 30 s (about
// 2 KiB/s, a tenth of a slow mobile link) and 15 minutes in all (the whole
// export of 100,000 referrals took 19 s to 162 s here).
var DefaultLimits = Limits{ProgressBytes: 64 << 10, ProgressInterval: 30 * time.Second, MaxDuration: 15 * time.Minute}

// Handler serves exports over a GraphQL executor. The request's context
// must carry its caller (transport.Handler.Stream).
type Handler struct {
	exec   graphql.GraphExecutor
	logger *slog.Logger
	// Limits are DefaultLimits unless changed before the handler serves.
	Limits Limits
}

// New returns the export handler over exec.
func New(exec graphql.GraphExecutor, logger *slog.Logger) *Handler {
	return &Handler{exec: exec, logger: logger, Limits: DefaultLimits}
}

// ServeHTTP streams the export. `filter` and `orderBy` are JSON in the
// query string, as the `referrals` arguments take them. Anything wrong
// with them is answered 400 BAD_USER_INPUT (with the API's error shape)
// before the first byte of the export, an Accept that allows neither
// format 406; a failure after that ends the stream with an error line.
// HEAD answers the headers of the export after validating the query, and
// reads no referral.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ndjson, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		transport.WriteErrorStatus(w, http.StatusNotAcceptable, storage.CodeBadUserInput,
			fmt.Sprintf("Accept: the export is served as %s or %s only", MediaCSV, MediaNDJSON))
		return
	}
	// Go's r.URL.Query() drops a pair it cannot read (an unencoded ";"),
	// which would export everything instead of the filtered rows.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		transport.WriteError(w, storage.CodeBadUserInput, "the query string cannot be read ("+err.Error()+"): percent-encode filter and orderBy, \";\" as %3B")
		return
	}
	// A parameter the export does not know (a misspelt FILTER=) is refused
	// rather than ignored, which would export everything.
	for name := range query {
		if name != "filter" && name != "orderBy" {
			transport.WriteError(w, storage.CodeBadUserInput, fmt.Sprintf("%.100q is not a parameter of the export: give filter and orderBy only (names are case-sensitive)", name))
			return
		}
	}
	vars := map[string]any{}
	for _, name := range []string{"filter", "orderBy"} {
		if len(query[name]) > 1 {
			transport.WriteError(w, storage.CodeBadUserInput, fmt.Sprintf("%s: given %d times; give it once", name, len(query[name])))
			return
		}
		raw := query.Get(name)
		if raw == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber() // Decimal amounts stay digit for digit
		var v map[string]any
		if err := dec.Decode(&v); err != nil || dec.More() {
			transport.WriteError(w, storage.CodeBadUserInput, fmt.Sprintf("%s: not a JSON object: give it as the %s argument of `referrals` is written in JSON", name, name))
			return
		}
		vars[name] = v
	}
	paced := newPacedWriter(w, h.Limits)
	out := newWriter(paced, ndjson)
	if r.Method == http.MethodHead {
		if _, _, err := h.prepare(r.Context(), vars); err != nil {
			transport.WriteError(w, err.code, err.message)
			return
		}
		out.start(w)
		return
	}
	// A page is read to its end even when the client leaves (or the server
	// shuts down) meanwhile, and the export stops before the next: its
	// reads are never cut short, so a client hanging up is no failure of
	// the store's.
	ctx := context.WithoutCancel(r.Context())
	for started := false; ; started = true {
		if r.Context().Err() != nil {
			if errors.Is(context.Cause(r.Context()), transport.ErrShuttingDown) {
				// The client is still there: say why its file ends here.
				h.logger.InfoContext(ctx, "export ended: the server is shutting down", "request_id", transport.RequestID(ctx))
				err := &pageError{code: storage.CodeShuttingDown, message: "the server is shutting down; export again once it is back"}
				if !started {
					transport.WriteError(w, err.code, err.message)
					return
				}
				out.fail(err)
				return
			}
			h.logger.DebugContext(ctx, "export ended early: the client went away", "request_id", transport.RequestID(ctx))
			return
		}
		if started && paced.overdue() {
			h.logger.InfoContext(ctx, "export ended: it took longer than its bound", "request_id", transport.RequestID(ctx), "max_duration", h.Limits.MaxDuration)
			out.fail(&pageError{code: storage.CodeComplexityLimit, message: fmt.Sprintf("exports end after %s; export less at a time (a narrower filter, such as a createdDateTime range)", h.Limits.MaxDuration)})
			return
		}
		p, err := h.page(ctx, vars)
		switch {
		case err != nil && !started:
			transport.WriteError(w, err.code, err.message)
			return
		case err != nil:
			out.fail(err)
			return
		case !started:
			out.start(w)
		}
		if err := out.rows(p.Nodes); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				h.logger.InfoContext(ctx, "export ended: the client did not read it in time", "request_id", transport.RequestID(ctx))
				return
			}
			h.logger.DebugContext(ctx, "export ended early: the client went away", "request_id", transport.RequestID(ctx), "error", err)
			return
		}
		if !p.PageInfo.HasNextPage {
			_ = out.flush()
			return
		}
		vars["after"] = p.PageInfo.EndCursor
	}
}

// negotiate picks the export's format from the Accept header as RFC 9110
// (section 12.5.1) has it: for each format the most specific media range
// that matches it gives its quality, the better quality wins and CSV
// wins ties. No Accept, */* and text/* get CSV; ok is false when neither
// format is acceptable.
func negotiate(accept []string) (ndjson, ok bool) {
	if strings.TrimSpace(strings.Join(accept, "")) == "" {
		return false, true
	}
	var quality, specificity [2]float64 // of CSV, of JSON Lines
	specificity = [2]float64{-1, -1}
	for _, header := range accept {
		for part := range strings.SplitSeq(header, ",") {
			media, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, set := params["q"]; set {
				if q, err = strconv.ParseFloat(v, 64); err != nil {
					continue
				}
			}
			for i, format := range []string{MediaCSV, MediaNDJSON} {
				kind, _, _ := strings.Cut(format, "/")
				var spec float64
				switch media {
				case format:
					spec = 2
				case kind + "/*":
					spec = 1
				case "*/*":
					spec = 0
				default:
					continue
				}
				if spec > specificity[i] {
					specificity[i], quality[i] = spec, q
				}
			}
		}
	}
	if quality[0] <= 0 && quality[1] <= 0 {
		return false, false
	}
	return quality[1] > quality[0], true
}

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

// attachment sets the download headers of an export. The connection
// closes after it: the write deadline that bounds the export's last bytes
// (pacedWriter) stays on the connection, where it would fail a later
// response.
func attachment(w http.ResponseWriter, media, ext string) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", media)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="referrals-%s.%s"`, time.Now().UTC().Format("20060102T150405Z"), ext))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
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

// csvWriter writes the flattened columns (Columns) as RFC 4180 has it,
// after a UTF-8 byte order mark (which tells Excel the file is UTF-8):
// CRLF at the end of each record, a field in double quotes when it holds
// a quote, comma, CR or LF or starts with a space, quotes doubled, and CR
// and LF inside a quoted field written as they are, so the value reads
// back exactly (encoding/csv's Writer would turn LF into CRLF and drop a
// lone CR). It writes a page at a time.
type csvWriter struct {
	w   http.ResponseWriter
	buf []byte
}

// bom is the UTF-8 byte order mark.
const bom = "\uFEFF"

func (c *csvWriter) start(w http.ResponseWriter) {
	attachment(w, MediaCSV+"; charset=utf-8; header=present", "csv")
	header := make([]string, len(Columns))
	for i, col := range Columns {
		header[i] = col.Name
	}
	c.buf = append(c.buf, bom...)
	c.record(header)
}

// record appends one record to the page being written.
func (c *csvWriter) record(fields []string) {
	for i, f := range fields {
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		if !strings.ContainsAny(f, "\",\r\n") && !strings.HasPrefix(f, " ") {
			c.buf = append(c.buf, f...)
			continue
		}
		c.buf = append(c.buf, '"')
		c.buf = append(c.buf, strings.ReplaceAll(f, `"`, `""`)...)
		c.buf = append(c.buf, '"')
	}
	c.buf = append(c.buf, '\r', '\n')
}

func (c *csvWriter) rows(nodes []json.RawMessage) error {
	for _, n := range nodes {
		var r referral
		if err := json.Unmarshal(n, &r); err != nil {
			return err
		}
		record := make([]string, len(Columns))
		for i, col := range Columns {
			record[i] = neutralize(col.value(&r))
		}
		c.record(record)
	}
	return c.flush()
}

// fail ends the file with a row whose one cell says it is incomplete.
func (c *csvWriter) fail(err *pageError) {
	c.record([]string{fmt.Sprintf("#ERROR %s: the export failed and is incomplete: %s", err.code, err.message)})
	_ = c.flush()
}

// flush writes the records appended so far.
func (c *csvWriter) flush() error {
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	flush(c.w)
	return err
}

// neutralize keeps a spreadsheet from reading a cell as a formula (OWASP
// "CSV injection"): a cell starting with =, +, -, @, a tab or a carriage
// return gets a leading apostrophe, which spreadsheets show as text. So
// does a cell where one of those signs follows only characters a
// spreadsheet may skip or not show: spaces, line breaks, controls such as
// NUL, and invisible format characters (a zero-width space, a byte order
// mark, bidi controls).
func neutralize(cell string) string {
	if cell != "" && strings.ContainsRune("\t\r", rune(cell[0])) {
		return "'" + cell
	}
	rest := strings.TrimLeftFunc(cell, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	})
	if rest != "" && strings.ContainsRune("=+-@", rune(rest[0])) {
		return "'" + cell
	}
	return cell
}

// referral is a referral as the export's query returns it.
type referral struct {
	ID, CreatedDateTime, UpdatedDateTime, Status, ReferralSource string
	Version                                                      int
	StatusReason                                                 *string
	CustomerProfile                                              *struct {
		ID, Name, Size *string
		Address        *struct {
			AddressLine1, AddressLine2, City, State, PostalCode, Country *string
		}
		Contacts []struct{ FirstName, LastName, Email, PhoneNumber *string }
	}
	Details *struct {
		Notes, DealValue, ClosingDate *string
		Requirements                  map[string][]struct{ ID string }
	}
	Participants []struct {
		ID, OrganizationID, Status           string
		OrganizationName, ExpirationDateTime *string
	}
}

// Column is one column of the CSV export.
type Column struct {
	Name  string
	value func(*referral) string
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// list is the cell of a list: its entries as a JSON array (absent values
// null), so that no entry's text can run into the next.
func list[T any](entries []T) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<email>" stays readable
	_ = enc.Encode(entries)  // cannot fail: strings and nils
	return strings.TrimSuffix(b.String(), "\n")
}

func profile(f func(p *referral) *string) func(*referral) string {
	return func(r *referral) string {
		if r.CustomerProfile == nil {
			return ""
		}
		return str(f(r))
	}
}

func address(f func(r *referral) *string) func(*referral) string {
	return func(r *referral) string {
		if r.CustomerProfile == nil || r.CustomerProfile.Address == nil {
			return ""
		}
		return str(f(r))
	}
}

func detail(f func(r *referral) *string) func(*referral) string {
	return func(r *referral) string {
		if r.Details == nil {
			return ""
		}
		return str(f(r))
	}
}

func tags(category string) func(*referral) string {
	return func(r *referral) string {
		if r.Details == nil {
			return ""
		}
		ids := make([]string, len(r.Details.Requirements[category]))
		for i, t := range r.Details.Requirements[category] {
			ids[i] = t.ID
		}
		return list(ids)
	}
}

func participants(f func(id, org, status string, name, expires *string) any) func(*referral) string {
	return func(r *referral) string {
		parts := make([]any, len(r.Participants))
		for i, p := range r.Participants {
			parts[i] = f(p.ID, p.OrganizationID, p.Status, p.OrganizationName, p.ExpirationDateTime)
		}
		return list(parts)
	}
}

// Columns are the CSV export's columns, in order. Lists (contacts, tags,
// participants) are one cell each, a JSON array of their entries; the
// participant columns list the participants in the same order.
var Columns = []Column{
	{"id", func(r *referral) string { return r.ID }},
	{"createdDateTime", func(r *referral) string { return r.CreatedDateTime }},
	{"updatedDateTime", func(r *referral) string { return r.UpdatedDateTime }},
	{"version", func(r *referral) string { return strconv.Itoa(r.Version) }},
	{"status", func(r *referral) string { return r.Status }},
	{"statusReason", func(r *referral) string { return str(r.StatusReason) }},
	{"referralSource", func(r *referral) string { return r.ReferralSource }},
	{"customerId", profile(func(r *referral) *string { return r.CustomerProfile.ID })},
	{"customerName", profile(func(r *referral) *string { return r.CustomerProfile.Name })},
	{"customerSize", profile(func(r *referral) *string { return r.CustomerProfile.Size })},
	{"addressLine1", address(func(r *referral) *string { return r.CustomerProfile.Address.AddressLine1 })},
	{"addressLine2", address(func(r *referral) *string { return r.CustomerProfile.Address.AddressLine2 })},
	{"city", address(func(r *referral) *string { return r.CustomerProfile.Address.City })},
	{"state", address(func(r *referral) *string { return r.CustomerProfile.Address.State })},
	{"postalCode", address(func(r *referral) *string { return r.CustomerProfile.Address.PostalCode })},
	{"country", address(func(r *referral) *string { return r.CustomerProfile.Address.Country })},
	{"contacts", func(r *referral) string {
		if r.CustomerProfile == nil {
			return ""
		}
		out := make([]string, len(r.CustomerProfile.Contacts))
		for i, c := range r.CustomerProfile.Contacts {
			out[i] = strings.TrimSpace(fmt.Sprintf("%s %s <%s> %s", str(c.FirstName), str(c.LastName), str(c.Email), str(c.PhoneNumber)))
		}
		return list(out)
	}},
	{"notes", detail(func(r *referral) *string { return r.Details.Notes })},
	{"dealValue", detail(func(r *referral) *string { return r.Details.DealValue })},
	{"closingDate", detail(func(r *referral) *string { return r.Details.ClosingDate })},
	{"industryFocus", tags("industryFocus")},
	{"products", tags("products")},
	{"serviceTypes", tags("serviceTypes")},
	{"solutions", tags("solutions")},
	{"participantCount", func(r *referral) string { return strconv.Itoa(len(r.Participants)) }},
	{"participantIds", participants(func(id, _, _ string, _, _ *string) any { return id })},
	{"participantOrganizationIds", participants(func(_, org, _ string, _, _ *string) any { return org })},
	{"participantOrganizationNames", participants(func(_, _, _ string, name, _ *string) any { return name })},
	{"participantStatuses", participants(func(_, _, st string, _, _ *string) any { return st })},
	{"participantExpirations", participants(func(_, _, _ string, _, exp *string) any { return exp })},
}

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
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"referrals/graph/transport"
	"referrals/storage"
)

// pageSize is how many referrals one read of an export asks for: the
// largest page of the API.
const pageSize = storage.MaxPageSize

// MediaNDJSON is the media type of JSON Lines, asked for with Accept.
const MediaNDJSON = "application/x-ndjson"

// query is what an export reads, one page at a time.
var query = fmt.Sprintf(`query Export($filter: ReferralFilter, $orderBy: ReferralOrder, $after: String) {
  referrals(filter: $filter, orderBy: $orderBy, first: %d, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id createdDateTime updatedDateTime version status statusReason referralSource
      customerProfile {
        id name size
        address { addressLine1 addressLine2 city state postalCode country }
        contacts { firstName lastName email phoneNumber }
      }
      details {
        notes dealValue closingDate
        requirements { industryFocus { id } products { id } serviceTypes { id } solutions { id } }
      }
      participants { id organizationId organizationName status expirationDateTime }
    }
  }
}`, pageSize)

// Handler serves exports over a GraphQL executor. The request's context
// must carry its caller (transport.Auth.Identified).
type Handler struct {
	exec   graphql.GraphExecutor
	logger *slog.Logger
}

// New returns the export handler over exec.
func New(exec graphql.GraphExecutor, logger *slog.Logger) *Handler {
	return &Handler{exec: exec, logger: logger}
}

// ServeHTTP streams the export. `filter` and `orderBy` are JSON in the
// query string, as the `referrals` arguments take them. Anything wrong
// with them is answered 400 BAD_USER_INPUT (with the API's error shape)
// before the first byte of the export; a failure after that ends the
// stream with an error line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	vars := map[string]any{}
	for _, name := range []string{"filter", "orderBy"} {
		raw := r.URL.Query().Get(name)
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
	out := newWriter(w, strings.Contains(r.Header.Get("Accept"), MediaNDJSON))
	for started := false; ; started = true {
		p, err := h.page(r.Context(), vars)
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
			h.logger.WarnContext(r.Context(), "export cut short", "error", err)
			return // the client went away
		}
		if !p.PageInfo.HasNextPage {
			out.flush()
			return
		}
		vars["after"] = p.PageInfo.EndCursor
	}
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

// page reads the page after vars["after"] as the caller of ctx.
func (h *Handler) page(ctx context.Context, vars map[string]any) (*page, *pageError) {
	ctx = graphql.StartOperationTrace(ctx)
	params := &graphql.RawParams{Query: query, OperationName: "Export", Variables: vars,
		ReadTime: graphql.TraceTiming{Start: graphql.Now(), End: graphql.Now()}}
	var resp *graphql.Response
	if opCtx, errs := h.exec.CreateOperationContext(ctx, params); errs != nil {
		resp = h.exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
	} else {
		handler, ctx := h.exec.DispatchOperation(ctx, opCtx)
		resp = handler(ctx)
	}
	if len(resp.Errors) > 0 {
		e := resp.Errors[0]
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = string(storage.CodeInternal)
		}
		return nil, &pageError{code: storage.ErrorCode(code), message: e.Message}
	}
	var data struct{ Referrals page }
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		return nil, &pageError{code: storage.CodeInternal, message: "internal error: the page could not be read"}
	}
	return &data.Referrals, nil
}

// writer writes the rows of one format.
type writer interface {
	start(w http.ResponseWriter)
	rows(nodes []json.RawMessage) error
	fail(err *pageError)
	flush()
}

func newWriter(w http.ResponseWriter, ndjson bool) writer {
	if ndjson {
		return &jsonLines{w: w}
	}
	return &csvWriter{csv: csv.NewWriter(w), w: w}
}

// attachment sets the download headers of an export.
func attachment(w http.ResponseWriter, media, ext string) {
	w.Header().Set("Content-Type", media)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="referrals-%s.%s"`, time.Now().UTC().Format("20060102T150405Z"), ext))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }

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

func (j *jsonLines) flush() { flush(j.w) }

// csvWriter writes the flattened columns (Columns), CRLF line ends and
// quotes as RFC 4180 and Excel expect.
type csvWriter struct {
	csv *csv.Writer
	w   http.ResponseWriter
}

func (c *csvWriter) start(w http.ResponseWriter) {
	attachment(w, "text/csv; charset=utf-8; header=present", "csv")
	c.csv.UseCRLF = true
	header := make([]string, len(Columns))
	for i, col := range Columns {
		header[i] = col.Name
	}
	_ = c.csv.Write(header)
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
		if err := c.csv.Write(record); err != nil {
			return err
		}
	}
	c.csv.Flush()
	flush(c.w)
	return c.csv.Error()
}

// fail ends the file with a row whose one cell says it is incomplete.
func (c *csvWriter) fail(err *pageError) {
	_ = c.csv.Write([]string{fmt.Sprintf("#ERROR %s: the export failed and is incomplete: %s", err.code, err.message)})
	c.csv.Flush()
	flush(c.w)
}

func (c *csvWriter) flush() { c.csv.Flush(); flush(c.w) }

// neutralize keeps a spreadsheet from reading a cell as a formula (OWASP
// "CSV injection"): a cell starting with =, +, -, @, a tab or a carriage
// return gets a leading apostrophe, which spreadsheets show as text.
func neutralize(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
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

// listSeparator joins the values of a list in one cell; tag ids contain
// commas but never semicolons.
const listSeparator = "; "

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
		return strings.Join(ids, listSeparator)
	}
}

func participants(f func(id, org, status string, name, expires *string) string) func(*referral) string {
	return func(r *referral) string {
		parts := make([]string, len(r.Participants))
		for i, p := range r.Participants {
			parts[i] = f(p.ID, p.OrganizationID, p.Status, p.OrganizationName, p.ExpirationDateTime)
		}
		return strings.Join(parts, listSeparator)
	}
}

// Columns are the CSV export's columns, in order. Lists (contacts, tags,
// participants) are one cell each, their entries joined by "; "; the
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
		return strings.Join(out, listSeparator)
	}},
	{"notes", detail(func(r *referral) *string { return r.Details.Notes })},
	{"dealValue", detail(func(r *referral) *string { return r.Details.DealValue })},
	{"closingDate", detail(func(r *referral) *string { return r.Details.ClosingDate })},
	{"industryFocus", tags("industryFocus")},
	{"products", tags("products")},
	{"serviceTypes", tags("serviceTypes")},
	{"solutions", tags("solutions")},
	{"participantCount", func(r *referral) string { return strconv.Itoa(len(r.Participants)) }},
	{"participantIds", participants(func(id, _, _ string, _, _ *string) string { return id })},
	{"participantOrganizationIds", participants(func(_, org, _ string, _, _ *string) string { return org })},
	{"participantOrganizationNames", participants(func(_, _, _ string, name, _ *string) string { return str(name) })},
	{"participantStatuses", participants(func(_, _, st string, _, _ *string) string { return st })},
	{"participantExpirations", participants(func(_, _, _ string, _, exp *string) string { return str(exp) })},
}

package importer

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"referrals/graph/export"
)

// MediaCSV is the media type of a body in the CSV export's shape: a UTF-8
// byte order mark (optional), a header row naming the export's columns,
// then a referral a row, lists as JSON arrays in their cells.
const MediaCSV = "text/csv"

// csvColumns are the columns of the CSV export (export.Columns), in its
// order. A header may give them in any order, and leave some out.
var csvColumns = func() []string {
	names := make([]string, len(export.Columns))
	for i, c := range export.Columns {
		names[i] = c.Name
	}
	return names
}()

// recordError is a record that cannot be read (a row of the wrong width,
// a list cell that is not a JSON array): an error for that record, and
// the import goes on.
type recordError struct {
	field, message string
	id             string // of the record, when known
}

func (e *recordError) Error() string { return e.message }

// csvSource reads the CSV export a row at a time (encoding/csv, reusing
// one record), turning each row into the record the export's JSON Lines
// would hold.
type csvSource struct {
	rows    *csv.Reader
	budget  *rowBudget
	columns []string // the header's columns, in its order
	missing []string // content columns the header leaves out
	n       int      // rows read after the header
	line    int      // the last line read
}

// rowBudget bounds what one row reads of the body: the row limit, plus
// what the CSV reader's buffer reads ahead.
type rowBudget struct {
	r         io.Reader
	max, left int
	err       error // past the budget; errRowTooLong when nil
}

// errRowTooLong is a row over its budget: the import ends there.
var errRowTooLong = errors.New("the CSV row is too long")

const csvReadAhead = 4096 // the size of the CSV reader's buffer

func (b *rowBudget) Read(p []byte) (int, error) {
	if b.left <= 0 && b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		return 0, errRowTooLong
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= n
	return n, err
}

func (b *rowBudget) reset() { b.left = b.max + csvReadAhead }

// newCSVSource reads the byte order mark and the header, refusing a
// header that names a column the export does not write, or one twice. A
// row (the header too) is at most maxRow bytes: a longer one ends the
// import.
func newCSVSource(body io.Reader, maxRow int) (*csvSource, error) {
	budget := &rowBudget{r: body, max: maxRow}
	budget.reset()
	buf := bufio.NewReaderSize(budget, csvReadAhead)
	if b, err := buf.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = buf.Discard(3)
	}
	rows := csv.NewReader(buf)
	rows.ReuseRecord = true
	header, err := rows.Read()
	if err == io.EOF {
		return nil, shapeError("the CSV file is empty: it needs a header row naming the export's columns")
	}
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(csvColumns))
	for _, c := range csvColumns {
		known[c] = true
	}
	seen := map[string]bool{}
	columns := make([]string, len(header))
	for i, name := range header {
		switch {
		case !known[name]:
			return nil, shapeError(fmt.Sprintf("the header's column %d, %.100q, is not a column of the export (names are case-sensitive): %s", i+1, name, strings.Join(csvColumns, ", ")))
		case seen[name]:
			return nil, shapeError(fmt.Sprintf("the header names %q twice", name))
		}
		seen[name] = true
		columns[i] = name
	}
	rows.FieldsPerRecord = len(columns)
	return &csvSource{rows: rows, budget: budget, columns: columns, missing: missingContent(columns), line: 1}, nil
}

func (s *csvSource) seen() int { return s.n }

func (s *csvSource) next() (position, []byte, error) {
	s.budget.reset()
	row, err := s.rows.Read()
	if err == io.EOF {
		return position{line: s.line}, nil, io.EOF
	}
	var parse *csv.ParseError
	if errors.As(err, &parse) && !errors.Is(err, csv.ErrFieldCount) {
		return position{line: parse.Line}, nil, err
	}
	if err != nil && !errors.Is(err, csv.ErrFieldCount) {
		return position{line: s.line + 1}, nil, err
	}
	s.n++
	line, _ := s.rows.FieldPos(0)
	s.line = line
	at := position{line: line, missing: s.missing}
	if err != nil {
		return at, nil, &recordError{message: fmt.Sprintf("the row has %d cells, the header %d", len(row), len(s.columns))}
	}
	cells := make(map[string]string, len(row))
	for i, cell := range row {
		cells[s.columns[i]] = unneutralize(cell)
	}
	for i, cell := range row {
		// JSON would carry it on with U+FFFD for each bad byte: a file in
		// another encoding would lose its accents silently.
		if !utf8.ValidString(cell) {
			return at, nil, &recordError{field: s.columns[i], message: "is not valid UTF-8: send the file as UTF-8", id: strings.ToValidUTF8(cells["id"], "?")}
		}
	}
	rec, rerr := csvRecord(cells)
	if rerr != nil {
		rerr.id = cells["id"]
		return at, nil, rerr
	}
	raw, err := json.Marshal(rec)
	return at, raw, err
}

// unneutralize reads back a cell the export neutralized: the export puts
// an apostrophe before a cell a spreadsheet would read as a formula, and
// before an apostrophe that precedes one (export.Neutralized), so one
// apostrophe before such a cell is taken off. Any other apostrophe is the
// value's own.
func unneutralize(cell string) string {
	if rest, ok := strings.CutPrefix(cell, "'"); ok && export.Neutralized(rest) {
		return rest
	}
	return cell
}

// csvRecord builds the record of a row, as the export's JSON Lines has it:
// an empty cell is an absent value.
func csvRecord(cells map[string]string) (map[string]any, *recordError) {
	opt := func(name string) any {
		if v := cells[name]; v != "" {
			return v
		}
		return nil
	}
	hasAny := func(names ...string) bool {
		for _, n := range names {
			if cells[n] != "" {
				return true
			}
		}
		return false
	}
	rec := map[string]any{
		"id": cells["id"], "createdDateTime": cells["createdDateTime"], "updatedDateTime": cells["updatedDateTime"],
		"status": opt("status"), "statusReason": opt("statusReason"), "referralSource": opt("referralSource"),
	}
	if v := cells["version"]; v != "" {
		rec["version"] = json.Number(v)
	}
	addressCols := []string{"addressLine1", "addressLine2", "city", "state", "postalCode", "country"}
	if hasAny(append([]string{"customerId", "customerName", "customerSize", "contacts"}, addressCols...)...) {
		p := map[string]any{"id": cells["customerId"], "name": opt("customerName"), "size": opt("customerSize")}
		if hasAny(addressCols...) {
			p["address"] = map[string]any{
				"addressLine1": cells["addressLine1"], "addressLine2": opt("addressLine2"), "city": cells["city"],
				"state": opt("state"), "postalCode": cells["postalCode"], "country": cells["country"],
			}
		}
		var contacts []json.RawMessage
		if err := listCell(cells, "contacts", &contacts); err != nil {
			return nil, err
		}
		list := make([]map[string]any, len(contacts))
		for i, c := range contacts {
			contact, ok := readContact(c)
			if !ok {
				return nil, &recordError{field: "contacts", message: fmt.Sprintf("contact %d, %.100s, is not as the export writes a contact: an object of firstName, lastName, email and phoneNumber", i+1, c)}
			}
			list[i] = contact
		}
		p["contacts"] = list
		rec["customerProfile"] = p
	}
	tagCols := []string{"industryFocus", "products", "serviceTypes", "solutions"}
	if hasAny(append([]string{"notes", "dealValue", "closingDate"}, tagCols...)...) {
		d := map[string]any{"notes": opt("notes"), "closingDate": opt("closingDate")}
		if v := cells["dealValue"]; v != "" {
			d["dealValue"] = v
		}
		req := map[string]any{}
		for _, col := range tagCols {
			var ids []string
			if err := listCell(cells, col, &ids); err != nil {
				return nil, err
			}
			tags := make([]map[string]string, len(ids))
			for i, id := range ids {
				tags[i] = map[string]string{"id": id}
			}
			req[col] = tags
		}
		d["requirements"] = req
		rec["details"] = d
	}
	var ids, orgs []string
	var names, statuses, expirations, created, locations, invitedBy []*string
	var users []json.RawMessage
	for _, l := range []struct {
		col  string
		list any
	}{{"participantIds", &ids}, {"participantOrganizationIds", &orgs}, {"participantOrganizationNames", &names},
		{"participantStatuses", &statuses}, {"participantExpirations", &expirations}, {"participantCreatedDateTimes", &created},
		{"participantLocationIds", &locations}, {"participantInvitedBy", &invitedBy}, {"participantUsers", &users}} {
		if err := listCell(cells, l.col, l.list); err != nil {
			return nil, err
		}
	}
	n := len(ids)
	for _, c := range []struct {
		col string
		n   int
	}{{"participantOrganizationIds", len(orgs)}, {"participantOrganizationNames", len(names)},
		{"participantStatuses", len(statuses)}, {"participantExpirations", len(expirations)}, {"participantCreatedDateTimes", len(created)},
		{"participantLocationIds", len(locations)}, {"participantInvitedBy", len(invitedBy)}, {"participantUsers", len(users)}} {
		if cells[c.col] != "" && c.n != n {
			return nil, &recordError{field: c.col, message: fmt.Sprintf("lists %d participants, participantIds %d", c.n, n)}
		}
	}
	if v := cells["participantCount"]; v != "" && v != fmt.Sprint(n) {
		return nil, &recordError{field: "participantCount", message: fmt.Sprintf("says %.20s participants, participantIds lists %d", v, n)}
	}
	parts := make([]map[string]any, n)
	at := func(l []*string, i int) *string {
		if i < len(l) {
			return l[i]
		}
		return nil
	}
	for i := range parts {
		p := map[string]any{"id": ids[i], "organizationName": at(names, i), "expirationDateTime": at(expirations, i),
			"createdDateTime": at(created, i), "locationId": at(locations, i), "invitedByParticipantId": at(invitedBy, i)}
		if i < len(users) {
			p["users"] = users[i]
		}
		if i < len(orgs) {
			p["organizationId"] = orgs[i]
		}
		if s := at(statuses, i); s != nil {
			p["status"] = *s
		}
		parts[i] = p
	}
	rec["participants"] = parts
	return rec, nil
}

// listCell reads the cell of a list: a JSON array, as the export writes
// it; an empty cell is an empty list.
func listCell(cells map[string]string, col string, into any) *recordError {
	v := cells[col]
	if v == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	if err := dec.Decode(into); err != nil || dec.More() {
		return &recordError{field: col, message: fmt.Sprintf("%.100q is not a JSON array, as the export writes a list", v)}
	}
	return nil
}

// readContact reads a contact of the contacts cell: an object with the
// API's names and string or null values, as the export writes it, or a
// string "First Last <email> phone", as exports before that wrote it
// (parseContact).
func readContact(raw json.RawMessage) (map[string]any, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return parseContact(s)
	}
	var c map[string]*string
	if json.Unmarshal(raw, &c) != nil {
		return nil, false
	}
	out := map[string]any{"firstName": nil, "lastName": nil, "email": nil, "phoneNumber": nil}
	for k, v := range c {
		if _, ok := out[k]; !ok {
			return nil, false
		}
		if v != nil {
			out[k] = *v
		}
	}
	return out, true
}

// parseContact reads a contact as exports before the contact objects
// wrote it: "First Last <email> phone", the first space parting the first
// name from the last.
func parseContact(s string) (map[string]any, bool) {
	end := strings.LastIndexByte(s, '>')
	if end < 0 {
		return nil, false
	}
	start := strings.LastIndexByte(s[:end], '<')
	if start < 0 {
		return nil, false
	}
	first, last, _ := strings.Cut(strings.TrimSuffix(s[:start], " "), " ")
	c := map[string]any{"firstName": first, "lastName": last, "email": nil, "phoneNumber": nil}
	if email := s[start+1 : end]; email != "" {
		c["email"] = email
	}
	if phone := strings.TrimPrefix(s[end+1:], " "); phone != "" {
		c["phoneNumber"] = phone
	}
	return c, true
}

// csvColumnOf names the CSV column of field, a path in a record
// ("details.dealValue", "participants.1.status"), followed by what the
// path says within the cell ("participantStatuses.1",
// "contacts.0.email"); a field that is a column already is returned as
// it is.
func csvColumnOf(field string) string {
	parts := strings.Split(field, ".")
	column := func(name string, rest []string) string {
		return strings.Join(append([]string{name}, rest...), ".")
	}
	switch {
	case len(parts) >= 3 && parts[0] == "details" && parts[1] == "requirements":
		return column(parts[2], parts[3:])
	case len(parts) >= 2 && parts[0] == "details":
		return column(parts[1], parts[2:])
	case len(parts) >= 3 && parts[0] == "customerProfile" && parts[1] == "address":
		return column(parts[2], parts[3:])
	case len(parts) >= 2 && parts[0] == "customerProfile":
		if name, ok := profileColumns[parts[1]]; ok {
			return column(name, parts[2:])
		}
	case len(parts) >= 3 && parts[0] == "participants":
		if name, ok := participantColumns[parts[2]]; ok {
			return column(name, append([]string{parts[1]}, parts[3:]...))
		}
	case field == "participants":
		return "participantIds"
	}
	return field
}

// profileColumns and participantColumns are the CSV columns of a
// customer profile's fields, and of a participant's.
var (
	profileColumns     = map[string]string{"id": "customerId", "name": "customerName", "size": "customerSize", "contacts": "contacts"}
	participantColumns = map[string]string{
		"id": "participantIds", "organizationId": "participantOrganizationIds", "organizationName": "participantOrganizationNames",
		"status": "participantStatuses", "expirationDateTime": "participantExpirations", "createdDateTime": "participantCreatedDateTimes",
		"locationId": "participantLocationIds", "invitedByParticipantId": "participantInvitedBy", "users": "participantUsers",
	}
)

// missingContent lists the columns of a referral's content (all but its
// id, dates, version and participants, which are compared rather than
// written) that header leaves out.
func missingContent(header []string) []string {
	var missing []string
	for _, c := range csvColumns {
		switch {
		case c == "id" || c == "createdDateTime" || c == "updatedDateTime" || c == "version" || strings.HasPrefix(c, "participant"):
		case !slices.Contains(header, c):
			missing = append(missing, c)
		}
	}
	return missing
}

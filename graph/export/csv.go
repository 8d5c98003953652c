package export

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

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
	attachment(w, mediaCSV+"; charset=utf-8; header=present", "csv")
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
// mark, bidi controls). And so does a cell that is an apostrophe before
// one that gets it ("'=x"), so that an importer that takes one apostrophe
// off each cell Neutralized says would get it reads back every value
// exactly (package importer does).
func neutralize(cell string) string {
	if Neutralized(cell) {
		return "'" + cell
	}
	return cell
}

// Neutralized reports whether the export puts an apostrophe before cell
// (neutralize).
func Neutralized(cell string) bool {
	cell = strings.TrimLeft(cell, "'") // apostrophes before one that gets it, one pass however many
	if cell != "" && strings.ContainsRune("\t\r", rune(cell[0])) {
		return true
	}
	rest := strings.TrimLeftFunc(cell, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	})
	return rest != "" && strings.ContainsRune("=+-@", rune(rest[0]))
}

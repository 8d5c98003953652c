package importer

import (
	"errors"
	"strings"
	"testing"
)

// TestUnneutralize: an apostrophe the export put before a formula sign is
// taken off; an apostrophe of the value's own stays.
func TestUnneutralize(t *testing.T) {
	for cell, want := range map[string]string{
		"'=1+1": "=1+1", "'+31 20": "+31 20", "'-5": "-5", "'@here": "@here", "'\tx": "\tx",
		"' \u200b=x": " \u200b=x", "'it's": "'it's", "'": "'", "plain": "plain",
		"''=x": "'=x", "'''-1": "''-1", "'=x'": "=x'",
	} {
		if got := unneutralize(cell); got != want {
			t.Errorf("unneutralize(%q) = %q, want %q", cell, got, want)
		}
	}
}

// TestCSVLineBreaks: encoding/csv reads a CR LF inside a quoted cell as
// LF (a lone CR or LF stays), so such a value does not read back byte for
// byte.
func TestCSVLineBreaks(t *testing.T) {
	src, err := newCSVSource(strings.NewReader("id,notes\r\na,\"x\r\ny\"\r\nb,\"x\ry\"\r\n"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"notes":"x\ny"`, `"notes":"x\ry"`} {
		at, raw, err := src.next()
		if err != nil || !strings.Contains(string(raw), want) {
			t.Errorf("line %d: %s, %v; want %s", at.line, raw, err, want)
		}
	}
}

// TestParseContact: a contact as the export writes it, the first space
// parting the first name from the last.
func TestParseContact(t *testing.T) {
	for s, want := range map[string][4]any{
		"Avery Lee <avery@contoso.example> +1 206 555 0100": {"Avery", "Lee", "avery@contoso.example", "+1 206 555 0100"},
		"Mary Ann Lee <> +1 206 555 0100":                   {"Mary", "Ann Lee", nil, "+1 206 555 0100"},
		"Avery Lee <avery@contoso.example>":                 {"Avery", "Lee", "avery@contoso.example", nil},
	} {
		c, ok := parseContact(s)
		if !ok || c["firstName"] != want[0] || c["lastName"] != want[1] || c["email"] != want[2] || c["phoneNumber"] != want[3] {
			t.Errorf("parseContact(%q) = %v, %v; want %v", s, c, ok, want)
		}
	}
	if _, ok := parseContact("Avery Lee"); ok {
		t.Error("a contact without <email> was read")
	}
}

// TestCSVRowLimit: a row over the limit ends the import at that row; the
// rows before it are read.
func TestCSVRowLimit(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	src, err := newCSVSource(strings.NewReader("id,notes\r\na,short\r\nb,\""+long+"\"\r\nc,short\r\n"), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if _, raw, err := src.next(); err != nil || !strings.Contains(string(raw), `"id":"a"`) {
		t.Fatalf("row a: %s, %v", raw, err)
	}
	if _, _, err := src.next(); !errors.Is(err, errRowTooLong) {
		t.Fatalf("row b: %v, want errRowTooLong", err)
	}
	if _, err := newCSVSource(strings.NewReader("id,"+long), 64<<10); !errors.Is(err, errRowTooLong) {
		t.Fatalf("a long header: %v, want errRowTooLong", err)
	}
}

// TestCSVColumnOf: an error's field in a record names the CSV column the
// value came from, and where in the cell.
func TestCSVColumnOf(t *testing.T) {
	for field, want := range map[string]string{
		"details.dealValue": "dealValue", "details.requirements.products.1": "products.1",
		"customerProfile.address.country": "country", "customerProfile.name": "customerName",
		"customerProfile.contacts.0.email": "contacts.0.email", "participants.1.status": "participantStatuses.1",
		"participants.0.users.2.firstName": "participantUsers.0.2.firstName", "participants": "participantIds",
		"status": "status", "participantCount": "participantCount", "contacts": "contacts",
	} {
		if got := csvColumnOf(field); got != want {
			t.Errorf("csvColumnOf(%q) = %q, want %q", field, got, want)
		}
	}
}

// TestUnneutralizeManyApostrophes: a cell of a million apostrophes before
// a formula sign reads back with one taken off, in one pass (the rule
// recursed once per apostrophe: a megabyte cell took a million frames).
func TestUnneutralizeManyApostrophes(t *testing.T) {
	cell := strings.Repeat("'", 1<<20) + "=x"
	if got := unneutralize(cell); got != cell[1:] {
		t.Errorf("unneutralize of %d apostrophes and =x kept %d bytes, want %d", 1<<20, len(got), len(cell)-1)
	}
	if got := unneutralize(strings.Repeat("'", 1<<20)); len(got) != 1<<20 {
		t.Errorf("apostrophes alone lost %d", 1<<20-len(got))
	}
}

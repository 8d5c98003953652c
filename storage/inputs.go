package storage

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ReferralInput is a new referral as a client describes it.
type ReferralInput struct {
	ReferralSource  ReferralSource
	CustomerProfile *CustomerProfileInput
	Details         *DetailsInput
}

// CustomerProfileInput is a customer profile to create, or the parts of
// one to change (nil fields stay as they are).
type CustomerProfileInput struct {
	Name     *string
	Address  *Address
	Size     *string
	Contacts []Contact
}

// DetailsInput is referral details to set; nil fields stay as they are.
type DetailsInput struct {
	Notes       *string
	DealValue   *Money
	ClosingDate *time.Time
	// Requirements lists that are nil stay as they are.
	Requirements *Requirements
}

// ReferralPatch is a partial update of a referral.
type ReferralPatch struct {
	CustomerProfile *CustomerProfileInput
	Details         *DetailsInput
}

// InviteInput describes an organization to invite to a referral.
type InviteInput struct {
	OrganizationID         string
	OrganizationName       string
	LocationID             *string
	Users                  []ParticipantUser
	ExpirationDateTime     *time.Time
	InvitedByParticipantID *string
}

// InvitationResponse is an answer to an invitation.
type InvitationResponse string

// The answers to an invitation.
const (
	Accept InvitationResponse = "ACCEPT"
	Reject InvitationResponse = "REJECT"
)

var invitationResponses = []InvitationResponse{Accept, Reject}

// Limits on free text, so one client cannot store megabytes in a field.
const (
	maxNameLength   = 200
	maxNotesLength  = 10_000
	maxReasonLength = 1000 // of a status change
	maxListLength   = 50
	maxEmailLength  = 254 // RFC 5321's longest path
	maxPhoneLength  = 50
	maxTagIDLength  = 100
	maxIDLength     = 128 // of an id named in an input (invitedByParticipantId)
)

// check collects the first validation problem, with the path of its field
// (see badInput).
type check struct{ err *Error }

func (c *check) fail(path, format string, args ...any) {
	if c.err == nil {
		c.err = badInput(path, format, args...)
	}
}

// text checks a free-text field: not blank when required, not too long.
// CheckOrganizationID says why id is not an organization id, or returns
// nil. Organization ids are 1 to 128 ASCII letters, digits, '-', '_' and
// '.': GUIDs and Partner Center's numeric ids fit, and none holds the
// separators ('/', ':') of the keys the store builds from them.
func CheckOrganizationID(id string) error {
	if id == "" || len(id) > maxOrganizationIDLength {
		return fmt.Errorf("an organization id is 1 to %d characters", maxOrganizationIDLength)
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("an organization id holds only ASCII letters, digits, '-', '_' and '.', not %q", r)
		}
	}
	return nil
}

const maxOrganizationIDLength = 128

// length fails when s, which may be empty, is longer than maxLen
// characters or holds a character refused on one line (lineText).
func (c *check) length(path, s string, maxLen int) {
	if utf8.RuneCountInString(s) > maxLen {
		c.fail(path, "must be at most %d characters", maxLen)
	}
	c.characters(path, s, false)
}

// text checks a one-line free-text field: present when required, not
// blank, not too long, and no character refused on one line.
func (c *check) text(path string, s *string, required bool, maxLen int) {
	switch {
	case s == nil:
		if required {
			c.fail(path, "is required")
		}
	case isBlank(*s):
		c.fail(path, "must not be blank (spaces and invisible characters alone)")
	default:
		c.length(path, *s, maxLen)
	}
}

// multiline checks a free-text field meant to hold lines (notes, a
// reason): it may be blank, and may hold tabs and line breaks, which are
// stored as LF (a CR LF becomes LF), so that every format the referral
// is exported in, CSV included, carries them back exactly.
func (c *check) multiline(path string, s *string, maxLen int) {
	if s == nil {
		return
	}
	*s = strings.ReplaceAll(*s, "\r\n", "\n")
	if utf8.RuneCountInString(*s) > maxLen {
		c.fail(path, "must be at most %d characters", maxLen)
	}
	c.characters(path, *s, true)
}

// characters refuses what would let stored text act on whoever shows it
// rather than be read: control characters (NUL, ESC and so ANSI escape
// sequences, DEL, C1), and the bidi embeddings, overrides and isolates
// that reorder what follows them. Text with lines keeps tab, LF and CRLF;
// one-line text has no line breaks (U+2028 and U+2029 neither).
func (c *check) characters(path, s string, lines bool) {
	for i, r := range s {
		switch {
		case lines && (r == '\t' || r == '\n' || r == '\r' && strings.HasPrefix(s[i+1:], "\n")):
		case unicode.IsControl(r), (r == '\u2028' || r == '\u2029') && !lines,
			'\u202a' <= r && r <= '\u202e', '\u2066' <= r && r <= '\u2069':
			c.fail(path, "must not contain %U: control characters, bidi embeddings, overrides and isolates, and line breaks in one-line text are refused", r)
			return
		}
	}
}

// isBlank reports whether s holds nothing visible: only white space and
// what Unicode says is ignorable when shown (zero-width spaces and
// joiners, the byte order mark, soft hyphens, Hangul fillers, variation
// selectors), or the braille blank.
func isBlank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) && !unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) && r != '\u2800' {
			return false
		}
	}
	return true
}

func (c *check) profile(path string, p *CustomerProfileInput, create bool) {
	if p == nil {
		if create {
			c.fail(path, "is required")
		}
		return
	}
	c.text(path+".name", p.Name, create, maxNameLength)
	if p.Size != nil {
		c.text(path+".size", p.Size, false, maxNameLength)
	}
	if p.Address != nil {
		c.address(path+".address", p.Address)
	} else if create {
		c.fail(path+".address", "is required")
	}
	if len(p.Contacts) > maxListLength {
		c.fail(path+".contacts", "at most %d contacts", maxListLength)
	}
	for i, ct := range p.Contacts {
		at := path + ".contacts[" + strconv.Itoa(i) + "]"
		c.person(at, ct.FirstName, ct.LastName, ct.Email, ct.PhoneNumber)
	}
}

// address checks and normalizes an address (the country to upper case).
func (c *check) address(path string, a *Address) {
	c.text(path+".addressLine1", &a.AddressLine1, true, maxNameLength)
	c.text(path+".addressLine2", a.AddressLine2, false, maxNameLength)
	c.text(path+".city", &a.City, true, maxNameLength)
	c.text(path+".state", a.State, false, maxNameLength)
	c.length(path+".postalCode", a.PostalCode, maxNameLength)
	a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	if !isCountry(a.Country) {
		c.fail(path+".country", "%q is not an ISO 3166-1 alpha-2 country code such as \"US\"", a.Country)
	}
}

func (c *check) person(path, first, last, email, phone string) {
	c.text(path+".firstName", &first, true, maxNameLength)
	c.text(path+".lastName", &last, true, maxNameLength)
	c.length(path+".email", email, maxEmailLength)
	c.length(path+".phoneNumber", phone, maxPhoneLength)
	if c.err != nil {
		return
	}
	if email != "" && !isEmail(email) {
		c.fail(path+".email", "%q is not an e-mail address such as \"ana@example.com\"", email)
	}
	if phone != "" && !isPhone(phone) {
		c.fail(path+".phoneNumber", "%q is not a phone number (digits, spaces and + ( ) - ., at least 7 digits)", phone)
	}
}

func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == "" && strings.Contains(s[strings.LastIndex(s, "@"):], ".")
}

func isPhone(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '(', r == ')', r == '-', r == '.':
		default:
			return false
		}
	}
	return digits >= 7 && digits <= 15
}

func (c *check) details(path string, d *DetailsInput) {
	if d == nil {
		return
	}
	c.multiline(path+".notes", d.Notes, maxNotesLength)
	if d.DealValue != nil && *d.DealValue < 0 {
		c.fail(path+".dealValue", "must not be negative, got %s", d.DealValue)
	}
	c.date(path+".closingDate", d.ClosingDate)
}

// The dates the store keeps. The API writes dates as RFC 3339 in UTC, whose
// years have four digits, which bounds them above. Below, the driver leaves
// out a field holding 0001-01-01T00:00:00Z (Go's zero time) when it writes
// a document, so that date would read back null; the bound is set well
// above it, past any date a referral can mean.
var (
	earliestDate = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	latestDate   = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)

// date checks a date to store and normalizes it to what a BSON date keeps:
// UTC, whole milliseconds. The answer to a write then shows what a read
// will show.
func (c *check) date(path string, t *time.Time) {
	if t == nil {
		return
	}
	*t = t.UTC().Truncate(time.Millisecond)
	if t.Before(earliestDate) || t.After(latestDate) {
		c.fail(path, "%s is not between %s and %s, the dates the store keeps", t.Format(time.RFC3339Nano),
			earliestDate.Format(time.RFC3339Nano), latestDate.Format(time.RFC3339Nano))
	}
}

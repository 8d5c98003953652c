package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"referrals/storage"
)

// record is a referral as the export writes it: the API's camelCase names
// (see the export's query); a record in the specification's names is
// renamed into these first (toOurNames). Enum values are kept raw, to be
// read by name or by position (enum).
type record struct {
	ID              string `json:"id"`
	CreatedDateTime string `json:"createdDateTime"`
	UpdatedDateTime string `json:"updatedDateTime"`
	// Version is absent from records in the specification's naming,
	// which has no version: those are at version 1.
	Version         *int64          `json:"version"`
	Status          json.RawMessage `json:"status"`
	StatusReason    *string         `json:"statusReason"`
	ReferralSource  json.RawMessage `json:"referralSource"`
	CustomerProfile *profile        `json:"customerProfile"`
	Details         *details        `json:"details"`
	Participants    []struct {
		ID                 string          `json:"id"`
		OrganizationID     string          `json:"organizationId"`
		OrganizationName   *string         `json:"organizationName"`
		Status             json.RawMessage `json:"status"`
		ExpirationDateTime *string         `json:"expirationDateTime"`
		// What an export of an earlier version does not give.
		CreatedDateTime        given[*string] `json:"createdDateTime"`
		LocationID             given[*string] `json:"locationId"`
		InvitedByParticipantID given[*string] `json:"invitedByParticipantId"`
		Users                  given[[]struct {
			ID string `json:"id"`
			person
		}] `json:"users"`
	} `json:"participants"`
}

// given is a field a record may leave out: Set says it is in the record,
// null included.
type given[T any] struct {
	Set bool
	V   T
}

func (g *given[T]) UnmarshalJSON(b []byte) error {
	g.Set = true
	if len(b) == 0 || b[0] != '[' && b[0] != '{' {
		return json.Unmarshal(b, &g.V) // a string or null: no fields to refuse
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // as the record's own decoder: a field out of place is named, not dropped
	return dec.Decode(&g.V)
}

// person is a contact of a customer, or a participant's user.
type person struct {
	FirstName   string  `json:"firstName"`
	LastName    string  `json:"lastName"`
	Email       *string `json:"email"`
	PhoneNumber *string `json:"phoneNumber"`
}

type profile struct {
	ID      string  `json:"id"`
	Name    *string `json:"name"`
	Size    *string `json:"size"`
	Address *struct {
		AddressLine1 string  `json:"addressLine1"`
		AddressLine2 *string `json:"addressLine2"`
		City         string  `json:"city"`
		State        *string `json:"state"`
		PostalCode   string  `json:"postalCode"`
		Country      string  `json:"country"`
	} `json:"address"`
	Contacts []person `json:"contacts"`
}

type details struct {
	Notes *string `json:"notes"`
	// DealValue is a decimal string ("1250.50") or a JSON number, read
	// digit for digit, never through a float.
	DealValue    json.RawMessage `json:"dealValue"`
	ClosingDate  *string         `json:"closingDate"`
	Requirements *struct {
		IndustryFocus []tagRef `json:"industryFocus"`
		Products      []tagRef `json:"products"`
		ServiceTypes  []tagRef `json:"serviceTypes"`
		Solutions     []tagRef `json:"solutions"`
	} `json:"requirements"`
}

type tagRef struct {
	ID string `json:"id"`
	// Name, which the specification's tags may carry, is read and not
	// kept: a tag's name is the catalog's.
	Name *string `json:"name"`
}

// enumValue is one value of an enum: the API's name for it, its position
// in the specification, and what the store keeps, which is the
// specification's name.
type enumValue[E ~string] struct {
	api      string
	position int
	value    E
}

// The enums as the API and the specification name and number them. The
// specification gives ReferralStatus's Lost and Archived both position 3.
var (
	referralStatuses = enumTable[storage.ReferralStatus]{"ReferralStatus", []enumValue[storage.ReferralStatus]{
		{"PENDING", 0, storage.ReferralPending}, {"ACTIVE", 1, storage.ReferralActive}, {"WON", 2, storage.ReferralWon},
		{"LOST", 3, storage.ReferralLost}, {"ARCHIVED", 3, storage.ReferralArchived},
	}}
	referralSources = enumTable[storage.ReferralSource]{"ReferralSource", []enumValue[storage.ReferralSource]{
		{"WEB_DIRECT", 0, storage.SourceWebDirect}, {"PARTNER_LED", 1, storage.SourcePartnerLed},
		{"AGENT_LED", 2, storage.SourceAgentLed}, {"P2P", 3, storage.SourceP2P},
	}}
	participantStatuses = enumTable[storage.ParticipantStatus]{"ParticipantStatus", []enumValue[storage.ParticipantStatus]{
		{"INVITED", 0, storage.ParticipantInvited}, {"ACCEPTED", 1, storage.ParticipantAccepted},
		{"REJECTED", 2, storage.ParticipantRejected}, {"EXPIRED", 3, storage.ParticipantExpired},
		{"MISSED", 4, storage.ParticipantMissed},
	}}
)

// enumTable is an enum of the specification, by its name there.
type enumTable[E ~string] struct {
	name   string
	values []enumValue[E]
}

// decode reads one record, in either naming, into the referral it
// describes, and returns its id as far as it can be read and its naming.
// Any problem is a CodeBadUserInput *storage.Error naming the field as
// the record does.
func decode(line []byte) (*storage.ImportedReferral, string, naming, error) {
	ours, naming, err := toOurNames(line)
	if err != nil {
		return nil, idOf(line), naming, err
	}
	dec := json.NewDecoder(bytes.NewReader(ours))
	dec.DisallowUnknownFields() // a misspelt field is named, not dropped
	var rec record
	if err := dec.Decode(&rec); err != nil {
		return nil, idOf(line), naming, naming.fieldOf(decodeError(err))
	}
	if rec.Version == nil { // the specification has none; a CSV may leave the column out
		rec.Version = new(int64)
		*rec.Version = 1
	}
	c := converter{}
	out := c.referral(&rec)
	return out, rec.ID, naming, naming.fieldOf(c.err)
}

// decodeError says what is wrong with a record encoding/json could not
// read: a value of the wrong JSON type names its field and the type
// wanted, in JSON's terms rather than Go's.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field == "" {
		return bad("", "is %s: give an object, one referral", jsonKind(typeErr.Value))
	}
	if !errors.As(err, &typeErr) {
		return bad("", "not a referral as the export writes it: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	want := "an object"
	switch t := typeErr.Type; t.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Slice, reflect.Array:
		want = "a list (a JSON array)"
	}
	if typeErr.Value == "number" && want == "an integer" {
		return bad(typeErr.Field, "is not an integer within range")
	}
	return bad(typeErr.Field, "is %s: give %s", jsonKind(typeErr.Value), want)
}

// jsonKind is the JSON type encoding/json names value, with an article.
func jsonKind(value string) string {
	switch value {
	case "object", "array":
		return "an " + value
	case "number", "string", "bool":
		return "a " + strings.Replace(value, "bool", "boolean", 1)
	}
	return "the " + value // "number 1.5"
}

// idOf is the id of a record that cannot be read whole, as far as it can
// be read.
func idOf(line []byte) string {
	var id struct {
		ID string `json:"id"` // or Id: the match is case-insensitive
	}
	_ = json.Unmarshal(line, &id)
	return id.ID
}

func bad(field, format string, args ...any) *storage.Error {
	e := storage.Errorf(storage.CodeBadUserInput, format, args...)
	if field != "" {
		e.Field = strings.Split(field, ".")
	}
	return e
}

// converter turns a record into the store's terms, keeping the first
// problem.
type converter struct{ err error }

func (c *converter) fail(field, format string, args ...any) {
	if c.err == nil {
		c.err = bad(field, format, args...)
	}
}

func (c *converter) date(field, s string) time.Time {
	if s == "" {
		c.fail(field, "is required: an RFC 3339 date-time such as \"2026-03-01T09:30:00Z\"")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		c.fail(field, "%.100q is not an RFC 3339 date-time such as \"2026-03-01T09:30:00Z\"", s)
	}
	return t.UTC()
}

func (c *converter) optionalDate(field string, s *string) *time.Time {
	if s == nil {
		return nil
	}
	t := c.date(field, *s)
	return &t
}

// enum reads an enum value given by the API's name, the specification's
// name, or the specification's integer position.
func enum[E ~string](c *converter, field string, raw json.RawMessage, enum enumTable[E]) E {
	v, err := enum.lookup(raw)
	if err != "" {
		c.fail(field, "%s", err)
	}
	return v
}

// lookup returns the value raw gives, or why it gives none. A position
// two values share is refused, naming them.
func (enum enumTable[E]) lookup(raw json.RawMessage) (E, string) {
	var name string
	if len(raw) == 0 || string(raw) == "null" {
		return "", "is required"
	}
	if err := json.Unmarshal(raw, &name); err == nil {
		for _, v := range enum.values {
			if name == v.api || name == string(v.value) {
				return v.value, ""
			}
		}
	} else if position, err := strconv.Atoi(string(raw)); err == nil {
		var at []string
		var found E
		for _, v := range enum.values {
			if v.position == position {
				at, found = append(at, string(v.value)), v.value
			}
		}
		switch len(at) {
		case 0:
			return "", fmt.Sprintf("%d is not a position of the specification's %s (0 to %d)", position, enum.name, enum.values[len(enum.values)-1].position)
		case 1:
			return found, ""
		}
		return "", fmt.Sprintf("%d is ambiguous: the specification's %s gives position %d to both %s; give the name instead", position, enum.name, position, strings.Join(at, " and "))
	}
	names := make([]string, 0, 2*len(enum.values))
	for _, v := range enum.values {
		names = append(names, v.api)
		if string(v.value) != v.api { // P2P is both
			names = append(names, string(v.value))
		}
	}
	return "", fmt.Sprintf("%.100s is not one of %s (the API's names or the specification's; case-sensitive) nor a position of the specification's %s", raw, strings.Join(names, ", "), enum.name)
}

func (c *converter) referral(rec *record) *storage.ImportedReferral {
	if rec.ID == "" {
		c.fail("id", "is required")
	}
	out := &storage.ImportedReferral{Referral: storage.Referral{
		ID: rec.ID, StatusReason: rec.StatusReason,
		CreatedDateTime: c.date("createdDateTime", rec.CreatedDateTime),
		UpdatedDateTime: c.date("updatedDateTime", rec.UpdatedDateTime),
		Status:          enum(c, "status", rec.Status, referralStatuses),
		ReferralSource:  enum(c, "referralSource", rec.ReferralSource, referralSources),
		CustomerProfile: c.profile(rec.CustomerProfile),
		Details:         c.details(rec.Details),
	}}
	if rec.Version != nil {
		out.Referral.Version = *rec.Version
	}
	for i, p := range rec.Participants {
		at := "participants." + strconv.Itoa(i)
		part := storage.Participant{
			ID: p.ID, OrganizationID: p.OrganizationID, LocationID: p.LocationID.V, InvitedByParticipantID: p.InvitedByParticipantID.V,
			Status:             enum(c, at+".status", p.Status, participantStatuses),
			ExpirationDateTime: c.optionalDate(at+".expirationDateTime", p.ExpirationDateTime),
		}
		out.ParticipantDetails = out.ParticipantDetails || p.CreatedDateTime.Set || p.LocationID.Set || p.InvitedByParticipantID.Set || p.Users.Set
		if created := c.optionalDate(at+".createdDateTime", p.CreatedDateTime.V); created != nil {
			part.CreatedDateTime = *created
		}
		if p.Users.V != nil {
			part.Users = make([]storage.ParticipantUser, 0, len(p.Users.V))
		}
		if p.OrganizationName != nil {
			part.OrganizationName = *p.OrganizationName
		}
		for _, u := range p.Users.V {
			part.Users = append(part.Users, storage.ParticipantUser{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName,
				Email: deref(u.Email), PhoneNumber: deref(u.PhoneNumber)})
		}
		out.Participants = append(out.Participants, part)
	}
	return out
}

func (c *converter) profile(p *profile) *storage.CustomerProfile {
	if p == nil {
		return nil
	}
	out := &storage.CustomerProfile{ID: p.ID, Contacts: []storage.Contact{}}
	if p.Name != nil {
		out.Name = *p.Name
	} else {
		c.fail("customerProfile.name", "is required")
	}
	if p.Size != nil {
		out.Size = *p.Size
	}
	if a := p.Address; a != nil {
		out.Address = &storage.Address{AddressLine1: a.AddressLine1, AddressLine2: a.AddressLine2, City: a.City,
			State: a.State, PostalCode: a.PostalCode, Country: a.Country}
	}
	for _, ct := range p.Contacts {
		out.Contacts = append(out.Contacts, storage.Contact{FirstName: ct.FirstName, LastName: ct.LastName,
			Email: deref(ct.Email), PhoneNumber: deref(ct.PhoneNumber)})
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (c *converter) details(d *details) *storage.ReferralDetails {
	if d == nil {
		return nil
	}
	out := &storage.ReferralDetails{Notes: d.Notes, ClosingDate: c.optionalDate("details.closingDate", d.ClosingDate)}
	if raw := bytes.TrimSpace(d.DealValue); len(raw) > 0 && string(raw) != "null" {
		text := string(raw)
		if raw[0] == '"' {
			if err := json.Unmarshal(raw, &text); err != nil {
				c.fail("details.dealValue", "is not a string or a number")
			}
		}
		if raw[0] != '"' && tooLargeExponent(text) {
			c.fail("details.dealValue", "%.40q is too large an amount", text)
		} else {
			if raw[0] != '"' {
				text = exactCents(text)
			}
			m, err := storage.ParseMoney(text)
			if err != nil {
				c.fail("details.dealValue", "%s", err.Error())
			}
			out.DealValue = &m
		}
	}
	ids := func(tags []tagRef) []string {
		out := make([]string, len(tags))
		for i, t := range tags {
			out[i] = t.ID
		}
		return out
	}
	out.Requirements = storage.Requirements{IndustryFocus: []string{}, Products: []string{}, ServiceTypes: []string{}, Solutions: []string{}}
	if r := d.Requirements; r != nil {
		out.Requirements = storage.Requirements{IndustryFocus: ids(r.IndustryFocus), Products: ids(r.Products),
			ServiceTypes: ids(r.ServiceTypes), Solutions: ids(r.Solutions)}
	}
	return out
}

// tooLargeExponent reports whether the JSON number n has an exponent
// that makes any nonzero n larger than every amount (1e30, 1e400); such
// numbers are not built to be compared.
func tooLargeExponent(n string) bool {
	i := strings.IndexAny(n, "eE")
	if i < 0 || strings.Trim(n[:i], "-+0.") == "" {
		return false
	}
	exp, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+"))
	return exp > 20 || err != nil && !strings.HasPrefix(n[i+1:], "-")
}

// exactCents writes the JSON number n as a plain decimal when it is an
// exact amount of cents however it is written (12345.670, 1.5e3), read
// without a float; otherwise n as given, for ParseMoney to refuse.
func exactCents(n string) string {
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		// big.Rat would build 10 to the exponent: 1e999999999 is
		// refused before, not computed.
		if exp, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+")); err != nil || exp > 20 || exp < -20 {
			return n
		}
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return n
	}
	if cents := new(big.Rat).Mul(r, big.NewRat(100, 1)); !cents.IsInt() {
		return n
	}
	return r.FloatString(2)
}

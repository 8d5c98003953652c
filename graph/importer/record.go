package importer

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"referrals/storage"
)

// record is a referral as the export writes it: the API's camelCase names
// and enum values (see the export's query).
type record struct {
	ID              string   `json:"id"`
	CreatedDateTime string   `json:"createdDateTime"`
	UpdatedDateTime string   `json:"updatedDateTime"`
	Version         int64    `json:"version"`
	Status          string   `json:"status"`
	StatusReason    *string  `json:"statusReason"`
	ReferralSource  string   `json:"referralSource"`
	CustomerProfile *profile `json:"customerProfile"`
	Details         *details `json:"details"`
	Participants    []struct {
		ID                 string  `json:"id"`
		OrganizationID     string  `json:"organizationId"`
		OrganizationName   *string `json:"organizationName"`
		Status             string  `json:"status"`
		ExpirationDateTime *string `json:"expirationDateTime"`
	} `json:"participants"`
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
	Contacts []struct {
		FirstName   string  `json:"firstName"`
		LastName    string  `json:"lastName"`
		Email       *string `json:"email"`
		PhoneNumber *string `json:"phoneNumber"`
	} `json:"contacts"`
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
}

// The API's enum values and what the store keeps for each.
var (
	referralStatuses = map[string]storage.ReferralStatus{
		"PENDING": storage.ReferralPending, "ACTIVE": storage.ReferralActive, "WON": storage.ReferralWon,
		"LOST": storage.ReferralLost, "ARCHIVED": storage.ReferralArchived,
	}
	referralSources = map[string]storage.ReferralSource{
		"WEB_DIRECT": storage.SourceWebDirect, "PARTNER_LED": storage.SourcePartnerLed,
		"AGENT_LED": storage.SourceAgentLed, "P2P": storage.SourceP2P,
	}
	participantStatuses = map[string]storage.ParticipantStatus{
		"INVITED": storage.ParticipantInvited, "ACCEPTED": storage.ParticipantAccepted, "REJECTED": storage.ParticipantRejected,
		"EXPIRED": storage.ParticipantExpired, "MISSED": storage.ParticipantMissed,
	}
)

// decode reads one line into the referral it describes, and its id as
// far as it can be read. Any problem is a CodeBadUserInput *storage.Error
// naming the field.
func decode(line []byte) (*storage.ImportedReferral, string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields() // a misspelt field is named, not dropped
	var rec record
	if err := dec.Decode(&rec); err != nil {
		var id struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(line, &id)
		return nil, id.ID, bad("", "not a referral as the export writes it: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, rec.ID, bad("", "more than one JSON value on the line: give one referral a line")
	}
	c := converter{}
	out := c.referral(&rec)
	return out, rec.ID, c.err
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

func enum[E any](c *converter, field, name string, names map[string]E) E {
	v, ok := names[name]
	if !ok {
		listed := make([]string, 0, len(names))
		for n := range names {
			listed = append(listed, n)
		}
		slices.Sort(listed)
		c.fail(field, "%.100q is not one of %s: enum values are exact, case-sensitive names", name, strings.Join(listed, ", "))
	}
	return v
}

func (c *converter) referral(rec *record) *storage.ImportedReferral {
	if rec.ID == "" {
		c.fail("id", "is required")
	}
	out := &storage.ImportedReferral{Referral: storage.Referral{
		ID: rec.ID, Version: rec.Version, StatusReason: rec.StatusReason,
		CreatedDateTime: c.date("createdDateTime", rec.CreatedDateTime),
		UpdatedDateTime: c.date("updatedDateTime", rec.UpdatedDateTime),
		Status:          enum(c, "status", rec.Status, referralStatuses),
		ReferralSource:  enum(c, "referralSource", rec.ReferralSource, referralSources),
		CustomerProfile: c.profile(rec.CustomerProfile),
		Details:         c.details(rec.Details),
	}}
	for i, p := range rec.Participants {
		at := "participants." + strconv.Itoa(i)
		part := storage.Participant{
			ID: p.ID, OrganizationID: p.OrganizationID,
			Status:             enum(c, at+".status", p.Status, participantStatuses),
			ExpirationDateTime: c.optionalDate(at+".expirationDateTime", p.ExpirationDateTime),
		}
		if p.OrganizationName != nil {
			part.OrganizationName = *p.OrganizationName
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
		m, err := storage.ParseMoney(text)
		if err != nil {
			c.fail("details.dealValue", "%s", err.Error())
		}
		out.DealValue = &m
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

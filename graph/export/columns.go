package export

import (
	"encoding/json"
	"strconv"
	"strings"
)

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
		Contacts []contact
	}
	Details *struct {
		Notes, DealValue, ClosingDate *string
		Requirements                  map[string][]struct{ ID string }
	}
	Participants []participant
}

// participant is a participant as the export's query returns it.
type participant struct {
	ID, CreatedDateTime, OrganizationID, Status                              string
	OrganizationName, LocationID, ExpirationDateTime, InvitedByParticipantID *string
	Users                                                                    []user
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

// contact is a contact as the contacts cell holds it, and user a
// participant's user as the participantUsers cell does: objects with the
// API's names, so that no name's spaces or brackets can be misread.
type (
	contact struct {
		FirstName   *string `json:"firstName"`
		LastName    *string `json:"lastName"`
		Email       *string `json:"email"`
		PhoneNumber *string `json:"phoneNumber"`
	}
	user struct {
		ID string `json:"id"`
		contact
	}
)

// list is the cell of a list: its entries as a JSON array (absent values
// null), so that no entry's text can run into the next.
func list[T any](entries []T) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<email>" stays readable
	_ = enc.Encode(entries)  // cannot fail: strings, nils and contacts
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

// participants is a column of one value of each participant, in order.
func participants(value func(p *participant) any) func(*referral) string {
	return func(r *referral) string {
		values := make([]any, len(r.Participants))
		for i := range r.Participants {
			values[i] = value(&r.Participants[i])
		}
		return list(values)
	}
}

// Columns are the CSV export's columns, in order. Lists (contacts, tags,
// participants) are one cell each, a JSON array of their entries (a
// contact an object); the participant columns list the participants in
// the same order.
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
		return list(r.CustomerProfile.Contacts)
	}},
	{"notes", detail(func(r *referral) *string { return r.Details.Notes })},
	{"dealValue", detail(func(r *referral) *string { return r.Details.DealValue })},
	{"closingDate", detail(func(r *referral) *string { return r.Details.ClosingDate })},
	{"industryFocus", tags("industryFocus")},
	{"products", tags("products")},
	{"serviceTypes", tags("serviceTypes")},
	{"solutions", tags("solutions")},
	{"participantCount", func(r *referral) string { return strconv.Itoa(len(r.Participants)) }},
	{"participantIds", participants(func(p *participant) any { return p.ID })},
	{"participantOrganizationIds", participants(func(p *participant) any { return p.OrganizationID })},
	{"participantOrganizationNames", participants(func(p *participant) any { return p.OrganizationName })},
	{"participantStatuses", participants(func(p *participant) any { return p.Status })},
	{"participantExpirations", participants(func(p *participant) any { return p.ExpirationDateTime })},
	{"participantCreatedDateTimes", participants(func(p *participant) any { return p.CreatedDateTime })},
	{"participantLocationIds", participants(func(p *participant) any { return p.LocationID })},
	{"participantInvitedBy", participants(func(p *participant) any { return p.InvitedByParticipantID })},
	{"participantUsers", participants(func(p *participant) any { return p.Users })},
}

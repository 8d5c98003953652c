package storage

import "time"

// Referral is a sales lead, stored in the `referrals` collection with its
// customer profile and details embedded.
type Referral struct {
	ID              string    `bson:"_id"`
	CreatedDateTime time.Time `bson:"createdDateTime"`
	UpdatedDateTime time.Time `bson:"updatedDateTime"`
	// Version counts changes (0 for documents written without one); writes
	// name the version they expect, like an HTTP ETag.
	Version         int64            `bson:"version"`
	Status          ReferralStatus   `bson:"status"`
	StatusReason    *string          `bson:"statusReason,omitempty"`
	ReferralSource  ReferralSource   `bson:"referralSource"`
	CustomerProfile *CustomerProfile `bson:"customerProfile,omitempty"`
	Details         *ReferralDetails `bson:"details,omitempty"`
	// Participation copies each participant's organization and status into
	// the referral, so that "has a participant such that" filters (and,
	// later, per-organization visibility) are one query on one collection,
	// with counts and pages that stay right.
	Participation []Participation `bson:"participation"`
	// AtChange marks a referral as a change left it (a subscription's or a
	// webhook's event): its participants are then those of Participation,
	// in the statuses they had, not those of now (see AsAtChange).
	AtChange bool `bson:"-"`
}

// AsAtChange returns participants (the referral's now) as they were when
// r, a referral as a change left it, was recorded: only those it had,
// each in the status it had. A referral not marked AtChange keeps them.
func (r *Referral) AsAtChange(participants []*Participant) []*Participant {
	if !r.AtChange {
		return participants
	}
	out := make([]*Participant, 0, len(participants))
	for _, p := range participants {
		for _, then := range r.Participation {
			if then.ParticipantID == p.ID {
				q := *p
				q.Status = then.Status
				out = append(out, &q)
				break
			}
		}
	}
	return out
}

// Participation is the part of a participant that referral queries filter on.
type Participation struct {
	ParticipantID  string            `bson:"participantId"`
	OrganizationID string            `bson:"organizationId"`
	Status         ParticipantStatus `bson:"status"`
	// OrgStatus is "organizationId/Status": matching organization and status
	// of the same participant needs one value, because $elemMatch on
	// subdocument fields is not portable (FerretDB rejects it).
	OrgStatus string `bson:"orgStatus"`
}

// Participation returns what a referral keeps of participant p.
func (p *Participant) Participation() Participation {
	return Participation{
		ParticipantID: p.ID, OrganizationID: p.OrganizationID, Status: p.Status,
		OrgStatus: p.OrganizationID + "/" + string(p.Status),
	}
}

// CustomerProfile is the customer's contact information.
type CustomerProfile struct {
	ID       string    `bson:"id"`
	Name     string    `bson:"name"`
	Address  *Address  `bson:"address,omitempty"`
	Size     string    `bson:"size,omitempty"`
	Contacts []Contact `bson:"contacts"`
}

// Address is a postal address; Country is an ISO 3166-1 alpha-2 code.
type Address struct {
	AddressLine1 string  `bson:"addressLine1"`
	AddressLine2 *string `bson:"addressLine2,omitempty"`
	City         string  `bson:"city"`
	State        *string `bson:"state,omitempty"`
	PostalCode   string  `bson:"postalCode"`
	Country      string  `bson:"country"`
}

// Contact is an individual at the customer organization.
type Contact struct {
	FirstName   string `bson:"firstName"`
	LastName    string `bson:"lastName"`
	PhoneNumber string `bson:"phoneNumber,omitempty"`
	Email       string `bson:"email,omitempty"`
}

// ReferralDetails holds notes, value, closing date and requirements.
type ReferralDetails struct {
	Notes        *string      `bson:"notes,omitempty"`
	DealValue    *Money       `bson:"dealValueCents,omitempty"`
	ClosingDate  *time.Time   `bson:"closingDate,omitempty"`
	Requirements Requirements `bson:"requirements"`
}

// Requirements holds tag ids, one list per catalog category.
type Requirements struct {
	IndustryFocus []string `bson:"industryFocus"`
	Products      []string `bson:"products"`
	ServiceTypes  []string `bson:"serviceTypes"`
	Solutions     []string `bson:"solutions"`
}

// ByCategory returns the tag id lists keyed by category.
func (r Requirements) ByCategory() map[TagCategory][]string {
	out := make(map[TagCategory][]string, len(requirementFields))
	for _, f := range requirementFields {
		out[f.category] = f.ids(&r)
	}
	return out
}

// requirementFields is the one table of the four requirement lists, in
// catalog order: each list's tag category, its field name in documents and
// in the API, and where it sits in Requirements and RequirementsFilter.
var requirementFields = []struct {
	category TagCategory
	name     string
	ids      func(*Requirements) []string
	match    func(*RequirementsFilter) *TagMatch
}{
	{TagIndustryFocus, "industryFocus",
		func(r *Requirements) []string { return r.IndustryFocus }, func(f *RequirementsFilter) *TagMatch { return f.IndustryFocus }},
	{TagProducts, "products",
		func(r *Requirements) []string { return r.Products }, func(f *RequirementsFilter) *TagMatch { return f.Products }},
	{TagServiceTypes, "serviceTypes",
		func(r *Requirements) []string { return r.ServiceTypes }, func(f *RequirementsFilter) *TagMatch { return f.ServiceTypes }},
	{TagSolutions, "solutions",
		func(r *Requirements) []string { return r.Solutions }, func(f *RequirementsFilter) *TagMatch { return f.Solutions }},
}

// Participant is one organization's participation in a referral, stored in
// the `participants` collection with its users embedded.
type Participant struct {
	ID                     string            `bson:"_id"`
	ReferralID             string            `bson:"referralId"`
	CreatedDateTime        time.Time         `bson:"createdDateTime"`
	ExpirationDateTime     *time.Time        `bson:"expirationDateTime,omitempty"`
	OrganizationID         string            `bson:"organizationId"`
	LocationID             *string           `bson:"locationId,omitempty"`
	OrganizationName       string            `bson:"organizationName"`
	Users                  []ParticipantUser `bson:"users"`
	Status                 ParticipantStatus `bson:"status"`
	InvitedByParticipantID *string           `bson:"invitedByParticipantId,omitempty"`
	ReferralView           string            `bson:"referralView,omitempty"`
}

// ParticipantUser is an individual at a participating organization.
type ParticipantUser struct {
	ID          string `bson:"id"`
	FirstName   string `bson:"firstName"`
	LastName    string `bson:"lastName"`
	Email       string `bson:"email,omitempty"`
	PhoneNumber string `bson:"phoneNumber,omitempty"`
}

// Tag is one entry of the requirement catalog, identified by (Category, ID).
type Tag struct {
	ID       string      `bson:"tagId"`
	Category TagCategory `bson:"category"`
	Name     string      `bson:"name"`
}

// TagKey identifies a tag across categories.
type TagKey struct {
	Category TagCategory
	ID       string
}

// docID is the tag's `_id` in the `tags` collection. Tag ids contain commas,
// spaces and parentheses but never a colon.
func (k TagKey) docID() string { return string(k.Category) + ":" + k.ID }

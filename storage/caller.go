package storage

import (
	"context"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Role is what a caller may do.
type Role string

// The roles of the API.
const (
	// RoleAdmin sees and changes everything.
	RoleAdmin Role = "admin"
	// RolePartner sees the referrals its organization takes part in.
	RolePartner Role = "partner"
)

// Caller is who makes a request, from a verified token (or the open
// development mode, where everyone is an admin).
type Caller struct {
	Subject        string
	OrganizationID string
	Role           Role
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller of ctx. A context without one is a
// partner of no organization: it sees nothing, so a missing identity can
// never widen what is visible.
func CallerFrom(ctx context.Context) Caller {
	c, ok := ctx.Value(callerKey{}).(Caller)
	if !ok {
		return Caller{Role: RolePartner}
	}
	return c
}

// IsAdmin reports whether the caller sees and changes everything.
func (c Caller) IsAdmin() bool { return c.Role == RoleAdmin }

// referralScope is the condition every referral query of the caller is
// ANDed with: a partner sees only referrals its organization takes part in.
func referralScope(c Caller) bson.D {
	if c.IsAdmin() {
		return bson.D{}
	}
	return bson.D{{Key: "participation.organizationId", Value: c.OrganizationID}}
}

// inReferralScope reports whether r meets referralScope(c), checked on a
// referral read by _id alone (TestScopesAgree holds the two together).
func inReferralScope(c Caller, r *Referral) bool {
	return c.IsAdmin() || slices.ContainsFunc(r.Participation, func(p Participation) bool { return p.OrganizationID == c.OrganizationID })
}

// participantScope is the condition every participant listing of the
// caller is ANDed with: a partner lists its own organization's records.
func participantScope(c Caller) bson.D {
	if c.IsAdmin() {
		return bson.D{}
	}
	return bson.D{{Key: "organizationId", Value: c.OrganizationID}}
}

// inParticipantScope reports whether p meets participantScope(c), checked
// on a participant read by _id alone.
func inParticipantScope(c Caller, p *Participant) bool {
	return c.IsAdmin() || p.OrganizationID == c.OrganizationID
}

// hiddenFieldScope is the condition a filter on fields that ViewFor hides
// adds for the caller: a partner sees the customer's address (and
// contacts) only where its participation is Accepted, so a condition on
// them matches only there. Otherwise a filter such as customerCountry
// would tell the partner what its view of the referral leaves out.
func hiddenFieldScope(c Caller, f *ReferralFilter) bson.D {
	if f == nil || f.CustomerCountry == nil {
		return bson.D{}
	}
	return customerDetailsScope(c)
}

// customerDetailsScope matches the referrals whose customer address and
// contacts the caller sees (see ViewFor).
func customerDetailsScope(c Caller) bson.D {
	if c.IsAdmin() {
		return bson.D{}
	}
	return bson.D{{Key: "participation.orgStatus", Value: c.OrganizationID + "/" + string(ParticipantAccepted)}}
}

// ViewFor returns r as the caller may see it, or false when the caller may
// not see it at all. A partner sees the customer's address and contacts
// only once its own participation is Accepted. The stored referral is not
// changed; a redacted copy is returned.
func ViewFor(c Caller, r *Referral) (*Referral, bool) {
	if c.IsAdmin() {
		return r, true
	}
	if !inReferralScope(c, r) {
		return nil, false
	}
	if seesCustomerDetails(c, r) || r.CustomerProfile == nil {
		return r, true
	}
	view := *r
	profile := *r.CustomerProfile
	profile.Address, profile.Contacts = nil, nil
	view.CustomerProfile = &profile
	return &view, true
}

// seesCustomerDetails reports whether the caller sees the customer's
// address and contacts on r: an admin always, a partner once its own
// participation is Accepted.
func seesCustomerDetails(c Caller, r *Referral) bool {
	return c.IsAdmin() || slices.ContainsFunc(r.Participation, func(p Participation) bool {
		return p.OrganizationID == c.OrganizationID && p.Status == ParticipantAccepted
	})
}

// hiddenCustomerFields are the changed fields (Change.Fields) that name
// what a partner does not see before it accepts.
var hiddenCustomerFields = []string{"customerProfile.address", "customerProfile.contacts"}

// ChangedFieldsFor returns the fields of a change of r that the caller
// may be told changed: not the customer's address or contacts while it
// may not see them, or an event would say what its view leaves out.
func ChangedFieldsFor(c Caller, r *Referral, fields []string) []string {
	if seesCustomerDetails(c, r) {
		return fields
	}
	return slices.DeleteFunc(slices.Clone(fields), func(f string) bool {
		return slices.ContainsFunc(hiddenCustomerFields, func(h string) bool { return f == h || strings.HasPrefix(f, h+".") })
	})
}

// participantFor returns p as the caller may see it: a partner sees the
// users of its own organization's participant records only.
func participantFor(c Caller, p *Participant) *Participant {
	if c.IsAdmin() || p.OrganizationID == c.OrganizationID {
		return p
	}
	view := *p
	view.Users = nil
	return &view
}

// requireAdmin refuses a partner with CodeForbidden, naming what it tried.
func requireAdmin(ctx context.Context, what string) error {
	if !CallerFrom(ctx).IsAdmin() {
		return Errorf(CodeForbidden, "only admins may %s", what)
	}
	return nil
}

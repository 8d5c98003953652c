package storage

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ReferralFilter selects referrals; every condition given must hold.
type ReferralFilter struct {
	Status          []ReferralStatus
	ReferralSource  []ReferralSource
	CreatedDateTime *TimeRange
	UpdatedDateTime *TimeRange
	ClosingDate     *TimeRange
	DealValue       *MoneyRange
	Requirements    *RequirementsFilter
	Participant     *ParticipantMatch
	CustomerName    *string
	CustomerCountry []string
}

// TimeRange is [From, To): From inclusive, To exclusive.
type TimeRange struct {
	From *time.Time
	To   *time.Time
}

// MoneyRange is [Min, Max], both inclusive.
type MoneyRange struct {
	Min *Money
	Max *Money
}

// RequirementsFilter holds one tag condition per category.
type RequirementsFilter struct {
	IndustryFocus *TagMatch
	Products      *TagMatch
	ServiceTypes  *TagMatch
	Solutions     *TagMatch
}

// TagMatch matches referrals with any of AnyOf and all of AllOf.
type TagMatch struct {
	AnyOf []string
	AllOf []string
}

// ParticipantMatch matches referrals with one participant meeting every part.
type ParticipantMatch struct {
	OrganizationID     *string
	Status             []ParticipantStatus
	ExpirationDateTime *TimeRange
}

// check reports the first problem of f as a CodeBadUserInput error whose
// Field locates it: the one validation of a referral filter. It reads
// nothing; query, Matches and the store's reads take a checked filter.
func (f *ReferralFilter) check() error {
	if f == nil {
		return nil
	}
	if err := f.checkSizes(); err != nil {
		return err
	}
	if err := checkEnums("filter.status", f.Status, referralStatusPositions); err != nil {
		return err
	}
	if err := checkEnums("filter.referralSource", f.ReferralSource, referralSourcePositions); err != nil {
		return err
	}
	for _, r := range f.timeRanges() {
		if r.rng != nil {
			if err := r.rng.check("filter." + r.field); err != nil {
				return err
			}
		}
	}
	if f.DealValue != nil {
		if err := f.DealValue.check("filter.dealValue"); err != nil {
			return err
		}
	}
	if f.Requirements != nil {
		if err := f.Requirements.check(); err != nil {
			return err
		}
	}
	if f.Participant != nil {
		if err := f.Participant.check(); err != nil {
			return err
		}
	}
	for _, c := range f.CustomerCountry {
		if c = strings.ToUpper(c); !isCountry(c) {
			return badInput("filter.customerCountry", "%q is not an ISO 3166-1 alpha-2 country code such as \"US\"", c)
		}
	}
	return nil
}

// timeRange is a date range of a referral filter: its field in the
// filter, its path in the document.
type timeRange struct {
	field, path string
	rng         *TimeRange
}

func (f *ReferralFilter) timeRanges() []timeRange {
	return []timeRange{
		{"createdDateTime", "createdDateTime", f.CreatedDateTime},
		{"updatedDateTime", "updatedDateTime", f.UpdatedDateTime},
		{"closingDate", "details.closingDate", f.ClosingDate},
	}
}

// query is the MongoDB query of the checked filter f (see check), but for
// what needs the store: a participant expiration range (expiringQuery)
// and statuses that lapse (participantStatusQuery). Nil matches all.
func (f *ReferralFilter) query() bson.D {
	if f == nil {
		return nil
	}
	var conds []bson.D
	if f.Status != nil {
		conds = append(conds, in("status", storedForms(f.Status, referralStatusPositions)))
	}
	if f.ReferralSource != nil {
		conds = append(conds, in("referralSource", storedForms(f.ReferralSource, referralSourcePositions)))
	}
	for _, r := range f.timeRanges() {
		if r.rng != nil {
			conds = append(conds, r.rng.query(r.path))
		}
	}
	if f.DealValue != nil {
		conds = append(conds, f.DealValue.query(string(OrderByDealValue)))
	}
	if f.Requirements != nil {
		conds = append(conds, f.Requirements.query())
	}
	if m := f.Participant; m != nil && m.ExpirationDateTime == nil && !m.lapses() { // else the store decides
		conds = append(conds, m.query())
	}
	if f.CustomerName != nil {
		conds = append(conds, bson.D{{Key: "customerProfile.name", Value: bson.D{
			{Key: "$regex", Value: regexp.QuoteMeta(*f.CustomerName)}, {Key: "$options", Value: "i"},
		}}})
	}
	if f.CustomerCountry != nil {
		conds = append(conds, countryQuery(f.CustomerCountry))
	}
	return and(conds...)
}

// maxFilterValues bounds every list of a filter: more than any real
// question names (there are 249 countries and 92 tags), few enough that
// no filter makes the store compare each document with megabytes of input.
const maxFilterValues = 250

// checkSizes refuses filters whose lists or text are longer than any real
// question needs: the store compares every document with them, so their
// size is the cost of the query.
func (f *ReferralFilter) checkSizes() error {
	type list struct {
		field string
		n     int
	}
	lists := []list{
		{"filter.status", len(f.Status)},
		{"filter.referralSource", len(f.ReferralSource)},
		{"filter.customerCountry", len(f.CustomerCountry)},
	}
	if p := f.Participant; p != nil {
		lists = append(lists, list{"filter.participant.status", len(p.Status)})
		if p.OrganizationID != nil && len(*p.OrganizationID) > maxNameLength {
			return badInput("filter.participant.organizationId", "is longer than %d characters", maxNameLength)
		}
	}
	if f.Requirements != nil {
		for _, rf := range requirementFields {
			if m := rf.match(f.Requirements); m != nil {
				lists = append(lists, list{"filter.requirements." + rf.name + ".anyOf", len(m.AnyOf)},
					list{"filter.requirements." + rf.name + ".allOf", len(m.AllOf)})
			}
		}
	}
	for _, l := range lists {
		if l.n > maxFilterValues {
			return badInput(l.field, "lists %d values; at most %d are allowed", l.n, maxFilterValues)
		}
	}
	if f.CustomerName != nil && utf8.RuneCountInString(*f.CustomerName) > maxNameLength {
		return badInput("filter.customerName", "is longer than %d characters, the longest name a customer can have", maxNameLength)
	}
	return nil
}

func in(path string, values bson.A) bson.D {
	return bson.D{{Key: path, Value: bson.D{{Key: "$in", Value: values}}}}
}

// check refuses a range that gives no end or whose ends are in the wrong
// order; field names it.
func (r *TimeRange) check(field string) error {
	if r.From == nil && r.To == nil {
		return badInput(field, "give from, to or both")
	}
	if r.From != nil && r.To != nil && !r.From.Before(*r.To) {
		return badInput(field, "from (%s) must be before to (%s)",
			r.From.UTC().Format(time.RFC3339Nano), r.To.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// query matches the checked range on the document path.
func (r *TimeRange) query(path string) bson.D {
	var c bson.D
	if r.From != nil {
		c = append(c, bson.E{Key: "$gte", Value: r.From.UTC()})
	}
	if r.To != nil {
		c = append(c, bson.E{Key: "$lt", Value: r.To.UTC()})
	}
	return bson.D{{Key: path, Value: c}}
}

// check refuses a range that gives no end or whose ends are in the wrong
// order; field names it.
func (r *MoneyRange) check(field string) error {
	if r.Min == nil && r.Max == nil {
		return badInput(field, "give min, max or both")
	}
	if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
		return badInput(field, "min (%s) must not exceed max (%s)", r.Min, r.Max)
	}
	return nil
}

// query matches the checked range on the document path.
func (r *MoneyRange) query(path string) bson.D {
	var c bson.D
	if r.Min != nil {
		c = append(c, bson.E{Key: "$gte", Value: int64(*r.Min)})
	}
	if r.Max != nil {
		c = append(c, bson.E{Key: "$lte", Value: int64(*r.Max)})
	}
	return bson.D{{Key: path, Value: c}}
}

// check refuses a tag match that gives neither anyOf nor allOf.
func (r *RequirementsFilter) check() error {
	for _, f := range requirementFields {
		if m := f.match(r); m != nil && m.AnyOf == nil && m.AllOf == nil {
			return badInput("filter.requirements."+f.name, "give anyOf, allOf or both")
		}
	}
	return nil
}

// query matches the checked tag matches of r.
func (r *RequirementsFilter) query() bson.D {
	var conds []bson.D
	for _, f := range requirementFields {
		m := f.match(r)
		if m == nil {
			continue
		}
		path := "details.requirements." + f.name
		if m.AnyOf != nil {
			conds = append(conds, bson.D{{Key: path, Value: bson.D{{Key: "$in", Value: m.AnyOf}}}})
		}
		if m.AllOf != nil {
			conds = append(conds, bson.D{{Key: path, Value: bson.D{{Key: "$all", Value: m.AllOf}}}})
		}
	}
	return and(conds...)
}

// check refuses unknown statuses, and a match that gives nothing; an
// expiration range is checked as a range.
func (m *ParticipantMatch) check() error {
	if err := checkEnums("filter.participant.status", m.Status, participantStatusPositions); err != nil {
		return err
	}
	if m.ExpirationDateTime != nil {
		return m.ExpirationDateTime.check("filter.participant.expirationDateTime")
	}
	if m.OrganizationID == nil && m.Status == nil {
		return badInput("filter.participant", "give organizationId, status, expirationDateTime or several")
	}
	return nil
}

// query matches the referrals with a participation entry meeting the
// checked m's organization and statuses as stored (not its expiration
// range: see expiringQuery).
func (m *ParticipantMatch) query() bson.D {
	switch {
	case m.OrganizationID != nil && m.Status != nil:
		keys := make(bson.A, len(m.Status))
		for i, st := range m.Status {
			keys[i] = *m.OrganizationID + "/" + string(st)
		}
		return in("participation.orgStatus", keys)
	case m.OrganizationID != nil:
		return bson.D{{Key: "participation.organizationId", Value: *m.OrganizationID}}
	case m.Status != nil:
		return in("participation.status", toA(m.Status))
	}
	return nil
}

func toA[E ~string](values []E) bson.A {
	out := make(bson.A, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// countryQuery matches the checked country codes, in any case.
func countryQuery(codes []string) bson.D {
	values := make(bson.A, len(codes))
	for i, c := range codes {
		values[i] = strings.ToUpper(c)
	}
	return in("customerProfile.address.country", values)
}

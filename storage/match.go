package storage

import (
	"slices"
	"strings"
	"time"
)

// Validate reports the first problem of f as a CodeBadUserInput error.
func (f *ReferralFilter) Validate() error {
	if f == nil {
		return nil
	}
	_, err := f.query()
	return err
}

// Matches reports whether r meets f, with the same meaning as the MongoDB
// query f makes (TestMatchesAgreesWithQuery holds the two together). It
// serves subscriptions, which filter each change in memory rather than
// asking the store once per subscriber. f must be valid.
func (f *ReferralFilter) Matches(r *Referral) bool {
	if f == nil {
		return true
	}
	d := r.Details
	if d == nil {
		d = &ReferralDetails{}
	}
	p := r.CustomerProfile
	if p == nil {
		p = &CustomerProfile{}
	}
	country := ""
	if p.Address != nil {
		country = p.Address.Country
	}
	return (f.Status == nil || slices.Contains(f.Status, r.Status)) &&
		(f.ReferralSource == nil || slices.Contains(f.ReferralSource, r.ReferralSource)) &&
		f.CreatedDateTime.contains(&r.CreatedDateTime) &&
		f.UpdatedDateTime.contains(&r.UpdatedDateTime) &&
		f.ClosingDate.contains(d.ClosingDate) &&
		f.DealValue.contains(d.DealValue) &&
		f.Requirements.matches(d.Requirements) &&
		f.Participant.matches(r.Participation) &&
		(f.CustomerName == nil || strings.Contains(strings.ToLower(p.Name), strings.ToLower(*f.CustomerName))) &&
		(f.CustomerCountry == nil || slices.ContainsFunc(f.CustomerCountry, func(c string) bool { return strings.EqualFold(c, country) }))
}

func (r *TimeRange) contains(t *time.Time) bool {
	if r == nil {
		return true
	}
	return t != nil && (r.From == nil || !t.Before(*r.From)) && (r.To == nil || t.Before(*r.To))
}

func (r *MoneyRange) contains(m *Money) bool {
	if r == nil {
		return true
	}
	return m != nil && (r.Min == nil || *m >= *r.Min) && (r.Max == nil || *m <= *r.Max)
}

func (f *RequirementsFilter) matches(q Requirements) bool {
	if f == nil {
		return true
	}
	for _, rf := range requirementFields {
		m := rf.match(f)
		if m == nil {
			continue
		}
		ids := rf.ids(&q)
		if m.AnyOf != nil && !slices.ContainsFunc(m.AnyOf, func(id string) bool { return slices.Contains(ids, id) }) {
			return false
		}
		for _, id := range m.AllOf {
			if !slices.Contains(ids, id) {
				return false
			}
		}
	}
	return true
}

func (m *ParticipantMatch) matches(list []Participation) bool {
	if m == nil {
		return true
	}
	return slices.ContainsFunc(list, func(p Participation) bool {
		return (m.OrganizationID == nil || p.OrganizationID == *m.OrganizationID) &&
			(m.Status == nil || slices.Contains(m.Status, p.Status))
	})
}

package storage

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/embedded/sqlplan"
)

// Validate reports the first problem of f for Matches as a
// CodeBadUserInput error. A participant expiration range cannot be matched
// in memory (a referral does not hold its participants' expirations).
func (f *ReferralFilter) Validate() error {
	if f == nil {
		return nil
	}
	if f.Participant != nil && f.Participant.ExpirationDateTime != nil {
		return badInput("filter.participant.expirationDateTime", "is not available for live updates; list referrals with it instead")
	}
	return f.check()
}

// maxExpiringParticipants bounds the participants a participant expiration
// range may select: their referrals' ids go into the referral query. A
// variable so that a test can reach it with a small store.
var maxExpiringParticipants = 10_000

// expiringQuery matches the referrals with a participant meeting every
// part of f's participant match, when that has an expiration range. The
// condition is on the participant records, where one document holds the
// organization, status and expiration of one participant: the referral's
// participation entries hold no expirations, and same-entry ranges over a
// list ($elemMatch) are not portable. Only the participants the caller may
// list count, as in the participants query: a partner's range selects its
// own organization's invitations, and neither the match nor the bound
// tells it anything about the records of others.
func (s *Store) expiringQuery(ctx context.Context, f *ReferralFilter) (bson.D, error) {
	if f == nil || f.Participant == nil || f.Participant.ExpirationDateTime == nil {
		return nil, nil
	}
	m := f.Participant
	q := m.ExpirationDateTime.query("expirationDateTime")
	if m.OrganizationID != nil {
		q = append(q, bson.E{Key: "organizationId", Value: *m.OrganizationID})
	}
	if m.Status != nil {
		q = append(q, effectiveStatusIn(m.Status, s.Now()))
	}
	referralIDs, err := s.expiringReferrals(ctx, and(participantScope(CallerFrom(ctx)), q))
	if err != nil {
		return nil, err
	}
	if len(referralIDs) > maxExpiringParticipants {
		return nil, badInput("filter.participant.expirationDateTime", "matches more than %d participants; narrow the range", maxExpiringParticipants)
	}
	ids := bson.A{}
	seen := map[string]bool{}
	for _, id := range referralIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return in("_id", ids), nil
}

// expiringReferrals returns the referral id of each participant matching
// filter (repeated for several of one referral), up to one more than
// maxExpiringParticipants.
func (s *Store) expiringReferrals(ctx context.Context, filter bson.D) ([]string, error) {
	var ids []string
	done, err := s.planned(ctx, s.participants, "by expiration", func(t *sqlplan.Table, db *sql.DB) (err error) {
		ids, err = t.Strings(ctx, db, "referralId", filter, maxExpiringParticipants+1)
		return err
	})
	if done || err != nil {
		return ids, err
	}
	// A find rather than distinct: FerretDB's distinct refuses maxTimeMS,
	// which the client sends with every command.
	opts := options.Find().SetProjection(bson.D{{Key: "referralId", Value: 1}}).SetLimit(int64(maxExpiringParticipants) + 1).
		SetBatchSize(batchSizeFor(maxExpiringParticipants + 1))
	cur, err := s.participants.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find participants by expiration: %w", err)
	}
	var found []Participant
	if err := cur.All(ctx, &found); err != nil {
		return nil, fmt.Errorf("read participants by expiration: %w", err)
	}
	for _, p := range found {
		ids = append(ids, p.ReferralID)
	}
	return ids, nil
}

// lapses reports whether m names a status an invitation changes by
// passing its expiration (INVITED, EXPIRED): it reads EXPIRED at once,
// while its stored status changes at the next expiry sweep.
func (m *ParticipantMatch) lapses() bool {
	return slices.Contains(m.Status, ParticipantInvited) || slices.Contains(m.Status, ParticipantExpired)
}

// participantStatusQuery matches, for a filter whose participant match
// has no expiration range and lapses, the referrals with a participant (of
// its organization, when given) whose status as read now is one of its
// statuses. Referrals holding no invitation past its expiration still
// recorded INVITED (normally none: the sweep records them within a
// minute) are matched by their stored statuses; those holding one are
// decided here from their participation entries, as they read.
func (s *Store) participantStatusQuery(ctx context.Context, f *ReferralFilter) (bson.D, error) {
	if f == nil || f.Participant == nil || f.Participant.ExpirationDateTime != nil || !f.Participant.lapses() {
		return nil, nil
	}
	m := f.Participant
	stored := m.query()
	found, err := s.lapsedInvitations(ctx, m.OrganizationID)
	if err != nil || len(found) == 0 {
		return stored, err
	}
	referralIDs := slices.Compact(slices.Sorted(maps.Values(found)))
	refs, err := findByID(ctx, s, s.referrals, referralIDs, nil, s.idOnly(), func(r *Referral) string { return r.ID })
	if err != nil {
		return nil, err
	}
	matching := bson.A{}
	for _, r := range refs {
		if slices.ContainsFunc(r.Participation, func(e Participation) bool {
			status := e.Status
			if _, ok := found[e.ParticipantID]; ok {
				status = ParticipantExpired
			}
			return (m.OrganizationID == nil || e.OrganizationID == *m.OrganizationID) && slices.Contains(m.Status, status)
		}) {
			matching = append(matching, r.ID)
		}
	}
	return bson.D{{Key: "$or", Value: bson.A{
		and(stored, bson.D{{Key: "_id", Value: bson.D{{Key: "$nin", Value: referralIDs}}}}),
		in("_id", matching),
	}}}, nil
}

// lapsedInvitations returns the referral id of each invitation past its
// expiration not yet recorded EXPIRED (of the organization, when given),
// keyed by the participant's id, refusing more than
// maxExpiringParticipants (a sweep that far behind).
func (s *Store) lapsedInvitations(ctx context.Context, organizationID *string) (map[string]string, error) {
	filter := bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: storedForms([]ParticipantStatus{ParticipantInvited}, participantStatusPositions)}}},
		{Key: "expirationDateTime", Value: bson.D{{Key: "$lte", Value: s.Now()}}}}
	if organizationID != nil {
		filter = append(filter, bson.E{Key: "organizationId", Value: *organizationID})
	}
	var found []*Participant
	done, err := s.planned(ctx, s.participants, "lapsed invitations", func(t *sqlplan.Table, db *sql.DB) error {
		raws, err := t.Documents(ctx, db, filter, sqlplan.Order{Path: "createdDateTime"})
		if err == nil {
			found, err = decodeAll[Participant](raws)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !done {
		cur, err := s.participants.Find(ctx, filter, options.Find().SetLimit(int64(maxExpiringParticipants)+1))
		if err != nil {
			return nil, fmt.Errorf("find lapsed invitations: %w", err)
		}
		if err := cur.All(ctx, &found); err != nil {
			return nil, fmt.Errorf("read lapsed invitations: %w", err)
		}
	}
	if len(found) > maxExpiringParticipants {
		return nil, fmt.Errorf("more than %d invitations are past their expiration and not yet recorded expired", maxExpiringParticipants)
	}
	out := make(map[string]string, len(found))
	for _, p := range found {
		out[p.ID] = p.ReferralID
	}
	return out, nil
}

// expireLapsed records EXPIRED, as the sweep would, the invitations past
// their expiration it has not yet recorded (normally none: it runs every
// minute), so that what is stored is what reads: statistics group by the
// stored statuses.
func (s *Store) expireLapsed(ctx context.Context) error {
	found, err := s.lapsedInvitations(ctx, nil)
	if err != nil {
		return err
	}
	var done []string
	defer func() { s.unmarkDue(ctx, done...) }()
	for id := range found {
		expired, err := s.expireInvitation(ctx, dueEntry{ParticipantID: id, Due: s.Now()})
		if err != nil {
			return err
		}
		if expired {
			done = append(done, id)
		}
	}
	return nil
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

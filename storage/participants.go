package storage

import (
	"cmp"
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

// ParticipantFilter selects participant records; all given parts must hold.
type ParticipantFilter struct {
	OrganizationID     *string
	Status             []ParticipantStatus
	ExpirationDateTime *TimeRange
}

// ParticipantPage is one page of participants.
type ParticipantPage struct {
	Edges    []*ParticipantEdge
	PageInfo PageInfo
}

// ParticipantEdge is a participant with its cursor.
type ParticipantEdge struct {
	Cursor string
	Node   *Participant
}

// Nodes returns the page's participants.
func (p *ParticipantPage) Nodes() []*Participant {
	out := make([]*Participant, len(p.Edges))
	for i, e := range p.Edges {
		out[i] = e.Node
	}
	return out
}

var participantOrder = sortOrder{Field: "createdDateTime", Desc: true}

// Participants returns one page of the participants matching f, newest
// first. Bad filters, sizes and cursors are CodeBadUserInput errors.
func (s *Store) Participants(ctx context.Context, f *ParticipantFilter, args PageArgs) (*ParticipantPage, error) {
	filter, err := f.query(ctx, s.Now())
	if err != nil {
		return nil, err
	}
	p, err := pageQuery[Participant]{
		store: s, coll: s.participants, filter: filter, order: participantOrder, args: args,
		key: func(p *Participant) (any, string) { return p.CreatedDateTime, p.ID },
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	out := &ParticipantPage{PageInfo: p.info, Edges: make([]*ParticipantEdge, len(p.items))}
	for i, it := range p.items {
		out.Edges[i] = &ParticipantEdge{Cursor: p.cursors[i], Node: it}
	}
	return out, nil
}

// CountParticipants counts the participants matching f.
func (s *Store) CountParticipants(ctx context.Context, f *ParticipantFilter) (int, error) {
	filter, err := f.query(ctx, s.Now())
	if err != nil {
		return 0, err
	}
	n, err := s.countDocuments(ctx, s.participants, filter)
	return int(n), err
}

// query matches f within what the caller may list (participantScope), by
// the status readers see at now (see EffectiveStatus): an invitation past
// its expiration is EXPIRED before the sweep records it so.
func (f *ParticipantFilter) query(ctx context.Context, now time.Time) (bson.D, error) {
	q := bson.D{}
	if f != nil {
		if len(f.Status) > maxFilterValues {
			return nil, badInput("filter.status", "lists %d values; at most %d are allowed", len(f.Status), maxFilterValues)
		}
		if f.OrganizationID != nil && len(*f.OrganizationID) > maxNameLength {
			return nil, badInput("filter.organizationId", "is longer than %d characters", maxNameLength)
		}
		if err := checkEnums("filter.status", f.Status, participantStatusPositions); err != nil {
			return nil, err
		}
		if f.OrganizationID != nil {
			q = append(q, bson.E{Key: "organizationId", Value: *f.OrganizationID})
		}
		if f.Status != nil {
			q = append(q, effectiveStatusIn(f.Status, now))
		}
		if f.ExpirationDateTime != nil {
			if err := f.ExpirationDateTime.check("filter.expirationDateTime"); err != nil {
				return nil, err
			}
			q = append(q, f.ExpirationDateTime.query("expirationDateTime")...)
		}
	}
	return and(participantScope(CallerFrom(ctx)), q), nil
}

// ParticipantsByID returns the participants with the given ids that the
// caller may see (those of referrals it sees), keyed by id; unknown and
// invisible ids are absent alike. For a partner, either the referrals it
// sees name the participants it may read (both queries carry its scope),
// or, where the store indexes only _id, each participant and then its
// referral are read by _id and checked.
func (s *Store) ParticipantsByID(ctx context.Context, ids []string) (map[string]*Participant, error) {
	caller := CallerFrom(ctx)
	point := s.idOnly()
	if !caller.IsAdmin() && !point {
		visible, err := s.visibleParticipations(ctx, caller, ids)
		if err != nil {
			return nil, err
		}
		ids = slices.Collect(maps.Keys(visible))
	}
	if len(ids) == 0 {
		return map[string]*Participant{}, nil
	}
	found, err := findByID(ctx, s, s.participants, ids, nil, point, func(p *Participant) string { return p.ID })
	if err != nil {
		return nil, err
	}
	if !caller.IsAdmin() && point {
		if err := s.keepVisible(ctx, caller, found); err != nil {
			return nil, err
		}
	}
	for id, p := range found {
		found[id] = participantFor(caller, p)
	}
	return found, nil
}

// keepVisible removes from found the participants the caller may not see,
// reading their referrals: a participant is visible when a referral in the
// caller's scope lists it, as visibleParticipations' query has it.
func (s *Store) keepVisible(ctx context.Context, c Caller, found map[string]*Participant) error {
	var referralIDs []string
	for _, p := range found {
		referralIDs = append(referralIDs, p.ReferralID)
	}
	refs, err := findByID(ctx, s, s.referrals, referralIDs, referralScope(c), s.idOnly(),
		func(r *Referral) string { return r.ID })
	if err != nil {
		return err
	}
	for id, p := range found {
		r := refs[p.ReferralID]
		if r == nil || !inReferralScope(c, r) || !slices.ContainsFunc(r.Participation, func(e Participation) bool { return e.ParticipantID == id }) {
			delete(found, id)
		}
	}
	return nil
}

// visibleParticipations returns the participations of the given
// participants on referrals the caller sees, keyed by participant id: the
// participation lists of the referrals that match the caller's scope.
func (s *Store) visibleParticipations(ctx context.Context, c Caller, participantIDs []string) (map[string]Participation, error) {
	filter := and(bson.D{{Key: "participation.participantId", Value: bson.D{{Key: "$in", Value: participantIDs}}}}, referralScope(c))
	opts := options.Find().SetProjection(bson.D{{Key: "participation", Value: 1}}).SetBatchSize(batchSizeFor(len(participantIDs)))
	cur, err := s.referrals.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find referrals by participant: %w", err)
	}
	var refs []Referral
	if err := cur.All(ctx, &refs); err != nil {
		return nil, fmt.Errorf("read referrals by participant: %w", err)
	}
	asked := make(map[string]bool, len(participantIDs))
	for _, id := range participantIDs {
		asked[id] = true
	}
	out := map[string]Participation{}
	for _, r := range refs {
		for _, p := range r.Participation {
			if asked[p.ParticipantID] {
				out[p.ParticipantID] = p
			}
		}
	}
	return out, nil
}

// expectedParticipantsPerReferral sizes the first batch of
// ParticipantsByReferral so a page's participants arrive in one round trip.
const expectedParticipantsPerReferral = 4

// ParticipantsByReferral returns the participants of each given referral
// the caller may see, oldest first, keyed by referral id; a referral
// without any, or invisible, is absent. For a partner it first reads which
// of the referrals it sees, with its scope in that query (see ParticipantsOf
// for referrals already read). Where the store indexes only _id, it reads
// the referrals and then the participants their participation lists name,
// all by _id.
func (s *Store) ParticipantsByReferral(ctx context.Context, referralIDs []string) (map[string][]*Participant, error) {
	if CallerFrom(ctx).IsAdmin() && !s.idOnly() {
		return s.participantsOfReferrals(ctx, referralIDs)
	}
	visible, err := s.ReferralsByID(ctx, referralIDs)
	if err != nil {
		return nil, err
	}
	refs := slices.Collect(maps.Values(visible))
	if s.idOnly() {
		return s.participantsListed(ctx, refs)
	}
	return s.ParticipantsOf(ctx, refs)
}

// ParticipantsOf returns the participants of referrals the caller has read
// from the store, as ParticipantsByReferral does, in one query on every
// store (a page's participants, in the same command whatever the page's
// size): each referral's participation list tells whether the caller sees
// it, so the visibility check the read made is not repeated.
func (s *Store) ParticipantsOf(ctx context.Context, refs []*Referral) (map[string][]*Participant, error) {
	caller := CallerFrom(ctx)
	ids := make([]string, 0, len(refs))
	for _, r := range refs {
		if inReferralScope(caller, r) {
			ids = append(ids, r.ID)
		}
	}
	return s.participantsOfReferrals(ctx, ids)
}

// participantsListed reads, each by _id, the participants that the
// participation lists of refs name, which the caller must see; it returns
// them as participantsOfReferrals does. A participant whose invitation is
// still being written is not listed yet, and not returned. A referral
// without a participation list was written around the API (imported):
// its participants are found by referralId, which reads the collection.
func (s *Store) participantsListed(ctx context.Context, refs []*Referral) (map[string][]*Participant, error) {
	var listed, unlisted []string
	for _, r := range refs {
		if r.Participation == nil {
			unlisted = append(unlisted, r.ID)
		}
		for _, e := range r.Participation {
			listed = append(listed, e.ParticipantID)
		}
	}
	out, err := s.participantsOfReferrals(ctx, unlisted)
	if err != nil {
		return nil, err
	}
	found, err := findByID(ctx, s, s.participants, listed, nil, true, func(p *Participant) string { return p.ID })
	if err != nil {
		return nil, err
	}
	caller := CallerFrom(ctx)
	for _, r := range refs {
		for _, e := range r.Participation {
			if p := found[e.ParticipantID]; p != nil && p.ReferralID == r.ID {
				out[r.ID] = append(out[r.ID], participantFor(caller, p))
			}
		}
		slices.SortFunc(out[r.ID], func(a, b *Participant) int {
			return cmp.Or(a.CreatedDateTime.Compare(b.CreatedDateTime), strings.Compare(a.ID, b.ID))
		})
	}
	return out, nil
}

// participantsOfReferrals reads the participants of the given referrals, as
// the caller may see them; the caller must see the referrals.
func (s *Store) participantsOfReferrals(ctx context.Context, referralIDs []string) (map[string][]*Participant, error) {
	out := make(map[string][]*Participant, len(referralIDs))
	if len(referralIDs) == 0 {
		return out, nil
	}
	filter := bson.D{{Key: "referralId", Value: bson.D{{Key: "$in", Value: referralIDs}}}}
	var docs []*Participant
	done, err := s.planned(ctx, s.participants, "by referral", func(t *sqlplan.Table, db *sql.DB) error {
		raws, err := t.Documents(ctx, db, filter, sqlplan.Order{Path: "createdDateTime"})
		if err == nil {
			docs, err = decodeAll[Participant](raws)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !done {
		opts := options.Find().
			SetSort(bson.D{{Key: "createdDateTime", Value: 1}, {Key: "_id", Value: 1}}).
			SetBatchSize(batchSizeFor(expectedParticipantsPerReferral * len(referralIDs)))
		cur, err := s.participants.Find(ctx, filter, opts)
		if err != nil {
			return nil, fmt.Errorf("find participants by referral: %w", err)
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("read participants by referral: %w", err)
		}
	}
	caller := CallerFrom(ctx)
	for _, p := range docs {
		out[p.ReferralID] = append(out[p.ReferralID], participantFor(caller, p))
	}
	return out, nil
}

// effectiveStatusIn matches the participants whose status at now (see
// EffectiveStatus) is one of statuses.
func effectiveStatusIn(statuses []ParticipantStatus, now time.Time) bson.E {
	stored := func(st ParticipantStatus) bson.E {
		return bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: storedForms([]ParticipantStatus{st}, participantStatusPositions)}}}
	}
	var others []ParticipantStatus
	var alts bson.A
	for _, st := range statuses {
		switch st {
		case ParticipantInvited: // and not yet expired
			alts = append(alts, bson.D{stored(ParticipantInvited), {Key: "$or", Value: bson.A{
				bson.D{{Key: "expirationDateTime", Value: nil}},
				bson.D{{Key: "expirationDateTime", Value: bson.D{{Key: "$gt", Value: now}}}},
			}}})
		case ParticipantExpired: // or invited and past its expiration
			alts = append(alts, bson.D{stored(ParticipantExpired)},
				bson.D{stored(ParticipantInvited), {Key: "expirationDateTime", Value: bson.D{{Key: "$lte", Value: now}}}})
		default:
			others = append(others, st)
		}
	}
	if len(others) > 0 {
		alts = append(alts, bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: storedForms(others, participantStatusPositions)}}}})
	}
	return bson.E{Key: "$or", Value: alts}
}

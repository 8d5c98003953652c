package storage

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ParticipantFilter selects participant records; all given parts must hold.
type ParticipantFilter struct {
	OrganizationID *string
	Status         []ParticipantStatus
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
	filter, err := f.query(ctx)
	if err != nil {
		return nil, err
	}
	p, err := pageQuery[Participant]{
		coll: s.participants, filter: filter, order: participantOrder, args: args,
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
	filter, err := f.query(ctx)
	if err != nil {
		return 0, err
	}
	n, err := s.participants.CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("count participants: %w", err)
	}
	return int(n), nil
}

// query matches f within what the caller may list: a partner lists its
// own organization's participant records.
func (f *ParticipantFilter) query(ctx context.Context) (bson.D, error) {
	q := bson.D{}
	if c := CallerFrom(ctx); !c.IsAdmin() {
		q = append(q, bson.E{Key: "organizationId", Value: c.OrganizationID})
	}
	if f == nil {
		return q, nil
	}
	if err := checkEnums("filter.status", f.Status, participantStatusPositions); err != nil {
		return nil, err
	}
	if f.OrganizationID != nil {
		q = append(q, bson.E{Key: "organizationId", Value: *f.OrganizationID})
	}
	if f.Status != nil {
		q = append(q, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: storedForms(f.Status, participantStatusPositions)}}})
	}
	return q, nil
}

// ParticipantsByID returns the participants with the given ids that the
// caller may see (those of referrals it sees), keyed by id; unknown and
// invisible ids are absent alike.
func (s *Store) ParticipantsByID(ctx context.Context, ids []string) (map[string]*Participant, error) {
	found, err := findByKey(ctx, s.participants, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, len(ids),
		func(p *Participant) string { return p.ID })
	if err != nil || CallerFrom(ctx).IsAdmin() {
		return found, err
	}
	var refIDs []string
	for _, p := range found {
		refIDs = append(refIDs, p.ReferralID)
	}
	visible, err := s.ReferralsByID(ctx, refIDs)
	if err != nil {
		return nil, err
	}
	for id, p := range found {
		if visible[p.ReferralID] == nil {
			delete(found, id)
		} else {
			found[id] = participantFor(CallerFrom(ctx), p)
		}
	}
	return found, nil
}

// expectedParticipantsPerReferral sizes the first batch of
// ParticipantsByReferral so a page's participants arrive in one round trip.
const expectedParticipantsPerReferral = 4

// ParticipantsByReferral returns the participants of each given referral,
// oldest first, keyed by referral id; a referral without any is absent.
func (s *Store) ParticipantsByReferral(ctx context.Context, referralIDs []string) (map[string][]*Participant, error) {
	opts := options.Find().
		SetSort(bson.D{{Key: "createdDateTime", Value: 1}, {Key: "_id", Value: 1}}).
		SetBatchSize(batchSizeFor(expectedParticipantsPerReferral * len(referralIDs)))
	cur, err := s.participants.Find(ctx, bson.D{{Key: "referralId", Value: bson.D{{Key: "$in", Value: referralIDs}}}}, opts)
	if err != nil {
		return nil, fmt.Errorf("find participants by referral: %w", err)
	}
	var docs []*Participant
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("read participants by referral: %w", err)
	}
	caller := CallerFrom(ctx)
	if !caller.IsAdmin() {
		visible, err := s.ReferralsByID(ctx, referralIDs)
		if err != nil {
			return nil, err
		}
		docs = slices.DeleteFunc(docs, func(p *Participant) bool { return visible[p.ReferralID] == nil })
	}
	out := make(map[string][]*Participant, len(referralIDs))
	for _, p := range docs {
		out[p.ReferralID] = append(out[p.ReferralID], participantFor(caller, p))
	}
	return out, nil
}

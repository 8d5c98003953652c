package storage

import (
	"context"
	"fmt"

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
// first. Bad sizes and cursors are CodeBadUserInput errors.
func (s *Store) Participants(ctx context.Context, f *ParticipantFilter, args PageArgs) (*ParticipantPage, error) {
	p, err := pageQuery[Participant]{
		coll: s.participants, filter: f.query(), order: participantOrder, args: args,
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
	n, err := s.participants.CountDocuments(ctx, f.query())
	if err != nil {
		return 0, fmt.Errorf("count participants: %w", err)
	}
	return int(n), nil
}

func (f *ParticipantFilter) query() bson.D {
	q := bson.D{}
	if f == nil {
		return q
	}
	if f.OrganizationID != nil {
		q = append(q, bson.E{Key: "organizationId", Value: *f.OrganizationID})
	}
	if f.Status != nil {
		q = append(q, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: storedForms(f.Status, participantStatusPositions)}}})
	}
	return q
}

// ParticipantsByID returns the participants with the given ids, keyed by
// id; unknown ids are absent.
func (s *Store) ParticipantsByID(ctx context.Context, ids []string) (map[string]*Participant, error) {
	return findByKey(ctx, s.participants, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, len(ids),
		func(p *Participant) string { return p.ID })
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
	out := make(map[string][]*Participant, len(referralIDs))
	for _, p := range docs {
		out[p.ReferralID] = append(out[p.ReferralID], p)
	}
	return out, nil
}

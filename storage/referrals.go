package storage

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ReferralOrderField is a field referrals can be sorted by; its value is the
// document path.
type ReferralOrderField string

// The referral sort fields.
const (
	OrderByCreatedDateTime ReferralOrderField = "createdDateTime"
	OrderByUpdatedDateTime ReferralOrderField = "updatedDateTime"
	OrderByClosingDate     ReferralOrderField = "details.closingDate"
	OrderByDealValue       ReferralOrderField = "details.dealValueCents"
	OrderByCustomerName    ReferralOrderField = "customerProfile.name"
)

// OrderDirection is ascending or descending.
type OrderDirection string

// The sort directions.
const (
	Ascending  OrderDirection = "ASC"
	Descending OrderDirection = "DESC"
)

var orderDirections = []OrderDirection{Ascending, Descending}

// ReferralOrder is a sort order of referrals; ties are broken by id.
type ReferralOrder struct {
	Field     ReferralOrderField
	Direction *OrderDirection
}

// referralSortKeys reads each sort field's value from a decoded referral,
// for the cursor. A nil result means null or missing.
var referralSortKeys = map[ReferralOrderField]func(*Referral) any{
	OrderByCreatedDateTime: func(r *Referral) any { return r.CreatedDateTime },
	OrderByUpdatedDateTime: func(r *Referral) any { return r.UpdatedDateTime },
	OrderByClosingDate: func(r *Referral) any {
		if r.Details == nil || r.Details.ClosingDate == nil {
			return nil
		}
		return *r.Details.ClosingDate
	},
	OrderByDealValue: func(r *Referral) any {
		if r.Details == nil || r.Details.DealValue == nil {
			return nil
		}
		return *r.Details.DealValue
	},
	OrderByCustomerName: func(r *Referral) any {
		if r.CustomerProfile == nil {
			return nil
		}
		return r.CustomerProfile.Name
	},
}

var referralSortFields = []string{
	string(OrderByCreatedDateTime), string(OrderByUpdatedDateTime), string(OrderByClosingDate),
	string(OrderByDealValue), string(OrderByCustomerName),
}

// ReferralPage is one page of referrals.
type ReferralPage struct {
	Edges    []*ReferralEdge
	PageInfo PageInfo
	// query is what chose the page, so that its count (CountPage) is of
	// the same query, built once: a participant status or expiration
	// filter reads the participants to build it.
	query bson.D
}

// ReferralEdge is a referral with its cursor.
type ReferralEdge struct {
	Cursor string
	Node   *Referral
}

// Nodes returns the page's referrals.
func (p *ReferralPage) Nodes() []*Referral {
	out := make([]*Referral, len(p.Edges))
	for i, e := range p.Edges {
		out[i] = e.Node
	}
	return out
}

// Referrals returns one page of the referrals matching f in order o
// (newest created first when nil). Bad filters, orders, cursors and sizes
// are CodeBadUserInput errors whose Field locates the bad value.
func (s *Store) Referrals(ctx context.Context, f *ReferralFilter, o *ReferralOrder, args PageArgs) (*ReferralPage, error) {
	filter, err := s.referralQuery(ctx, f)
	if err != nil {
		return nil, err
	}
	order := sortOrder{Field: string(OrderByCreatedDateTime), Desc: true}
	if o != nil {
		if o.Direction != nil {
			if err := checkEnum("order.direction", *o.Direction, orderDirections); err != nil {
				return nil, err
			}
		}
		order = sortOrder{Field: string(o.Field), Desc: o.Direction == nil || *o.Direction == Descending}
	}
	key, ok := referralSortKeys[ReferralOrderField(order.Field)]
	if !ok {
		return nil, badInput("order.field", "unknown field %q", order.Field)
	}
	p, err := pageQuery[Referral]{
		store: s, coll: s.referrals, filter: filter, order: order, args: args,
		key: func(r *Referral) (any, string) { return key(r), r.ID },
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	caller := CallerFrom(ctx)
	out := &ReferralPage{PageInfo: p.info, Edges: make([]*ReferralEdge, 0, len(p.items)), query: filter}
	for i, r := range p.items {
		// The query's scope made it visible; a referral selected by the
		// planner and then read by _id is checked again, since it may have
		// changed in between.
		view, visible := ViewFor(caller, r)
		if !visible {
			continue
		}
		out.Edges = append(out.Edges, &ReferralEdge{Cursor: p.cursors[i], Node: view})
	}
	return out, nil
}

// CountReferrals counts the referrals matching f.
func (s *Store) CountReferrals(ctx context.Context, f *ReferralFilter) (int, error) {
	filter, err := s.referralQuery(ctx, f)
	if err != nil {
		return 0, err
	}
	n, err := s.countDocuments(ctx, s.referrals, filter)
	return int(n), err
}

// CountPage counts the referrals matching the query that chose p (its
// totalCount), without building that query again.
func (s *Store) CountPage(ctx context.Context, p *ReferralPage) (int, error) {
	n, err := s.countDocuments(ctx, s.referrals, p.query)
	return int(n), err
}

// ReferralsByID returns the referrals with the given ids that the caller
// may see, as it may see them, keyed by id; unknown and invisible ids are
// absent alike, so existence does not leak. It is one query, or where the
// store indexes only _id one read by _id per referral, with the caller's
// scope checked on each.
func (s *Store) ReferralsByID(ctx context.Context, ids []string) (map[string]*Referral, error) {
	caller := CallerFrom(ctx)
	found, err := findByID(ctx, s, s.referrals, ids, referralScope(caller), s.idOnly(),
		func(r *Referral) string { return r.ID })
	if err != nil {
		return nil, err
	}
	for id, r := range found {
		view, visible := ViewFor(caller, r)
		if !visible {
			delete(found, id)
			continue
		}
		found[id] = view
	}
	return found, nil
}

// referralQuery is the single place that turns a filter into a MongoDB
// query, ANDed with what the caller may see, so counts and pages are right:
// f is checked, then built, once.
func (s *Store) referralQuery(ctx context.Context, f *ReferralFilter) (bson.D, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	caller := CallerFrom(ctx)
	expiring, err := s.expiringQuery(ctx, f)
	if err != nil {
		return nil, err
	}
	statuses, err := s.participantStatusQuery(ctx, f)
	if err != nil {
		return nil, err
	}
	return and(referralScope(caller), hiddenFieldScope(caller, f), f.query(), expiring, statuses), nil
}

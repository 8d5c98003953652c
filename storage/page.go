package storage

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"referrals/storage/embedded/sqlplan"
)

// Page sizes of every connection.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// PageArgs are the Relay paging arguments: First/After page forward,
// Last/Before page backward.
type PageArgs struct {
	First  *int
	After  *string
	Last   *int
	Before *string
}

// PageInfo tells where a page sits in the whole result.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

// sortOrder is a keyset order: Field (a document path, sorted with MongoDB's
// rules, nulls lowest) then _id in the same direction.
type sortOrder struct {
	Field string
	Desc  bool
}

// cursorScope names the list and order a cursor belongs to, so a cursor of
// one list or order is refused by another instead of silently misplacing
// the page.
func cursorScope(collection string, o sortOrder) string {
	dir := "asc"
	if o.Desc {
		dir = "desc"
	}
	return collection + " by " + o.Field + " " + dir
}

// cursor is the keyset position of one item: its sort value and _id. T says
// which BSON type the value had: "d" date (N in ms), "n" integer, "s"
// string (S), "0" null or missing. Order is the cursorScope.
type cursor struct {
	Order string `json:"o"`
	T     string `json:"t"`
	N     int64  `json:"n,omitempty"`
	S     string `json:"s,omitempty"`
	ID    string `json:"i"`
}

func encodeCursor(scope string, value any, id string) string {
	c := cursor{Order: scope, ID: id, T: "0"}
	switch v := value.(type) {
	case time.Time:
		c.T, c.N = "d", v.UnixMilli()
	case Money:
		c.T, c.N = "n", int64(v)
	case string:
		c.T, c.S = "s", v
	}
	b, _ := json.Marshal(c) // cannot fail: plain fields
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the sort value and id of a cursor made for scope.
// field names the cursor ("after" or "before") in errors.
func decodeCursor(scope, field, s string) (value any, id string, err error) {
	invalid := badInput(field, "not a cursor of this list; pass a cursor from this query's pageInfo or edges")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, "", invalid
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return nil, "", invalid
	}
	if c.Order != scope {
		return nil, "", badInput(field, "the cursor was made for another list or order (%s); page with the query and order it came from", c.Order)
	}
	switch c.T {
	case "d":
		return time.UnixMilli(c.N).UTC(), c.ID, nil
	case "n":
		return c.N, c.ID, nil
	case "s":
		return c.S, c.ID, nil
	case "0":
		return nil, c.ID, nil
	}
	return nil, "", invalid
}

// afterKey matches the documents that come after (value, id) when sorting
// by field then _id, descending when desc. MongoDB sorts null and missing
// values below all others, and comparison operators never match null, so
// the null cases are spelled out.
func afterKey(field string, desc bool, value any, id string) bson.D {
	cmp := "$gt"
	if desc {
		cmp = "$lt"
	}
	idAfter := bson.E{Key: "_id", Value: bson.D{{Key: cmp, Value: id}}}
	isNull := bson.E{Key: field, Value: nil}
	switch {
	case value == nil && !desc:
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{isNull, idAfter},
			bson.D{{Key: field, Value: bson.D{{Key: "$ne", Value: nil}}}},
		}}}
	case value == nil && desc:
		return bson.D{isNull, idAfter}
	}
	or := bson.A{
		bson.D{{Key: field, Value: bson.D{{Key: cmp, Value: value}}}},
		bson.D{{Key: field, Value: value}, idAfter},
	}
	if desc {
		or = append(or, bson.D{isNull})
	}
	return bson.D{{Key: "$or", Value: or}}
}

// pageQuery is one page request against a collection.
type pageQuery[T any] struct {
	store  *Store
	coll   *mongo.Collection
	filter bson.D
	order  sortOrder
	args   PageArgs
	// key returns the item's sort value (time.Time, Money, string or nil)
	// and its _id.
	key func(*T) (any, string)
}

// page is a page of items with a cursor for each.
type page[T any] struct {
	items   []*T
	cursors []string
	info    PageInfo
}

// run reads one page: n+1 items tell whether more follow.
func (q pageQuery[T]) run(ctx context.Context) (page[T], error) {
	n, backward, err := q.args.size()
	if err != nil {
		return page[T]{}, err
	}
	desc := q.order.Desc != backward
	scope := cursorScope(q.coll.Name(), q.order)
	var after *sqlplan.Position
	if c, field := q.args.cursor(); c != nil {
		value, id, err := decodeCursor(scope, field, *c)
		if err != nil {
			return page[T]{}, err
		}
		after = &sqlplan.Position{Value: value, ID: id}
	}
	items, err := q.find(ctx, desc, after, n+1)
	if err != nil {
		return page[T]{}, err
	}
	more := len(items) > n
	items = items[:min(n, len(items))]
	if backward {
		slices.Reverse(items)
	}
	p := page[T]{items: items, cursors: make([]string, len(items))}
	for i, it := range items {
		v, id := q.key(it)
		p.cursors[i] = encodeCursor(scope, v, id)
	}
	if len(items) > 0 {
		p.info.StartCursor, p.info.EndCursor = &p.cursors[0], &p.cursors[len(items)-1]
	}
	if backward {
		p.info.HasPreviousPage, p.info.HasNextPage = more, q.args.Before != nil
	} else {
		p.info.HasNextPage, p.info.HasPreviousPage = more, q.args.After != nil
	}
	return p, nil
}

// find reads the first limit items matching the filter in the order
// (descending when desc), after the position if one is given: with the
// planner's SQL where there is one, else with one find. The
// limit is negative to ask for a single batch: the server then closes the
// cursor at once (FerretDB otherwise keeps it open for a getMore).
func (q pageQuery[T]) find(ctx context.Context, desc bool, after *sqlplan.Position, limit int) ([]*T, error) {
	var items []*T
	done, err := q.store.planned(ctx, q.coll, "page", func(t *sqlplan.Table, db *sql.DB) error {
		docs, err := t.Page(ctx, db, q.filter, sqlplan.Order{Path: q.order.Field, Desc: desc}, after, limit)
		if err != nil {
			return err
		}
		items, err = decodeAll[T](docs)
		return err
	})
	if done || err != nil {
		return items, err
	}
	filter := q.filter
	if after != nil {
		filter = and(filter, afterKey(q.order.Field, desc, after.Value, after.ID))
	}
	dir := 1
	if desc {
		dir = -1
	}
	opts := options.Find().
		SetSort(bson.D{{Key: q.order.Field, Value: dir}, {Key: "_id", Value: dir}}).
		SetLimit(-int64(limit))
	cur, err := q.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find %s page: %w", q.coll.Name(), err)
	}
	if err := cur.All(ctx, &items); err != nil {
		return nil, fmt.Errorf("read %s page: %w", q.coll.Name(), err)
	}
	return items, nil
}

// size validates the arguments and returns the page size and direction.
func (a PageArgs) size() (n int, backward bool, err error) {
	if a.First != nil && a.Last != nil {
		return 0, false, Errorf(CodeBadUserInput, "first and last cannot be used together: page forward with first/after or backward with last/before")
	}
	if (a.First != nil || a.After != nil) && (a.Last != nil || a.Before != nil) {
		return 0, false, Errorf(CodeBadUserInput, "forward (first/after) and backward (last/before) arguments cannot be mixed")
	}
	backward = a.Last != nil || a.Before != nil
	n = DefaultPageSize
	field, given := "first", a.First
	if backward {
		field, given = "last", a.Last
	}
	if given != nil {
		n = *given
	}
	if n < 0 || n > MaxPageSize {
		return 0, false, badInput(field, "must be between 0 and %d, got %d", MaxPageSize, n)
	}
	return n, backward, nil
}

// cursor returns the cursor argument given, if any, and its name.
func (a PageArgs) cursor() (*string, string) {
	if a.Before != nil {
		return a.Before, "before"
	}
	return a.After, "after"
}

// and joins conditions with $and, leaving out empty ones.
func and(conds ...bson.D) bson.D {
	var all bson.A
	for _, c := range conds {
		if len(c) > 0 {
			all = append(all, c)
		}
	}
	switch len(all) {
	case 0:
		return bson.D{}
	case 1:
		return all[0].(bson.D)
	}
	return bson.D{{Key: "$and", Value: all}}
}

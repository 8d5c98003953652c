package sqlplan

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"
)

// Order is a keyset order: the value at Path (MongoDB's order: null and
// missing lowest), then _id, both descending when Desc.
type Order struct {
	Path string
	Desc bool
}

// Position is a place in an Order: after the document with this sort value
// (nil for null or missing) and _id.
type Position struct {
	Value any
	ID    string
}

// Page returns the first limit documents of t matching filter in order o,
// after the position when one is given, decoded from the same read (see
// decode).
//
// A position splits the rest of the order into at most two ranges, each
// of which SQLite walks on the index of (o.Path, _id) from where it
// starts ("x <= v AND (x < v OR id < i)" seeks; an OR with the nulls,
// or a row-value comparison, would scan from the top): the values past
// v, then the nulls, which sort lowest.
func (t *Table) Page(ctx context.Context, db *sql.DB, filter bson.D, o Order, after *Position, limit int) ([]bson.Raw, error) {
	where, args, err := t.Where(filter)
	if err != nil {
		return nil, err
	}
	f, ok := t.Fields[o.Path]
	if !ok || f.Array != "" {
		return nil, unsupported("order by %q", o.Path)
	}
	x, id := Expr(o.Path), Expr("_id")
	dir, past, idPast := "ASC", ">", ">"
	if o.Desc {
		dir, past, idPast = "DESC", "<", "<"
	}
	type part struct {
		cond string
		args []any
	}
	parts := []part{{cond: "1"}}
	if after != nil {
		b := builder{t: t}
		switch {
		case after.Value == nil && !o.Desc:
			parts = []part{{cond: x + " IS NULL AND " + id + " > ?", args: []any{after.ID}}, {cond: x + " IS NOT NULL"}}
		case after.Value == nil:
			parts = []part{{cond: x + " IS NULL AND " + id + " < ?", args: []any{after.ID}}}
		default:
			if _, err := b.arg(f, after.Value); err != nil {
				return nil, err
			}
			v := b.args[0]
			seek := part{cond: fmt.Sprintf("%s %s= ? AND (%s %s ? OR %s %s ?)", x, past, x, past, id, idPast), args: []any{v, v, after.ID}}
			parts = []part{seek}
			if o.Desc {
				parts = append(parts, part{cond: x + " IS NULL"})
			}
		}
	}
	var docs []bson.Raw
	for _, p := range parts {
		if len(docs) >= limit {
			break
		}
		q := fmt.Sprintf("SELECT _ferretdb_sjson FROM %s WHERE %s AND %s ORDER BY %s %s, %s %s LIMIT %d",
			Quote(t.Name), where, p.cond, x, dir, id, dir, limit-len(docs))
		if t.From(filter) != Quote(t.Name) {
			// The page's ids from the covering index alone (SQLite keeps
			// only the first LIMIT while it sorts), then their documents.
			q = fmt.Sprintf("SELECT _ferretdb_sjson FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s AND %s ORDER BY %s %s, %s %s LIMIT %d) ORDER BY %s %s, %s %s",
				Quote(t.Name), id, id, t.From(filter), where, p.cond, x, dir, id, dir, limit-len(docs), x, dir, id, dir)
		}
		got, err := readDocuments(ctx, db, q, append(append([]any{}, args...), p.args...))
		if err != nil {
			return nil, err
		}
		docs = append(docs, got...)
	}
	return docs, nil
}

// Documents returns every document of t matching filter, in order o.
func (t *Table) Documents(ctx context.Context, db *sql.DB, filter bson.D, o Order) ([]bson.Raw, error) {
	where, args, err := t.Where(filter)
	if err != nil {
		return nil, err
	}
	dir := "ASC"
	if o.Desc {
		dir = "DESC"
	}
	q := fmt.Sprintf("SELECT _ferretdb_sjson FROM %s WHERE %s ORDER BY %s %s, %s %s", Quote(t.Name), where, Expr(o.Path), dir, Expr("_id"), dir)
	return readDocuments(ctx, db, q, args)
}

// readDocuments runs q, which selects _ferretdb_sjson, and decodes the
// documents read, spread over the processors: decoding is most of the cost
// of a page or an export.
func readDocuments(ctx context.Context, db *sql.DB, q string, args []any) ([]bson.Raw, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var stored [][]byte
	for rows.Next() {
		var sjson []byte
		if err := rows.Scan(&sjson); err != nil {
			return nil, err
		}
		stored = append(stored, sjson)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]bson.Raw, len(stored))
	err = Parallel(len(stored), func(i int) (err error) {
		out[i], err = decode(stored[i])
		return err
	})
	return out, err
}

// Parallel calls f(i) for every i below n, in chunks spread over the
// processors, and returns the first error.
func Parallel(n int, f func(i int) error) error {
	const minChunk = 16 // below this a goroutine costs more than it saves
	chunks := min(runtime.GOMAXPROCS(0), (n+minChunk-1)/minChunk)
	if chunks <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	var g errgroup.Group
	size := (n + chunks - 1) / chunks
	for from := 0; from < n; from += size {
		g.Go(func() error {
			for i := from; i < min(from+size, n); i++ {
				if err := f(i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// Count returns how many documents of t match filter.
func (t *Table) Count(ctx context.Context, db *sql.DB, filter bson.D) (int64, error) {
	where, args, err := t.Where(filter)
	if err != nil {
		return 0, err
	}
	var n int64
	q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", t.From(filter), where)
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	return n, nil
}

// Strings returns the string values at the scalar path of the documents
// matching filter, at most limit (no bound when limit is 0), in no order;
// null and missing values are left out.
func (t *Table) Strings(ctx context.Context, db *sql.DB, path string, filter bson.D, limit int) ([]string, error) {
	where, args, err := t.Where(filter)
	if err != nil {
		return nil, err
	}
	if f, ok := t.Fields[path]; !ok || f.Array != "" || f.Type != String {
		return nil, unsupported("read strings at %q", path)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s AND %s IS NOT NULL", Expr(path), Quote(t.Name), where, Expr(path))
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	return QueryStrings(ctx, db, q, args...)
}

// QueryStrings runs q, which selects one text column, and returns its values.
func QueryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

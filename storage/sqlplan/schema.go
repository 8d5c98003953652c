package sqlplan

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Index is an SQLite index the planner wants on a table: the values at
// these paths ("_id" included), in order.
type Index []string

// IndexName names ix on t: FerretDB names its own indexes
// "<table>_<index name>" after MongoDB names, which have no "_q_".
func (t *Table) IndexName(ix Index) string {
	return t.Name + "_q_" + strings.ReplaceAll(strings.Join(ix, "_"), ".", "")
}

// sideTableVersion names the side table's triggers: a change of the
// element paths (or of what the triggers write) takes a new version, whose
// triggers are created and the side table refilled (the next version must
// also drop the triggers of this one).
const sideTableVersion = "v1"

// Prepare creates, on db (a connection to FerretDB's SQLite file that may
// write), the side table of t's array paths with the triggers that keep it
// exact, and the indexes. It is idempotent; a side table is filled from
// the documents once, when its triggers are created, in the same
// transaction.
func (t *Table) Prepare(ctx context.Context, db *sql.DB, indexes []Index) error {
	if t.hasArrays() {
		if err := t.prepareSideTable(ctx, db); err != nil {
			return err
		}
	}
	for _, ix := range indexes {
		exprs := make([]string, len(ix))
		for i, p := range ix {
			exprs[i] = Expr(p)
		}
		q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)", Quote(t.IndexName(ix)), Quote(t.Name), strings.Join(exprs, ", "))
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index %s of %s: %w", strings.Join(ix, ", "), t.Name, err)
		}
	}
	return nil
}

func (t *Table) hasArrays() bool {
	for _, f := range t.Fields {
		if f.Array != "" {
			return true
		}
	}
	return false
}

func (t *Table) trigger(event string) string {
	return t.SideTable() + "_" + sideTableVersion + "_" + event
}

func (t *Table) prepareSideTable(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var n int
	err = conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?`, t.trigger("insert")).Scan(&n)
	if err != nil || n > 0 {
		return err
	}
	// BEGIN IMMEDIATE takes the write lock first, so that no write of
	// FerretDB falls between filling the table and creating the triggers.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("side table of %s: %w", t.Name, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // after COMMIT there is nothing to undo
	for _, q := range t.sideTableSQL() {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("side table of %s: %w\n%s", t.Name, err, q)
		}
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// sideTableSQL is the statements that (re)create the side table of t, fill
// it from every document and create the triggers that keep it exact.
func (t *Table) sideTableSQL() []string {
	side := Quote(t.SideTable())
	stmts := []string{
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (id TEXT NOT NULL, path TEXT NOT NULL, value ANY) STRICT", side),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (path, value, id)", Quote(t.SideTable()+"_values"), side),
		// By id first for the triggers' deletes and for a document's
		// elements of one path (statistics read them per document).
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (id, path, value)", Quote(t.SideTable()+"_ids"), side),
		"DELETE FROM " + side,
	}
	stmts = append(stmts, "INSERT INTO "+side+" (id, path, value) "+t.elementRows("r._ferretdb_sjson", Quote(t.Name)+" AS r"))
	insert := "INSERT INTO " + side + " (id, path, value) " + t.elementRows("NEW._ferretdb_sjson", "") + ";"
	remove := "DELETE FROM " + side + " WHERE id = OLD." + IDExpr + ";"
	stmts = append(stmts,
		fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s BEGIN %s END", Quote(t.trigger("insert")), Quote(t.Name), insert),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s BEGIN %s %s END", Quote(t.trigger("update")), Quote(t.Name), remove, insert),
		fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s BEGIN %s END", Quote(t.trigger("delete")), Quote(t.Name), remove),
	)
	return stmts
}

// elementRows is a SELECT of (id, path, value) for every element value of
// every array path of the document doc (an SQL expression), from the
// given FROM items ("" for none). An array's elements are its values; an
// object is not an array (a path through it reads its field, as MongoDB
// does); a scalar stored where an array belongs is its one value.
func (t *Table) elementRows(doc, from string) string {
	paths := make([]string, 0, len(t.Fields))
	for p, f := range t.Fields {
		if f.Array != "" {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	id := strings.Replace(IDExpr, "_ferretdb_sjson", doc, 1)
	var selects []string
	for _, p := range paths {
		f := t.Fields[p]
		arrayType := fmt.Sprintf("json_type(%s, '$.%s')", doc, f.Array)
		each := fmt.Sprintf("json_each(%s, '$.%s') AS e", doc, f.Array)
		froms := each
		if from != "" {
			froms = from + ", " + each
		}
		if f.Member == "" {
			selects = append(selects, fmt.Sprintf("SELECT %s, '%s', e.value FROM %s WHERE %s <> 'object' AND e.type NOT IN ('object', 'array', 'null')",
				id, p, froms, arrayType))
			continue
		}
		selects = append(selects, fmt.Sprintf("SELECT %s, '%s', e.value->>'$.%s' FROM %s WHERE %s = 'array' AND e.type = 'object' AND e.value->>'$.%s' IS NOT NULL",
			id, p, f.Member, froms, arrayType, f.Member))
		fromObject := ""
		if from != "" {
			fromObject = " FROM " + from
		}
		selects = append(selects, fmt.Sprintf("SELECT %s, '%s', %s->>'$.%s'%s WHERE %s = 'object' AND %s->>'$.%s' IS NOT NULL",
			id, p, doc, p, fromObject, arrayType, doc, p))
	}
	return strings.Join(selects, " UNION ALL ")
}

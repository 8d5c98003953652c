package sqlplan

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
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
// drops the triggers of every other).
const sideTableVersion = "v2"

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

// Drop removes from db what Prepare created for t with these indexes: the
// indexes, the side table and its triggers. A bulk load into t is then
// FerretDB's writes alone, and the next Prepare builds each index in one
// sorted pass and fills the side table in one statement.
func (t *Table) Drop(ctx context.Context, db *sql.DB, indexes []Index) error {
	var stmts []string
	for _, ix := range indexes {
		stmts = append(stmts, "DROP INDEX IF EXISTS "+Quote(t.IndexName(ix)))
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	triggers, err := t.triggers(ctx, conn, "")
	if err != nil {
		return err
	}
	stmts = append(stmts, triggers...)
	stmts = append(stmts, "DROP TABLE IF EXISTS "+Quote(t.SideTable()))
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("drop the planner's schema of %s: %w", t.Name, err)
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
	stale, err := t.triggers(ctx, conn, sideTableVersion)
	if err != nil {
		return fmt.Errorf("side table of %s: %w", t.Name, err)
	}
	for _, q := range append(stale, t.sideTableSQL()...) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("side table of %s: %w\n%s", t.Name, err, q)
		}
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// triggers returns the statements dropping the triggers of t's side table
// but those of version keep ("" for none).
func (t *Table) triggers(ctx context.Context, conn *sql.Conn, keep string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name LIKE ? ESCAPE '\' AND name NOT LIKE ? ESCAPE '\'`,
		t.Name, likePrefix(t.SideTable()+"_"), likePrefix(t.SideTable()+"_"+keep+"_"))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var drops []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		drops = append(drops, "DROP TRIGGER "+Quote(name))
	}
	return drops, rows.Err()
}

// likePrefix is a LIKE pattern (escaped with \) matching what starts with s.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)
	return r.Replace(s) + "%"
}

// sideTableSQL is the statements that (re)create the side table of t, fill
// it from every document and create the triggers that keep it exact. An
// update rewrites a document's elements only when one of its arrays
// changed, so that the many updates that touch no array (a status, notes)
// cost the side table nothing.
func (t *Table) sideTableSQL() []string {
	side := Quote(t.SideTable())
	// Filled before it is indexed: each index is then built in one sorted
	// pass, not by random inserts (a third of the time at 30,000).
	stmts := []string{
		"DROP TABLE IF EXISTS " + side,
		fmt.Sprintf("CREATE TABLE %s (id TEXT NOT NULL, path TEXT NOT NULL, value ANY) STRICT", side),
		// LIMIT keeps SQLite from flattening the subquery, which would
		// parse each document again for every path.
		"INSERT INTO " + side + " (id, path, value) " + t.elementRows(
			fmt.Sprintf("(SELECT jsonb(_ferretdb_sjson) AS j, %s AS id FROM %s LIMIT -1)", IDExpr, Quote(t.Name))),
		fmt.Sprintf("CREATE INDEX %s ON %s (path, value, id)", Quote(t.SideTable()+"_values"), side),
		// By id first for the triggers' deletes and for a document's
		// elements of one path (statistics read them per document).
		fmt.Sprintf("CREATE INDEX %s ON %s (id, path, value)", Quote(t.SideTable()+"_ids"), side),
	}
	insert := "INSERT INTO " + side + " (id, path, value) " + t.elementRows(
		fmt.Sprintf("(SELECT jsonb(NEW._ferretdb_sjson) AS j, %s AS id LIMIT 1)", strings.Replace(IDExpr, "_ferretdb_sjson", "NEW._ferretdb_sjson", 1))) + ";"
	remove := "DELETE FROM " + side + " WHERE id = OLD." + IDExpr + ";"
	var changed []string
	for _, a := range t.arrays() {
		changed = append(changed, fmt.Sprintf("OLD._ferretdb_sjson->'$.%s' IS NOT NEW._ferretdb_sjson->'$.%s'", a, a))
	}
	changed = append(changed, "OLD."+IDExpr+" IS NOT NEW."+IDExpr)
	stmts = append(stmts,
		fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s BEGIN %s END", Quote(t.trigger("insert")), Quote(t.Name), insert),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s WHEN %s BEGIN %s %s END", Quote(t.trigger("update")), Quote(t.Name), strings.Join(changed, " OR "), remove, insert),
		fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s BEGIN %s END", Quote(t.trigger("delete")), Quote(t.Name), remove),
	)
	return stmts
}

// arrays returns the array paths of t's fields, sorted, each once.
func (t *Table) arrays() []string {
	var out []string
	for _, f := range t.Fields {
		if f.Array != "" && !slices.Contains(out, f.Array) {
			out = append(out, f.Array)
		}
	}
	slices.Sort(out)
	return out
}

// elementRows is a SELECT of (id, path, value) for every element value of
// every array path of the documents of docs, a FROM item of rows (j, id):
// a document as JSONB, parsed once for all its paths, and its _id. An
// array's elements are its values; an object is not an array (a path
// through it reads its field, as MongoDB does); a scalar stored where an
// array belongs is its one value.
func (t *Table) elementRows(docs string) string {
	var values, members []string
	for _, p := range slices.Sorted(maps.Keys(t.Fields)) {
		f := t.Fields[p]
		if f.Array == "" {
			continue
		}
		values = append(values, fmt.Sprintf("('%s', '$.%s', %s)", p, f.Array, sqlString(f.Member)))
		if f.Member != "" {
			members = append(members, fmt.Sprintf("('%s', '$.%s', '$.%s')", p, f.Array, p))
		}
	}
	// paths: column1 the field's path, column2 its array's, column3 the
	// member of each element (NULL: the element itself).
	rows := fmt.Sprintf("SELECT d.id, p.column1, CASE WHEN p.column3 IS NULL THEN e.value ELSE e.value->>p.column3 END "+
		"FROM %s AS d, (VALUES %s) AS p, json_each(d.j, p.column2) AS e "+
		"WHERE CASE WHEN p.column3 IS NULL "+
		"THEN json_type(d.j, p.column2) <> 'object' AND e.type NOT IN ('object', 'array', 'null') "+
		"ELSE json_type(d.j, p.column2) = 'array' AND e.type = 'object' AND e.value->>p.column3 IS NOT NULL END",
		docs, strings.Join(values, ", "))
	if len(members) > 0 {
		// A member path through a document (not an array) reads its field.
		rows += fmt.Sprintf(" UNION ALL SELECT d.id, p.column1, d.j->>p.column3 FROM %s AS d, (VALUES %s) AS p "+
			"WHERE json_type(d.j, p.column2) = 'object' AND d.j->>p.column3 IS NOT NULL", docs, strings.Join(members, ", "))
	}
	return rows
}

// sqlString is s as an SQL string literal, NULL when empty.
func sqlString(s string) string {
	if s == "" {
		return "NULL"
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	"referrals/storage/embedded/sqlplan"
)

// Planner answers selections on the embedded store — which documents
// match, in which order, how many, and groupings — with SQL over
// FerretDB's SQLite tables (see sqlplan), translated from the same BSON
// the queries send to MongoDB. The documents selected are then read by
// _id through the driver, and all writes go through the driver, so
// FerretDB keeps owning the files.
type Planner struct {
	db *sql.DB // read-only connections
	// selections counts what the planner answered, as a command monitor
	// counts what the driver sends.
	selections atomic.Int64
	tables     map[string]*sqlplan.Table // by collection
}

// TableSpec is one collection the planner serves: the fields it may
// query, with the one type stored at each, and the indexes it keeps on
// them. Covering, when set, is an index that holds every scalar a count
// or grouping reads.
type TableSpec struct {
	Collection string
	Fields     map[string]sqlplan.Field
	Indexes    []sqlplan.Index
	Covering   sqlplan.Index
}

// fallbacks counts the selections a planner could not translate and left
// to FerretDB, which reads the whole collection for them.
var fallbacks atomic.Int64

// Fallbacks returns how many selections on the embedded store were left
// to FerretDB's own evaluation since the process started (CountFallback).
func Fallbacks() int64 { return fallbacks.Load() }

// CountFallback counts a selection left to FerretDB.
func CountFallback() { fallbacks.Add(1) }

// OpenPlanner readies the SQLite file of database for a planner of specs
// (side tables, triggers, indexes) and opens the connections it reads
// with. The collections must exist.
func (e *Server) OpenPlanner(ctx context.Context, database string, specs []TableSpec) (*Planner, error) {
	p := &Planner{tables: map[string]*sqlplan.Table{}}
	err := e.eachTable(ctx, database, specs, func(w *sql.DB, t *sqlplan.Table, spec TableSpec) error {
		p.tables[spec.Collection] = t
		return t.Prepare(ctx, w, spec.Indexes)
	})
	if err != nil {
		return nil, err
	}
	file := e.File(database)
	// Readers only: query_only refuses any write through them. In WAL mode
	// each query sees every transaction committed before it began, so a
	// write FerretDB acknowledged is seen by the next selection.
	p.db, err = sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	return p, nil
}

// DropPlanner removes what OpenPlanner made in database's file (indexes,
// side tables, triggers), for a bulk load: OpenPlanner then builds them
// in one sorted pass each rather than row by row.
func (e *Server) DropPlanner(ctx context.Context, database string, specs []TableSpec) error {
	return e.eachTable(ctx, database, specs, func(w *sql.DB, t *sqlplan.Table, spec TableSpec) error {
		return t.Drop(ctx, w, spec.Indexes)
	})
}

// eachTable calls f for the table of each of specs in database, with a
// connection that may write.
func (e *Server) eachTable(ctx context.Context, database string, specs []TableSpec, f func(w *sql.DB, t *sqlplan.Table, spec TableSpec) error) error {
	if err := sqlplan.Register(); err != nil {
		return err
	}
	file := e.File(database)
	// A larger page cache than SQLite's 2 MB default for this connection:
	// it builds the indexes and fills the side tables.
	w, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=cache_size(-65536)")
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer w.Close()
	for _, spec := range specs {
		var table string
		err := w.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, spec.Collection).Scan(&table)
		if err != nil {
			return fmt.Errorf("find the table of %s: %w", spec.Collection, err)
		}
		t := &sqlplan.Table{Name: table, Fields: spec.Fields, Covering: spec.Covering}
		if err := f(w, t, spec); err != nil {
			return err
		}
	}
	return nil
}

// Table returns the planner's table of collection, nil when it does not
// serve it.
func (p *Planner) Table(collection string) *sqlplan.Table { return p.tables[collection] }

// Selected counts a selection the planner is asked for (Selections).
func (p *Planner) Selected() { p.selections.Add(1) }

// DB returns the read-only connections selections run on.
func (p *Planner) DB() *sql.DB { return p.db }

// Selections returns how many selections the planner was asked for: the
// SQL counterpart of the MongoDB commands a command monitor counts.
func (p *Planner) Selections() int64 { return p.selections.Load() }

// Close closes the planner's connections.
func (p *Planner) Close() { _ = p.db.Close() }

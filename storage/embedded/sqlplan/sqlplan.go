// Package sqlplan translates the MongoDB filters the storage builds into SQL
// over the SQLite tables of the embedded FerretDB (v1, SQLite handler),
// whose own query path hands SQLite nothing but {_id: v} and decodes every
// other document it considers.
//
// FerretDB keeps a collection in one table whose column _ferretdb_sjson
// holds each document as JSON (dates as int64 milliseconds, types in a
// "$s" schema beside the values). A Table names such a table and the
// document paths the planner may query, each with the one type the
// storage writes there; a path through an array reads a side table with
// one row per array element, kept exact by SQLite triggers inside the
// transaction of each of FerretDB's writes (see Table.SideTableSQL).
//
// Whatever it cannot translate with MongoDB's meaning — an operator or
// path it does not know, a value of another type than the path's — is
// ErrUnsupported, and the caller asks FerretDB instead.
//
// It imports bson and the SQLite driver only (for the regular expression
// function it registers), nothing of this module.
package sqlplan

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrUnsupported wraps every filter the planner cannot translate exactly.
var ErrUnsupported = errors.New("not translatable to SQL")

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// Type is the one type the storage writes at a path.
type Type int

// The types of queried paths.
const (
	// String paths hold strings.
	String Type = iota
	// Date paths hold BSON dates, stored as int64 milliseconds.
	Date
	// Number paths hold integers.
	Number
	// Enum paths hold a name, or an integer position in older data.
	Enum
)

// Field describes one queryable path of a table.
type Field struct {
	Type Type
	// Array, when set, is the path of the array the values sit in, and
	// Member the field of each (object) element that holds the value, or
	// "" when the elements are the values. Such a path is read from the
	// side table, with MongoDB's any-element meaning.
	Array  string
	Member string
}

// Table is one FerretDB table and the paths the planner may query on it.
type Table struct {
	// Name is the SQLite table FerretDB keeps the collection in.
	Name string
	// Fields are the queryable paths; "_id" must be one, as a String.
	Fields map[string]Field
	// Covering, when set, is an index (which Prepare creates) holding _id
	// and every scalar a filter or an order reads. A filtered page or count
	// reads it alone to select (INDEXED BY): left to itself, SQLite walks
	// the order's index and reads each stored document until the page is
	// full — seconds at 100,000 for a value few documents hold — or scans
	// the table for a condition on a column past an index's first.
	Covering Index
}

// From is the FROM item a selection with filter reads t through: the
// covering index when there is one and the filter says anything.
func (t *Table) From(filter bson.D) string {
	if len(t.Covering) == 0 || len(filter) == 0 {
		return Quote(t.Name)
	}
	return Quote(t.Name) + " INDEXED BY " + Quote(t.IndexName(t.Covering))
}

// Quote quotes an SQL identifier.
func Quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// Expr is the SQL value at a scalar document path: the string or number
// there, NULL when it is null or missing. Indexes are made on exactly this
// text, since SQLite uses an expression index only for the same
// expression.
func Expr(path string) string { return "_ferretdb_sjson->>'$." + path + "'" }

// IDExpr is the document's _id, the id the side table keeps. It is the
// last column of the planner's indexes, so that a condition on the side
// table is answered from an index without reading the document.
var IDExpr = Expr("_id")

// SideTable is the name of the side table of array elements of t.
func (t *Table) SideTable() string { return t.Name + "_elements" }

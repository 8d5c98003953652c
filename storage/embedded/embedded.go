// Package embedded is the store the server starts when no MongoDB is
// configured: FerretDB in-process, its data in SQLite files, reached
// through the MongoDB driver like any MongoDB; the SQLite indexes FerretDB
// lacks; and the read planner (with package sqlplan) that answers
// selections with SQL over FerretDB's tables, which FerretDB would answer
// by reading whole collections. It knows nothing of referrals: package
// storage tells it which collections to plan, their fields and indexes.
package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the SQLite driver FerretDB uses, for IndexIDs and the planner
)

// Server is an in-process FerretDB that keeps its data in SQLite files.
// The process reaches it through a Unix socket in a directory only its
// user may enter; it listens on TCP only when asked to.
type Server struct {
	db      *ferretdb.FerretDB
	dir     string
	sockDir string
	exposed bool
	done    chan struct{}
	stop    context.CancelFunc
}

// socketName is the file name of the embedded store's Unix socket. The
// driver takes a host ending in ".sock" for a socket path.
const socketName = "mongodb.sock"

// Start starts FerretDB with its SQLite files in dir. FerretDB has
// no authentication, so by default it listens only on a Unix socket in a
// fresh directory of mode 0700 (FerretDB v1.24's embeddable API offers no
// connection that bypasses a listener). A non-empty listen ("127.0.0.1:27017";
// port 0 picks a free one) also exposes it on that TCP address, to anyone
// who can reach it. It logs through logger at error level only: FerretDB
// warns about routine client commands it does not implement (endSessions on
// every disconnect).
func Start(dir, listen string, logger *slog.Logger) (*Server, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded store directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("embedded store directory: %w", err)
	}
	// A directory of its own rather than one in dir: a socket path must be
	// short (about 100 bytes), and no stale socket of a killed process can
	// be in the way.
	sockDir, err := os.MkdirTemp("", "referrals-store-")
	if err != nil {
		return nil, fmt.Errorf("embedded store socket directory: %w", err)
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: listen, Unix: filepath.Join(sockDir, socketName)},
		Handler:  "sqlite",
		// FerretDB keeps SQLite in WAL mode; with synchronous=NORMAL a
		// commit waits for no disk flush (those come with checkpoints). A
		// crash of the process loses nothing and nothing can corrupt the
		// files; a crash of the machine can lose the last writes before
		// it. On this 2-core machine under load, a sweep of 200 expiries
		// took 10.3 s with a flush per commit and 2.2 s without.
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(normal)",
		Logger:    slog.New(errorsOnly{base: logger.Handler()}),
	})
	if err != nil {
		_ = os.RemoveAll(sockDir)
		return nil, fmt.Errorf("start embedded FerretDB: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e := &Server{db: db, dir: abs, sockDir: sockDir, exposed: listen != "", done: make(chan struct{}), stop: stop}
	go func() {
		defer close(e.done)
		_ = db.Run(ctx) // returns only once ctx is cancelled
	}()
	return e, nil
}

// URI returns the MongoDB URI of the embedded store's Unix socket, for this
// process's own client.
func (e *Server) URI() string {
	return "mongodb://" + url.PathEscape(filepath.Join(e.sockDir, socketName)) + "/"
}

// ExposedURI returns the MongoDB URI of the TCP address the store listens
// on, or "" when it is not exposed.
func (e *Server) ExposedURI() string {
	if !e.exposed {
		return ""
	}
	return e.db.MongoDBURI() // the TCP one when there is a TCP listener
}

// File returns the path of the SQLite file that holds database.
func (e *Server) File(database string) string {
	return filepath.Join(e.dir, database+".sqlite")
}

// Stop closes the listeners and the SQLite files and waits for both.
func (e *Server) Stop() {
	e.stop()
	<-e.done
	_ = os.RemoveAll(e.sockDir)
}

// IndexIDs gives every collection of database an SQLite index on the
// expression FerretDB v1.24 filters by when it pushes `{_id: v}` down
// (`_ferretdb_sjson->'$._id'`). Its own unique index is on
// `_ferretdb_sjson->"_id"`, which SQLite does not recognise as the same
// expression, so without this every read, update and delete by _id scans
// the whole table (about 20 ms per 1,000 referrals here); with it they take
// under a millisecond. FerretDB does not know of the index and needs not:
// dropping a collection drops it with the table. It runs on the SQLite file
// directly, as FerretDB does, with FerretDB's busy timeout.
func (e *Server) IndexIDs(ctx context.Context, database string) error {
	file := e.File(database)
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return fmt.Errorf("list the tables of %s: %w", file, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			_ = rows.Close()
			return fmt.Errorf("list the tables of %s: %w", file, err)
		}
		tables = append(tables, t)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("list the tables of %s: %w", file, err)
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+idLookupIndexSuffix, t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index _id lookups of %s: %w", t, err)
		}
	}
	return nil
}

// idLookupIndexSuffix names the SQLite indexes IndexIDs makes. FerretDB
// names its own "<table>_<index name>", and no index of ours is called
// this.
const idLookupIndexSuffix = "_referrals_id_lookup"

// errorsOnly passes on records of error level and above. It applies
// WithAttrs and WithGroup only to records it passes on: FerretDB adds each
// SQL statement's arguments (whole documents) to its logger before every
// debug call, and a text handler would format them at once, which took 15%
// of the CPU of an insert.
type errorsOnly struct {
	base slog.Handler
	with []func(slog.Handler) slog.Handler
}

func (h errorsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.base.Enabled(ctx, l)
}

func (h errorsOnly) Handle(ctx context.Context, r slog.Record) error {
	out := h.base
	for _, w := range h.with {
		out = w(out)
	}
	return out.Handle(ctx, r)
}

func (h errorsOnly) WithAttrs(a []slog.Attr) slog.Handler {
	return h.then(func(o slog.Handler) slog.Handler { return o.WithAttrs(a) })
}

func (h errorsOnly) WithGroup(n string) slog.Handler {
	return h.then(func(o slog.Handler) slog.Handler { return o.WithGroup(n) })
}

func (h errorsOnly) then(w func(slog.Handler) slog.Handler) errorsOnly {
	return errorsOnly{base: h.base, with: append(h.with[:len(h.with):len(h.with)], w)}
}

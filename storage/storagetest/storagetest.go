// Package storagetest starts the embedded store for the tests of the
// packages above storage: one store a test binary, a fresh database a
// test. It is imported by tests only.
package storagetest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"referrals/storage"
	"referrals/storage/embedded"
	"referrals/storage/embedded/embeddedtest"
)

// Server is the embedded store of one test binary.
type Server struct {
	URI      string
	Embedded *embedded.Server
	Store    *storage.Store // on database "unused"; WithDatabase gives others
	monitor  *event.CommandMonitor
	seq      atomic.Int64
}

// Main starts the embedded store in a temporary directory, connects to it
// (monitor, when not nil, sees every command), hands it to setup, runs the
// tests and stops the store. The binary fails when any selection fell back
// from the embedded read planner to FerretDB: no query of the API does.
func Main(m *testing.M, monitor *event.CommandMonitor, setup func(*Server)) {
	os.Exit(embeddedtest.Run(func(local *embedded.Server) int {
		s := &Server{URI: local.URI(), Embedded: local, monitor: monitor}
		var err error
		s.Store, err = storage.Connect(context.Background(), storage.Options{URI: s.URI, Database: "unused", Monitor: monitor, Embedded: local})
		if err != nil {
			panic(err)
		}
		defer s.Store.Close(context.Background())
		setup(s)
		code := m.Run()
		if n := embedded.Fallbacks(); n > 0 && code == 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d selections fell back from the embedded read planner to FerretDB (run with a debug log to see which)\n", n)
			return 1
		}
		return code
	}))
}

// NewDatabase returns a name no other test of the binary uses.
func (s *Server) NewDatabase() string {
	return fmt.Sprintf("test_%d", s.seq.Add(1))
}

// NewStore returns a prepared store on a fresh database, dropped when the
// test ends. With opts nil it shares the binary's client; otherwise it has
// its own, configured by opts (its URI, database, monitor and embedded
// store are filled in) and closed when the test ends.
func (s *Server) NewStore(t testing.TB, opts *storage.Options) *storage.Store {
	t.Helper()
	ctx := context.Background()
	db := s.NewDatabase()
	store := s.Store.WithDatabase(db)
	if opts != nil {
		o := *opts
		o.URI, o.Database, o.Monitor, o.Embedded = s.URI, db, s.monitor, s.Embedded
		var err error
		if store, err = storage.Connect(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close(context.Background()) })
	}
	t.Cleanup(func() { _ = store.Drop(context.Background()) })
	if err := store.Prepare(ctx); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return store
}

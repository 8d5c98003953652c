package storage

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"referrals/storage/embedded"
	"referrals/storage/embedded/embeddedtest"
)

// testAnchor fixes the dates of demo data in tests.
var testAnchor = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// One embedded store serves the package; each test gets its own database.
var (
	testURI      string
	testEmbedded *embedded.Server
	testStore    *Store
	testDBSeq    atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(embeddedtest.Run(func(local *embedded.Server) int {
		testURI, testEmbedded = local.URI(), local
		var err error
		testStore, err = Connect(context.Background(), Options{URI: testURI, Database: "unused", Embedded: local})
		if err != nil {
			panic(err)
		}
		defer testStore.Close(context.Background())
		code := m.Run()
		// No query the package's tests send is left to FerretDB's own
		// evaluation on the embedded store.
		if n := embedded.Fallbacks(); n > 0 && code == 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d selections fell back from the embedded read planner to FerretDB (run with a debug log to see which)\n", n)
			return 1
		}
		return code
	}))
}

// asAdmin is the test's context with an admin caller, who sees everything.
func asAdmin(t *testing.T) context.Context {
	return WithCaller(t.Context(), Caller{Subject: "test", Role: RoleAdmin})
}

// newTestStore returns a prepared store on a fresh database.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	s := testStore.WithDatabase(fmt.Sprintf("test_%d", testDBSeq.Add(1)))
	t.Cleanup(func() { _ = s.Drop(context.Background()) })
	if err := s.Prepare(asAdmin(t)); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return s
}

// newTestStoreAt is newTestStore with the clock now, on its own client.
func newTestStoreAt(t *testing.T, now func() time.Time) *Store {
	t.Helper()
	return openTestStore(t, Options{Now: now})
}

// openTestStore connects with opts to a fresh database of the embedded
// store on its own client, prepares it, and drops it when the test ends.
func openTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	opts.URI, opts.Embedded = testURI, testEmbedded
	opts.Database = fmt.Sprintf("test_%d", testDBSeq.Add(1))
	s, err := Connect(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Drop(context.Background())
		_ = s.Close(context.Background())
	})
	if err := s.Prepare(asAdmin(t)); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return s
}

// pageForward reads every referral matching f in order, size at a time,
// and returns their ids in the order received.
func pageForward(t *testing.T, s *Store, f *ReferralFilter, order *ReferralOrder, size int) []string {
	t.Helper()
	var ids []string
	args := PageArgs{First: &size}
	for range 1000 {
		p, err := s.Referrals(asAdmin(t), f, order, args)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Nodes() {
			ids = append(ids, r.ID)
		}
		if !p.PageInfo.HasNextPage {
			return ids
		}
		args.After = p.PageInfo.EndCursor
	}
	t.Fatal("paging does not end")
	return nil
}

package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// testAnchor fixes the dates of demo data in tests.
var testAnchor = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// One embedded store serves the package; each test gets its own database.
var (
	testStore *Store
	testDBSeq atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "referrals-storage-test")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	embedded, err := StartEmbedded(dir, "", slog.Default())
	if err != nil {
		panic(err)
	}
	defer embedded.Stop()
	testStore, err = Connect(context.Background(), Options{URI: embedded.URI(), Database: "unused"})
	if err != nil {
		panic(err)
	}
	defer testStore.Close(context.Background())
	return m.Run()
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

package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
)

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
	embedded, err := StartEmbedded(dir, "127.0.0.1:0", slog.Default())
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

// newTestStore returns a prepared store on a fresh database.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	s := testStore.WithDatabase(fmt.Sprintf("test_%d", testDBSeq.Add(1)))
	t.Cleanup(func() { _ = s.Drop(context.Background()) })
	if err := s.Prepare(t.Context()); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return s
}

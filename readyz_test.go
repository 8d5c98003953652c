package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the embedded store's SQLite driver, to break its files
)

// TestReadyzNeedsQueries breaks the embedded store's referrals table under
// a running server: queries fail while the store still answers a ping, and
// /readyz must say so; repaired, it is ready again.
func TestReadyzNeedsQueries(t *testing.T) {
	dataDir := t.TempDir()
	base := startServer(t, "--data-dir", dataDir, "--demo", "3")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "referrals.sqlite")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'referrals'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	rename := func(from, to string) {
		t.Helper()
		if _, err := db.Exec(fmt.Sprintf(`ALTER TABLE %q RENAME TO %q`, from, to)); err != nil {
			t.Fatal(err)
		}
	}

	rename(table, table+"_gone")
	if got := totalCount(t, base); !strings.Contains(got, `"code":"INTERNAL"`) {
		t.Fatalf("a query on the broken store answered %s, want INTERNAL", got)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 {
		t.Errorf("GET /readyz on a store that cannot answer queries = %d %q, want 503", code, body)
	}
	rename(table+"_gone", table)
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("GET /readyz once repaired = %d %q, want 200", code, body)
	}
}

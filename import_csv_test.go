package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// exportCSV exports every referral of base as CSV.
func exportCSV(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	status, body := request(t, ctx, http.MethodGet, base+"/export/referrals", "",
		map[string]string{"Authorization": "Bearer " + adminToken(t), "Accept": "text/csv"})
	if status != http.StatusOK {
		t.Fatalf("export: status %d, body %.300s", status, body)
	}
	return body
}

// TestImportCSVRoundTrip: a CSV export imported into an empty store
// creates every referral, and the new store exports the same CSV bytes
// and the same JSON Lines as the source; the same file again changes
// nothing.
func TestImportCSVRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	source := startServer(t, "--data-dir", t.TempDir(), "--demo", "40", "--jwt-secret", edgeSecret)
	file, lines := exportCSV(t, ctx, source), exportLines(t, ctx, source)
	if !strings.HasPrefix(file, "\uFEFF") || strings.Count(file, "\r\n") < 41 {
		t.Fatalf("the source's CSV export: %.300q", file)
	}
	target := importServer(t)
	res := postImport(t, ctx, target, adminToken(t), "", "text/csv", file)
	if res.status != http.StatusOK || res.count("created") != 40 || res.count("error") != 0 || res.summary["complete"] != true || res.summary["lines"] != 40.0 {
		t.Fatalf("import: status %d, summary %v, body %.1000s; want 40 created", res.status, res.summary, res.body)
	}
	if again := exportCSV(t, ctx, target); again != file {
		t.Fatalf("the CSV export after the import differs:\n got %.2000q\nwant %.2000q", again, file)
	}
	if again := exportLines(t, ctx, target); again != lines {
		t.Fatalf("the JSON Lines export after the import differs:\n got %.2000s\nwant %.2000s", again, lines)
	}
	res = postImport(t, ctx, target, adminToken(t), "", "text/csv", file)
	if res.count("unchanged") != 40 {
		t.Fatalf("the same file again: summary %v, want 40 unchanged", res.summary)
	}
}

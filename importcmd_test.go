package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runImport runs `referrals import args…` and returns its exit status,
// its output and what it wrote to its terminal (or error output).
func runImport(t *testing.T, ctx context.Context, terminal bool, args ...string) (int, string, string) {
	t.Helper()
	var out, progress bytes.Buffer
	status := importCommand(ctx, args, func(string) string { return "" }, &out, &progress, terminal)
	return status, out.String(), progress.String()
}

// TestImportCommand: `referrals import` posts a file to a server on
// loopback with the Content-Type of its extension, prints the records in
// error and the summary, draws a progress bar only on a terminal, and
// exits non-zero when a record failed.
func TestImportCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	source := startServer(t, "--data-dir", t.TempDir(), "--demo", "5", "--jwt-secret", edgeSecret)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	csvFile := write("referrals.csv", exportCSV(t, ctx, source))
	lines := exportLines(t, ctx, source)
	first, _, _ := strings.Cut(lines, "\n")
	bad := editLine(t, first, func(m map[string]any) {
		m["id"] = "bad-1"
		m["customerProfile"].(map[string]any)["address"].(map[string]any)["country"] = "ZZ"
	})
	jsonlFile := write("referrals.jsonl", lines+bad+"\n")
	target := importServer(t)
	token := adminToken(t)

	t.Run("dry run", func(t *testing.T) {
		status, out, progress := runImport(t, ctx, false, "--url", target, "--token", token, "--dry-run", csvFile)
		if status != 0 || out != "dry run, nothing written: 5 created, 0 updated, 0 unchanged, 0 skipped, 0 errors, of 5 lines\n" || progress != "" {
			t.Fatalf("status %d, out %q, progress %q", status, out, progress)
		}
		if got := exportLines(t, ctx, target); got != "" {
			t.Fatalf("a dry run wrote %s", got)
		}
	})

	t.Run("csv", func(t *testing.T) {
		status, out, progress := runImport(t, ctx, false, "--url", target, "--token", token, csvFile)
		if status != 0 || out != "imported: 5 created, 0 updated, 0 unchanged, 0 skipped, 0 errors, of 5 lines\n" || progress != "" {
			t.Fatalf("status %d, out %q, progress %q", status, out, progress)
		}
		if got := exportLines(t, ctx, target); got != lines {
			t.Fatalf("the import gave\n%s\nwant\n%s", got, lines)
		}
	})

	t.Run("a record in error", func(t *testing.T) {
		status, out, progress := runImport(t, ctx, true, "--url", target, "--token", token, jsonlFile)
		want := "line 6 bad-1: BAD_USER_INPUT customerProfile.address.country: \"ZZ\" is not an ISO 3166-1 alpha-2 country code such as \"US\"\n" +
			"imported: 0 created, 0 updated, 5 unchanged, 0 skipped, 1 errors, of 6 lines\n"
		if status != 1 || out != want {
			t.Fatalf("status %d, out %q; want 1, %q", status, out, want)
		}
		if !strings.Contains(progress, "records") || !strings.Contains(progress, "%") {
			t.Errorf("no progress bar on the terminal: %q", progress)
		}
	})

	t.Run("environment", func(t *testing.T) {
		env := map[string]string{"REFERRALS_URL": target, "REFERRALS_TOKEN": token}
		var out, progress bytes.Buffer
		status := importCommand(ctx, []string{csvFile}, func(k string) string { return env[k] }, &out, &progress, false)
		if status != 0 || !strings.HasSuffix(out.String(), "5 unchanged, 0 skipped, 0 errors, of 5 lines\n") {
			t.Fatalf("status %d, out %q, error output %q", status, out.String(), progress.String())
		}
	})

	t.Run("skipped, then overwritten", func(t *testing.T) {
		renamed := editLine(t, first, func(m map[string]any) {
			m["customerProfile"].(map[string]any)["name"] = "Renamed Ltd"
		})
		file := write("renamed.jsonl", renamed+"\n")
		id := fmt.Sprint(editLineID(t, first))
		status, out, _ := runImport(t, ctx, false, "--url", target, "--token", token, file)
		if status != 0 || !strings.HasPrefix(out, "line 1 "+id+": skipped: the stored referral was updated at ") ||
			!strings.HasSuffix(out, "imported: 0 created, 0 updated, 0 unchanged, 1 skipped, 0 errors, of 1 lines\n") {
			t.Fatalf("status %d, out %q; want 0, the skipped record listed with why", status, out)
		}
		status, out, _ = runImport(t, ctx, false, "--url", target, "--token", token, "--overwrite", file)
		if status != 0 || out != "imported: 0 created, 1 updated, 0 unchanged, 0 skipped, 0 errors, of 1 lines\n" {
			t.Fatalf("--overwrite: status %d, out %q; want the record updated", status, out)
		}
		if got := exportLines(t, ctx, target); !strings.Contains(got, "Renamed Ltd") {
			t.Fatalf("after --overwrite the export has no Renamed Ltd:\n%s", got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			args   []string
			status int
			says   string
		}{
			{[]string{"--url", target, "--token", token, write("referrals.txt", "x")}, 2, "the extension says neither"},
			{[]string{"--url", target, csvFile}, 1, "401 Unauthorized"}, // no token, and the server wants one
			{[]string{"--url", target, "--token", token}, 2, "give one FILE"},
			{[]string{"--url", target, "--token", token, filepath.Join(dir, "missing.csv")}, 1, "no such file"},
			{[]string{"--url", target, "--token", partnerToken(t, "p-1", "org-1", time.Now().Add(time.Hour)), csvFile}, 1, "403 Forbidden"},
			{[]string{"--url", target, "--token", token, write("bad.csv", "Id\r\nx\r\n")}, 1, "400 Bad Request"},
		} {
			status, out, progress := runImport(t, ctx, false, c.args...)
			if status != c.status || out != "" || !strings.Contains(progress, c.says) {
				t.Errorf("%v: status %d, out %q, error output %q; want %d saying %q", c.args, status, out, progress, c.status, c.says)
			}
		}
	})
}

// editLineID is the id of a JSON line.
func editLineID(t *testing.T, line string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	return m["id"]
}

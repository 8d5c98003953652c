package main

import (
	"context"
	"encoding/csv"
	"fmt"
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

// csvRows reads a CSV export into its header and rows.
func csvRows(t *testing.T, file string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(file, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// writeCSV writes rows as CSV, without a byte order mark.
func writeCSV(t *testing.T, rows [][]string) string {
	t.Helper()
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	if err := w.WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestImportCSV: the header is checked before anything is written; a
// cell the export neutralized reads back as its value; a row that cannot
// be read is an error for its line (a quoted cell may span lines) and the
// import goes on; malformed CSV ends the import there.
func TestImportCSV(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	source := startServer(t, "--data-dir", t.TempDir(), "--demo", "4", "--jwt-secret", edgeSecret)
	rows := csvRows(t, exportCSV(t, ctx, source))
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	target := importServer(t)

	t.Run("header", func(t *testing.T) {
		for _, h := range []string{"Id", "notes", "unknown"} {
			header := append([]string(nil), rows[0]...)
			header[col["notes"]] = h
			if h == "notes" {
				header[col["city"]] = "notes"
			}
			res := postImport(t, ctx, target, adminToken(t), "", "text/csv", writeCSV(t, append([][]string{header}, rows[1:]...)))
			if res.status != http.StatusBadRequest || !strings.Contains(res.body, "BAD_USER_INPUT") || !strings.Contains(res.body, "nothing was imported") {
				t.Errorf("header with %q: status %d, body %s; want 400", h, res.status, res.body)
			}
		}
		if res := postImport(t, ctx, target, adminToken(t), "", "text/csv", ""); res.status != http.StatusBadRequest {
			t.Errorf("an empty file: status %d, body %s; want 400", res.status, res.body)
		}
		if got := exportLines(t, ctx, target); got != "" {
			t.Fatalf("a refused file wrote %s", got)
		}
	})

	t.Run("Latin1", func(t *testing.T) {
		// A spreadsheet saved in Windows-1252: "Café" with é as one byte.
		latin := append([]string(nil), rows[1]...)
		latin[col["customerName"]] = "Caf\xe9"
		res := postImport(t, ctx, target, adminToken(t), "?dryRun=true", "text/csv", writeCSV(t, [][]string{rows[0], latin}))
		if res.status != http.StatusOK || len(res.reports) != 1 || res.reports[0]["outcome"] != "error" || res.reports[0]["field"] != "customerName" ||
			res.reports[0]["message"] != "is not valid UTF-8: send the file as UTF-8" || res.reports[0]["id"] != latin[col["id"]] {
			t.Fatalf("status %d, body %s; want an error on customerName saying it is not UTF-8", res.status, res.body)
		}
	})

	t.Run("ErrorsNameTheColumn", func(t *testing.T) {
		for column, value := range map[string]string{"dealValue": "12,5", "country": "ZZ", "participantStatuses": `["SLEEPING"]`} {
			row := append([]string(nil), rows[1]...)
			row[col[column]] = value
			res := postImport(t, ctx, target, adminToken(t), "?dryRun=true", "text/csv", writeCSV(t, [][]string{rows[0], row}))
			if len(res.reports) != 1 || res.reports[0]["outcome"] != "error" || !strings.HasPrefix(fmt.Sprint(res.reports[0]["field"]), column) {
				t.Errorf("%s %q: body %s; want an error naming the column %s", column, value, res.body, column)
			}
		}
	})

	t.Run("rows", func(t *testing.T) {
		good := append([]string(nil), rows[1]...)
		good[col["notes"]] = "'=SUM(A1)\nsecond line" // neutralized by the export: read back as =SUM(A1)…
		good[col["statusReason"]] = "'it's fine"      // an apostrophe of the value's own
		short := rows[2][:5]                          // a row of the wrong width
		badList := append([]string(nil), rows[3]...)  // a list cell that is not JSON
		badList[col["products"]] = "Azure; Teams"
		file := writeCSV(t, [][]string{rows[0], good, short, badList, rows[4]})
		res := postImport(t, ctx, target, adminToken(t), "", "text/csv", "\uFEFF"+file)
		if res.status != http.StatusOK || len(res.reports) != 4 || res.summary["lines"] != 4.0 || res.summary["complete"] != true {
			t.Fatalf("status %d, body %s", res.status, res.body)
		}
		want := []struct {
			line    float64
			outcome string
			field   any
		}{{2, "created", nil}, {4, "error", nil}, {5, "error", "products"}, {6, "created", nil}}
		for i, w := range want {
			r := res.reports[i]
			if r["line"] != w.line || r["outcome"] != w.outcome || r["field"] != w.field {
				t.Errorf("report %d: %v; want line %v, %s, field %v", i, r, w.line, w.outcome, w.field)
			}
		}
		if id := res.reports[2]["id"]; id != rows[3][col["id"]] {
			t.Errorf("the bad list's row is reported with id %v, want %s", id, rows[3][col["id"]])
		}
		got := exportLines(t, ctx, target)
		if !strings.Contains(got, `"notes":"=SUM(A1)\nsecond line"`) || !strings.Contains(got, `"statusReason":"'it's fine"`) {
			t.Errorf("the cells did not read back: %.2000s", got)
		}
		if again := csvRows(t, exportCSV(t, ctx, target)); again[1][col["notes"]] != "'=SUM(A1)\nsecond line" {
			t.Errorf("exported again as %q", again[1][col["notes"]])
		}
	})

	t.Run("malformed", func(t *testing.T) {
		file := writeCSV(t, [][]string{rows[0]}) + "a,\"b\"c\r\n" + writeCSV(t, rows[2:3])
		res := postImport(t, ctx, target, adminToken(t), "", "text/csv", file)
		if res.status != http.StatusOK || len(res.reports) != 1 || res.reports[0]["line"] != 2.0 || res.summary["complete"] != false ||
			!strings.Contains(res.reports[0]["message"].(string), "the CSV is malformed at line 2") {
			t.Fatalf("status %d, body %s", res.status, res.body)
		}
	})
}

// TestImportPartialCSV: a CSV whose header leaves content columns out can
// create referrals, but a row of a stored referral is an error naming the
// missing columns rather than an update that clears them (it cleared the
// notes, deal value and contacts it left out).
func TestImportPartialCSV(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	source := startServer(t, "--data-dir", t.TempDir(), "--demo", "2", "--jwt-secret", edgeSecret)
	rows := csvRows(t, exportCSV(t, ctx, source))
	keep := []int{}
	for i, name := range rows[0] {
		if name != "notes" && name != "dealValue" && name != "contacts" {
			keep = append(keep, i)
		}
	}
	partial := make([][]string, len(rows))
	for r, row := range rows {
		for _, i := range keep {
			partial[r] = append(partial[r], row[i])
		}
	}
	target := importServer(t)
	if res := postImport(t, ctx, target, adminToken(t), "", "text/csv", writeCSV(t, partial[:2])); fmt.Sprint(res.outcomes()) != "[created]" {
		t.Fatalf("a new referral from a partial header: body %.600s; want created", res.body)
	}
	full := writeCSV(t, rows[:2])
	before := exportLines(t, ctx, target)
	if res := postImport(t, ctx, target, adminToken(t), "?mode=overwrite", "text/csv", full); fmt.Sprint(res.outcomes()) != "[updated]" {
		t.Fatalf("the full row: body %.600s; want updated", res.body)
	}
	stored := exportLines(t, ctx, target)
	if stored == before {
		t.Fatal("the full row changed nothing")
	}
	res := postImport(t, ctx, target, adminToken(t), "?mode=overwrite", "text/csv", writeCSV(t, partial[:2]))
	if len(res.reports) != 1 || res.reports[0]["outcome"] != "error" || !strings.Contains(fmt.Sprint(res.reports[0]["message"]), "leaves out contacts, notes, dealValue") {
		t.Fatalf("the partial row of a stored referral: body %.600s; want an error naming the missing columns", res.body)
	}
	if got := exportLines(t, ctx, target); got != stored {
		t.Errorf("the refused row changed the referral:\n%s", firstDifference(got, stored))
	}
}

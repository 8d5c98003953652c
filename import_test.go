package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// These tests import over real HTTP into servers started in the test, in
// authenticated mode, as an operator's client would.

// importServer starts a server with no referrals and returns its base URL.
func importServer(t *testing.T, args ...string) string {
	t.Helper()
	return startServer(t, append([]string{"--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret}, args...)...)
}

// exportLines exports every referral of base as JSON Lines.
func exportLines(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	status, body := request(t, ctx, http.MethodGet, base+"/export/referrals", "",
		map[string]string{"Authorization": "Bearer " + adminToken(t), "Accept": "application/x-ndjson"})
	if status != http.StatusOK {
		t.Fatalf("export: status %d, body %.300s", status, body)
	}
	return body
}

// importResult is the response of an import: its report lines and summary.
type importResult struct {
	status  int
	reports []map[string]any
	summary map[string]any
	body    string
}

// postImport posts body to the import as token, with the query string query.
func postImport(t *testing.T, ctx context.Context, base, token, query, media, body string) importResult {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/import/referrals"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", media)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	res := importResult{status: resp.StatusCode, body: string(b)}
	if resp.StatusCode != http.StatusOK {
		return res
	}
	lines := bufio.NewScanner(strings.NewReader(res.body))
	for lines.Scan() {
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("report line %q: %v", lines.Text(), err)
		}
		if s, ok := m["summary"].(map[string]any); ok {
			res.summary = s
			continue
		}
		res.reports = append(res.reports, m)
	}
	if res.summary == nil {
		t.Fatalf("no summary line in %s", res.body)
	}
	return res
}

// outcomes lists the outcomes of the reports, one a line.
func (r importResult) outcomes() []string {
	out := make([]string, len(r.reports))
	for i, rep := range r.reports {
		out[i] = fmt.Sprint(rep["outcome"])
	}
	return out
}

func (r importResult) count(outcome string) int {
	n, _ := r.summary[outcome].(float64)
	return int(n)
}

// TestImportRoundTrip: a JSON Lines export imported into an empty store
// creates every referral, and the new store exports the same bytes; the
// same file again changes nothing.
func TestImportRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	source := startServer(t, "--data-dir", t.TempDir(), "--demo", "40", "--jwt-secret", edgeSecret)
	file := exportLines(t, ctx, source)
	n := strings.Count(file, "\n")
	if n != 40 {
		t.Fatalf("the source exported %d lines, want 40", n)
	}
	target := importServer(t)
	res := postImport(t, ctx, target, adminToken(t), "", "application/x-ndjson", file)
	if res.status != http.StatusOK || res.count("created") != n || res.count("error") != 0 || res.summary["complete"] != true {
		t.Fatalf("import: status %d, summary %v, body %.1000s; want %d created", res.status, res.summary, res.body, n)
	}
	if again := exportLines(t, ctx, target); again != file {
		t.Fatalf("the export after the import differs:\n got %.2000s\nwant %.2000s", again, file)
	}
	res = postImport(t, ctx, target, adminToken(t), "", "application/x-ndjson", file)
	if res.count("unchanged") != n {
		t.Fatalf("the same file again: summary %v, want %d unchanged", res.summary, n)
	}
	if again := exportLines(t, ctx, target); again != file {
		t.Fatal("importing the same file again changed the export")
	}
}

// editLine returns the JSON line with edit applied to its object.
func editLine(t *testing.T, line string, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sourceLines exports n demo referrals and returns them a line each.
func sourceLines(t *testing.T, ctx context.Context, n int) []string {
	t.Helper()
	source := startServer(t, "--data-dir", t.TempDir(), "--demo", fmt.Sprint(n), "--jwt-secret", edgeSecret)
	return strings.Split(strings.TrimSuffix(exportLines(t, ctx, source), "\n"), "\n")
}

// TestImportOutcomes: each outcome, dry run, overwrite, and malformed
// lines among good ones, reported a line each with the record's line
// number, id, code and field.
func TestImportOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lines := sourceLines(t, ctx, 5)
	base := importServer(t)
	admin := adminToken(t)
	post := func(query string, body ...string) importResult {
		t.Helper()
		res := postImport(t, ctx, base, admin, query, "application/x-ndjson", strings.Join(body, "\n")+"\n")
		if res.status != http.StatusOK {
			t.Fatalf("status %d, body %.500s", res.status, res.body)
		}
		return res
	}
	idOf := func(line string) string {
		var m struct{ ID string }
		_ = json.Unmarshal([]byte(line), &m)
		return m.ID
	}

	t.Run("DryRunWritesNothing", func(t *testing.T) {
		res := post("?dryRun=true", lines[:4]...)
		if res.count("created") != 4 || res.summary["dryRun"] != true {
			t.Fatalf("summary %v, want 4 created in a dry run", res.summary)
		}
		if got := exportLines(t, ctx, base); got != "" {
			t.Fatalf("after a dry run the store exports %.300s, want nothing", got)
		}
	})

	t.Run("MalformedLinesAmongGoodOnes", func(t *testing.T) {
		badCountry := editLine(t, lines[1], func(m map[string]any) {
			m["customerProfile"].(map[string]any)["address"].(map[string]any)["country"] = "ZZ"
		})
		badStatus := editLine(t, lines[2], func(m map[string]any) { m["status"] = "pending" })
		res := post("", lines[0], "{not json", badCountry, "", badStatus, lines[3])
		want := []string{"created", "error", "error", "error", "created"}
		if got := res.outcomes(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v; body %s", got, want, res.body)
		}
		for i, w := range []struct {
			line  float64
			id    string
			field string
		}{{1, idOf(lines[0]), ""}, {2, "", ""}, {3, idOf(lines[1]), "customerProfile.address.country"}, {5, idOf(lines[2]), "status"}, {6, idOf(lines[3]), ""}} {
			rep := res.reports[i]
			if rep["line"] != w.line || fmt.Sprint(rep["id"]) != fmt.Sprint(orNil(w.id)) || fmt.Sprint(rep["field"]) != fmt.Sprint(orNil(w.field)) {
				t.Errorf("report %d: %v; want line %v, id %q, field %q", i, rep, w.line, w.id, w.field)
			}
			if rep["outcome"] == "error" && (rep["code"] != "BAD_USER_INPUT" || rep["message"] == "") {
				t.Errorf("report %d: %v; want BAD_USER_INPUT with a message", i, rep)
			}
		}
		if res.count("created") != 2 || res.count("error") != 3 || res.summary["lines"] != float64(6) || res.summary["complete"] != true {
			t.Errorf("summary %v; want 2 created, 3 errors of 6 lines, complete", res.summary)
		}
	})

	t.Run("UnchangedSkippedUpdated", func(t *testing.T) {
		older := editLine(t, lines[0], func(m map[string]any) {
			m["details"].(map[string]any)["notes"] = "edited in an old copy"
		})
		newer := editLine(t, lines[3], func(m map[string]any) {
			m["details"].(map[string]any)["notes"] = "edited later"
			m["updatedDateTime"] = "2099-01-01T00:00:00Z"
		})
		res := post("?mode=newer", lines[0], older, newer)
		if got, want := res.outcomes(), []string{"unchanged", "skipped", "updated"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v; body %s", got, want, res.body)
		}
		if msg := fmt.Sprint(res.reports[1]["message"]); !strings.Contains(msg, "mode=overwrite") {
			t.Errorf("skipped without saying why: %q", msg)
		}
		res = post("?mode=overwrite", older)
		if got := res.outcomes(); fmt.Sprint(got) != "[updated]" {
			t.Fatalf("with mode=overwrite: outcomes %v, want [updated]", got)
		}
		exported := exportLines(t, ctx, base)
		for _, c := range []struct {
			line, notes string
		}{{lines[0], "edited in an old copy"}, {lines[3], "edited later"}} {
			var before struct{ Version int }
			_ = json.Unmarshal([]byte(c.line), &before)
			for l := range strings.SplitSeq(strings.TrimSpace(exported), "\n") {
				var after struct {
					ID      string
					Version int
					Details struct{ Notes string }
				}
				_ = json.Unmarshal([]byte(l), &after)
				if after.ID == idOf(c.line) && (after.Version != before.Version+1 || after.Details.Notes != c.notes) {
					t.Errorf("referral %s after its update: version %d, notes %q; want version %d, notes %q", after.ID, after.Version, after.Details.Notes, before.Version+1, c.notes)
				}
			}
		}
	})

	t.Run("DealValueAsANumber", func(t *testing.T) {
		line := editLine(t, lines[4], func(m map[string]any) {
			m["details"].(map[string]any)["dealValue"] = json.Number("12345.67")
		})
		if got := post("", line).outcomes(); fmt.Sprint(got) != "[created]" {
			t.Fatalf("outcomes %v, want [created]", got)
		}
		if exported := exportLines(t, ctx, base); !strings.Contains(exported, `"dealValue":"12345.67"`) {
			t.Fatalf("the export does not show the deal value 12345.67: %.2000s", exported)
		}
	})
}

// TestImportLongLine: a line over 1 MiB ends the import there, saying so.
func TestImportLongLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs syncBuffer
	base, stop := serveFor(t, &logs, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret)
	defer func() {
		stop()
		// An import ending with its body unread made net/http panic
		// reading on ("invalid concurrent Body.Read call", Go issue 68560).
		if strings.Contains(logs.String(), "panic") {
			t.Errorf("the server logged a panic:\n%s", logs.String())
		}
	}()
	long := `{"id":"x","details":{"notes":"` + strings.Repeat("a", 1<<20) + `"}}` + "\n"
	res := postImport(t, ctx, base, adminToken(t), "", "application/x-ndjson", "\n"+long+"{}\n")
	if res.status != http.StatusOK || len(res.reports) != 1 || res.reports[0]["line"] != float64(2) ||
		!strings.Contains(fmt.Sprint(res.reports[0]["message"]), "longer than 1048576 bytes") || res.summary["complete"] != false {
		t.Fatalf("status %d, body %.500s; want an error on line 2 saying it is too long, incomplete", res.status, res.body)
	}
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestImportRefusals: what makes a whole request unusable is answered 4xx
// with a coded JSON body, and nothing is written: a partner, another
// media type, a declared length over the limit, an unknown parameter. A
// body that turns out longer than the limit ends the import there.
func TestImportRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lines := sourceLines(t, ctx, 3)
	file := strings.Join(lines, "\n") + "\n"
	limit := len(lines[0]) + len(lines[1]) + 10
	base := importServer(t, "--max-import-bytes", fmt.Sprint(limit))
	for _, c := range []struct {
		name, token, query, media string
		status                    int
		code                      string
	}{
		{"ErrPartner", partnerToken(t, "partner-1", "org-1", time.Now().Add(time.Hour)), "", "application/x-ndjson", http.StatusForbidden, "FORBIDDEN"},
		{"ErrMediaType", adminToken(t), "", "text/plain", http.StatusUnsupportedMediaType, "BAD_USER_INPUT"},
		{"ErrTooLarge", adminToken(t), "", "application/x-ndjson", http.StatusRequestEntityTooLarge, "BAD_USER_INPUT"},
		{"ErrParameter", adminToken(t), "?dryrun=true", "application/x-ndjson", http.StatusBadRequest, "BAD_USER_INPUT"},
		{"ErrCharset", adminToken(t), "", "application/x-ndjson; charset=latin1", http.StatusUnsupportedMediaType, "BAD_USER_INPUT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := postImport(t, ctx, base, c.token, c.query, c.media, file)
			if res.status != c.status || !strings.Contains(res.body, `"code":"`+c.code+`"`) {
				t.Fatalf("status %d, body %.300s; want %d with code %s", res.status, res.body, c.status, c.code)
			}
			if got := exportLines(t, ctx, base); got != "" {
				t.Fatalf("a refused import wrote %.300s", got)
			}
		})
	}
	t.Run("InvalidUTF8", func(t *testing.T) {
		// A Latin-1 "été" among good lines: an error for its line only.
		res := postImport(t, ctx, base, adminToken(t), "", "application/x-ndjson; charset=UTF-8", "{\"id\":\"\xe9t\xe9\"}\n"+lines[2]+"\n")
		if res.status != http.StatusOK || len(res.reports) != 2 || res.reports[0]["outcome"] != "error" ||
			res.reports[0]["message"] != "the record is not valid UTF-8 (at byte 7 of it): send the file as UTF-8" || res.reports[1]["outcome"] != "created" {
			t.Fatalf("status %d, body %s; want the Latin-1 line refused as not UTF-8 and the next created", res.status, res.body)
		}
	})
	t.Run("BodyLongerThanItsLimitWithoutALength", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/import/referrals", io.MultiReader(strings.NewReader(file)))
		req.Header.Set("Authorization", "Bearer "+adminToken(t))
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body := string(b)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"outcome":"created"`) ||
			!strings.Contains(body, "exceeds the limit") || !strings.Contains(body, `"complete":false`) {
			t.Fatalf("status %d, body %s; want the records within the limit created, then an error line, incomplete", resp.StatusCode, body)
		}
	})
}

// TestImportJSONArray: application/json takes an array of referrals, or an
// object whose value or items is that array, read element by element;
// each report gives the line where its element starts and its index.
func TestImportJSONArray(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lines := sourceLines(t, ctx, 6)
	admin := adminToken(t)
	post := func(base, body string) importResult {
		t.Helper()
		return postImport(t, ctx, base, admin, "", "application/json", body)
	}
	array := func(elems ...string) string { return "[" + strings.Join(elems, ",") + "]" }

	t.Run("OK", func(t *testing.T) {
		for _, c := range []struct{ name, body string }{
			{"Array", array(lines[0], lines[1])},
			{"Value", `{"@odata.context":"x","value":` + array(lines[0], lines[1]) + `,"nextLink":null}`},
			{"Items", `{"totalCount":2,"items":` + array(lines[0], lines[1]) + `}`},
		} {
			t.Run(c.name, func(t *testing.T) {
				base := importServer(t)
				res := post(base, c.body)
				if res.status != http.StatusOK || fmt.Sprint(res.outcomes()) != "[created created]" || res.summary["complete"] != true || res.summary["lines"] != float64(2) {
					t.Fatalf("status %d, body %.1000s; want 2 created, complete", res.status, res.body)
				}
				if got, want := exportLines(t, ctx, base), lines[0]+"\n"+lines[1]+"\n"; got != want {
					t.Fatalf("export after the import:\n got %.1000s\nwant %.1000s", got, want)
				}
			})
		}
	})

	t.Run("LineAndIndexOfEachElement", func(t *testing.T) {
		base := importServer(t)
		badCountry := editLine(t, lines[3], func(m map[string]any) {
			m["customerProfile"].(map[string]any)["address"].(map[string]any)["country"] = "ZZ"
		})
		body := "[\n  " + lines[2] + ",\n\n  42,\n  " + badCountry + ",\n  " + lines[4] + "\n]\n"
		res := post(base, body)
		want := []struct {
			line, index float64
			outcome     string
		}{{2, 0, "created"}, {4, 1, "error"}, {5, 2, "error"}, {6, 3, "created"}}
		if res.status != http.StatusOK || len(res.reports) != len(want) || res.summary["complete"] != true {
			t.Fatalf("status %d, body %.1000s", res.status, res.body)
		}
		for i, w := range want {
			if rep := res.reports[i]; rep["line"] != w.line || rep["index"] != w.index || rep["outcome"] != w.outcome {
				t.Errorf("report %d: %v; want line %v, index %v, %s", i, rep, w.line, w.index, w.outcome)
			}
		}
		if f := res.reports[2]["field"]; f != "customerProfile.address.country" {
			t.Errorf("field %v, want customerProfile.address.country", f)
		}
	})

	t.Run("ElementOverTheLimitAmongGoodOnes", func(t *testing.T) {
		base := importServer(t)
		long := `{"id":"x","details":{"notes":"` + strings.Repeat("a", 1<<20) + `"}}`
		res := post(base, array(lines[0], long, lines[1]))
		if res.status != http.StatusOK || fmt.Sprint(res.outcomes()) != "[created error created]" || res.summary["complete"] != true ||
			!strings.Contains(fmt.Sprint(res.reports[1]["message"]), "over the limit of 1048576 bytes") {
			t.Fatalf("status %d, body %.1000s; want the element over 1 MiB an error among created ones", res.status, res.body)
		}
	})

	t.Run("TwoValuesOnALine", func(t *testing.T) {
		base := importServer(t)
		res := postImport(t, ctx, base, admin, "", "application/x-ndjson", lines[0]+" {}\n"+lines[1]+" x\n")
		if fmt.Sprint(res.outcomes()) != "[error error]" || !strings.Contains(fmt.Sprint(res.reports[1]["message"]), "more than one JSON value") {
			t.Fatalf("body %.1000s; want both lines errors", res.body)
		}
	})

	t.Run("MalformedInTheMiddleEndsTheImport", func(t *testing.T) {
		base := importServer(t)
		res := post(base, "["+lines[0]+",\n{\"id\": }, "+lines[1]+"]")
		if res.status != http.StatusOK || fmt.Sprint(res.outcomes()) != "[created error]" || res.summary["complete"] != false ||
			!strings.Contains(fmt.Sprint(res.reports[1]["message"]), "malformed") || res.reports[1]["line"] != float64(2) {
			t.Fatalf("status %d, body %.1000s; want created, then an error on line 2 ending the import", res.status, res.body)
		}
	})

	t.Run("ErrNotAnArray", func(t *testing.T) {
		base := importServer(t)
		// Cut short after an element, or after the comma that follows it
		// (which read as complete, an outside test found): incomplete.
		for _, body := range []string{lines[0], `{"count":1}`, `{"value":{}}`, `"x"`, `[` + lines[0], `[` + lines[0] + `, `, `{"items":[` + lines[0] + `,`, ``} {
			res := post(base, body)
			if strings.HasPrefix(body, `[`) || strings.HasPrefix(body, `{"items"`) {
				if res.status != http.StatusOK || res.summary["complete"] != false {
					t.Errorf("an array cut short: status %d, body %.300s; want the element, then incomplete", res.status, res.body)
				}
				continue
			}
			if res.status != http.StatusBadRequest || !strings.Contains(res.body, `"code":"BAD_USER_INPUT"`) || !strings.Contains(res.body, "nothing was imported") {
				t.Errorf("body %.60q: status %d, body %.300s; want 400 BAD_USER_INPUT", body, res.status, res.body)
			}
		}
	})
}

// TestImportExample: the example file of docs/import.md, in the
// specification's PascalCase shape, imports into an empty server and
// creates exactly its referrals, as the export then shows them.
func TestImportExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	file, err := os.ReadFile("docs/import-example.json")
	if err != nil {
		t.Fatal(err)
	}
	base := importServer(t)
	res := postImport(t, ctx, base, adminToken(t), "", "application/json", string(file))
	if res.status != http.StatusOK || fmt.Sprint(res.outcomes()) != "[created created]" || res.summary["complete"] != true {
		t.Fatalf("status %d, body %.1000s; want 2 created", res.status, res.body)
	}
	want := `{"id":"example-referral-2","createdDateTime":"2026-03-05T08:00:00Z","updatedDateTime":"2026-03-05T08:00:00Z","version":1,"status":"PENDING","statusReason":null,"referralSource":"P2P","customerProfile":{"id":"example-customer-2","name":"Northwind Traders","size":"","address":{"addressLine1":"10 Harbour Road","addressLine2":null,"city":"Lisbon","state":null,"postalCode":"1100-148","country":"PT"},"contacts":[]},"details":{"notes":null,"dealValue":"900000.10","closingDate":null,"requirements":{"industryFocus":[{"id":"Retail & Consumer Goods"}],"products":[],"serviceTypes":[],"solutions":[{"id":"CloudMigration"}]}},"participants":[{"id":"example-participant-2","createdDateTime":"2026-03-05T08:00:00Z","organizationId":"litware","organizationName":"Litware","locationId":null,"status":"INVITED","expirationDateTime":null,"invitedByParticipantId":null,"users":[]}]}
{"id":"example-referral-1","createdDateTime":"2026-03-01T09:30:00Z","updatedDateTime":"2026-03-02T14:00:00Z","version":1,"status":"ACTIVE","statusReason":null,"referralSource":"PARTNER_LED","customerProfile":{"id":"example-customer-1","name":"Contoso Health","size":"250","address":{"addressLine1":"1 Main Street","addressLine2":"Suite 200","city":"Seattle","state":"WA","postalCode":"98101","country":"US"},"contacts":[{"firstName":"Avery","lastName":"Lee","email":"avery@contoso.example","phoneNumber":"+1 206 555 0100"}]},"details":{"notes":"Moving patient records to the cloud.","dealValue":"12345.67","closingDate":"2026-06-30T00:00:00Z","requirements":{"industryFocus":[{"id":"Healthcare"}],"products":[{"id":"Azure"},{"id":"Teams"}],"serviceTypes":[{"id":"DeploymentOrMigration"}],"solutions":[]}},"participants":[{"id":"example-participant-1","createdDateTime":"2026-03-01T09:30:00Z","organizationId":"fabrikam-partners","organizationName":"Fabrikam Partners","locationId":"fabrikam-seattle","status":"ACCEPTED","expirationDateTime":"2026-04-01T00:00:00Z","invitedByParticipantId":null,"users":[{"id":"example-user-1","firstName":"Jordan","lastName":"Diaz","email":"jordan@fabrikam.example","phoneNumber":""}]}]}
`
	if got := exportLines(t, ctx, base); got != want {
		t.Fatalf("export after importing the example:\n got %s\nwant %s", got, want)
	}
	res = postImport(t, ctx, base, adminToken(t), "", "application/json", string(file))
	if fmt.Sprint(res.outcomes()) != "[unchanged unchanged]" {
		t.Fatalf("the example again: body %.1000s; want 2 unchanged", res.body)
	}
}

// specRecord returns a referral in the specification's PascalCase names,
// with id and edit applied, as one JSON line.
func specRecord(t *testing.T, id string, edit func(m map[string]any)) string {
	t.Helper()
	line := `{"Id":"` + id + `","CreatedDateTime":"2026-03-05T08:00:00Z","UpdatedDateTime":"2026-03-05T08:00:00Z",` +
		`"Status":"Pending","ReferralSource":"P2P","CustomerProfile":{"Id":"c-` + id + `","Name":"Northwind Traders",` +
		`"Address":{"AddressLine1":"10 Harbour Road","City":"Lisbon","PostalCode":"1100-148","Country":"PT"},"Contacts":[]},` +
		`"Details":{"DealValue":"10.00","Requirements":{"IndustryFocus":[{"Id":"Healthcare"}],"Products":[],"ServiceTypes":[],"Solutions":[]}},` +
		`"Participants":[{"Id":"p-` + id + `","OrganizationId":"litware","OrganizationName":"Litware","Status":"Invited"}]}`
	if edit == nil {
		return line
	}
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImportSpecNaming: records in the specification's PascalCase names,
// in JSON Lines as in JSON; enum values by the API's name, the
// specification's, or its position, the ambiguous position 3 of
// ReferralStatus refused; a record mixing namings refused naming the field;
// errors name fields as the record does; deal values read digit for digit.
func TestImportSpecNaming(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := importServer(t)
	admin := adminToken(t)
	set := func(path string, v any) func(m map[string]any) {
		return func(m map[string]any) {
			keys := strings.Split(path, ".")
			var at any = m
			for _, k := range keys[:len(keys)-1] {
				if list, ok := at.([]any); ok {
					at = list[0]
					continue
				}
				at = at.(map[string]any)[k]
			}
			at.(map[string]any)[keys[len(keys)-1]] = v
		}
	}

	t.Run("JSONLines", func(t *testing.T) {
		line := specRecord(t, "spec-lines", set("Details.DealValue", json.Number("9007199254740993.01")))
		res := postImport(t, ctx, base, admin, "", "application/x-ndjson", line+"\n")
		if fmt.Sprint(res.outcomes()) != "[created]" {
			t.Fatalf("body %.1000s; want created", res.body)
		}
		exported := exportLines(t, ctx, base)
		for _, want := range []string{`"id":"spec-lines"`, `"status":"PENDING"`, `"referralSource":"P2P"`, `"dealValue":"9007199254740993.01"`,
			`"industryFocus":[{"id":"Healthcare"}]`, `"addressLine1":"10 Harbour Road"`, `"status":"INVITED"`} {
			if !strings.Contains(exported, want) {
				t.Errorf("the export lacks %s: %.2000s", want, exported)
			}
		}
	})

	t.Run("EnumForms", func(t *testing.T) {
		var lines []string
		for i, c := range []struct {
			path string
			v    any
		}{
			{"Status", "Won"}, {"Status", "WON"}, {"Status", 2}, {"Status", "Archived"}, {"Status", "LOST"}, {"Status", 1},
			{"ReferralSource", "WebDirect"}, {"ReferralSource", "AGENT_LED"}, {"ReferralSource", 1}, {"ReferralSource", 3},
			{"Participants.0.Status", "Missed"}, {"Participants.0.Status", "EXPIRED"}, {"Participants.0.Status", 4},
		} {
			lines = append(lines, specRecord(t, fmt.Sprintf("enum-%d", i), set(c.path, c.v)))
		}
		res := postImport(t, ctx, base, admin, "?dryRun=true", "application/json", "["+strings.Join(lines, ",")+"]")
		if res.count("created") != len(lines) {
			t.Fatalf("body %.3000s; want %d created", res.body, len(lines))
		}
	})

	t.Run("Errors", func(t *testing.T) {
		for _, c := range []struct {
			name, record, field, message string
		}{
			{"ErrStatusPosition3", specRecord(t, "e1", set("Status", 3)), "Status", "gives position 3 to both Lost and Archived"},
			{"ErrStatusPosition5", specRecord(t, "e2", set("Status", 5)), "Status", "not a position"},
			{"ErrStatusCase", specRecord(t, "e3", set("Status", "pending")), "Status", "case-sensitive"},
			{"ErrParticipantStatus", specRecord(t, "e4", set("Participants.0.Status", 7)), "Participants.0.Status", "ParticipantStatus"},
			{"ErrMixedTop", specRecord(t, "e5", set("referralSource", "P2P")), "referralSource", "name every field of a record one way"},
			{"ErrMixedNested", specRecord(t, "e6", set("CustomerProfile.Address.city", "Porto")), "CustomerProfile.Address.city", "camelCase"},
			{"ErrNeitherNaming", specRecord(t, "e7", set("CUSTOMERPROFILE", map[string]any{})), "CUSTOMERPROFILE", "case-sensitive"},
			{"ErrSpecFieldNotImported", specRecord(t, "e9", set("Participants.0.ReferralView", "https://x.example")), "Participants.0.ReferralView", "not a field"},
			{"ErrFieldInSpecNames", specRecord(t, "e8", set("CustomerProfile.Address.Country", "ZZ")), "CustomerProfile.Address.Country", "ISO 3166-1"},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := postImport(t, ctx, base, admin, "?dryRun=true", "application/x-ndjson", c.record+"\n")
				if len(res.reports) != 1 {
					t.Fatalf("body %.1000s", res.body)
				}
				rep := res.reports[0]
				if rep["outcome"] != "error" || rep["code"] != "BAD_USER_INPUT" || rep["field"] != c.field || !strings.Contains(fmt.Sprint(rep["message"]), c.message) {
					t.Fatalf("report %v; want an error on %s saying %q", rep, c.field, c.message)
				}
			})
		}
	})
}

// TestImportAsksForTheBody: a client that sends "Expect: 100-continue"
// (curl does for files over 1 MB) is asked for the body at once, over raw
// HTTP/1.1. The import used to begin its response before reading, which
// keeps net/http from asking: curl waited a second, its timeout, on every
// such file, and a client without a timeout would wait for ever.
func TestImportAsksForTheBody(t *testing.T) {
	base := importServer(t)
	body := specRecord(t, "asked", nil) + "\n"
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /import/referrals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-ndjson\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", adminToken(t), len(body))
	// Bounds the wait for an answer that the old code never sent.
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first response line %q, %v; want HTTP/1.1 100 Continue before the body is sent", line, err)
	}
	if _, err := r.ReadString('\n'); err != nil { // the blank line ending the interim response
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	report, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(report), `"created":1`) {
		t.Fatalf("status %d, body %s; want 200 and one referral created", resp.StatusCode, report)
	}
}

// TestImportEventsReachSubscribers: the npm graphql-ws client subscribed
// to referralChanged receives a CREATED event for each referral of an
// imported file, in the file's order, then an UPDATED event when a newer
// version of one is imported; a record skipped or unchanged sends none.
func TestImportEventsReachSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server := startProcess(t, "--data-dir", t.TempDir(), "--demo", "0")
	events, _ := feedClient(t, ctx, server.URL, 4, "")
	waitForSubscriptions(t, server.URL, 1)
	post := func(lines ...string) {
		t.Helper()
		status, body := request(t, ctx, http.MethodPost, server.URL+"/import/referrals", strings.Join(lines, "\n")+"\n",
			map[string]string{"Content-Type": "application/x-ndjson"})
		if status != http.StatusOK || strings.Contains(body, `"outcome":"error"`) {
			t.Fatalf("import: status %d, body %s", status, body)
		}
	}
	post(specRecord(t, "live-1", nil), specRecord(t, "live-2", nil), specRecord(t, "live-3", nil))
	renamed := specRecord(t, "live-2", func(m map[string]any) {
		m["UpdatedDateTime"] = "2026-03-06T08:00:00Z"
		m["CustomerProfile"].(map[string]any)["Name"] = "Renamed Traders"
	})
	stale := specRecord(t, "live-1", func(m map[string]any) { m["CustomerProfile"].(map[string]any)["Name"] = "Stale Traders" })
	post(specRecord(t, "live-3", nil), stale, renamed)
	for _, want := range []string{"CREATED live-1", "CREATED live-2", "CREATED live-3", "UPDATED live-2"} {
		if got, _ := receive(t, events); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestImportHugeElementEndsTheImport: an element of a JSON array far over
// the limit of a record (10 MiB) ends the import there, saying so, after
// the elements before it, rather than being read whole first (a 100 MB
// element grew the server by 490 MB before it was refused).
func TestImportHugeElementEndsTheImport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := importServer(t)
	huge := specRecord(t, "huge", func(m map[string]any) {
		m["Details"].(map[string]any)["Notes"] = strings.Repeat("x", 10<<20)
	})
	res := postImport(t, ctx, base, adminToken(t), "", "application/json", "["+specRecord(t, "before", nil)+",\n"+huge+"]")
	if res.status != http.StatusOK || len(res.reports) != 2 || res.reports[0]["outcome"] != "created" || res.summary["complete"] != false ||
		!strings.Contains(fmt.Sprint(res.reports[1]["message"]), "(an element of the array, or a member of the object around it) is longer than 4194304 bytes") {
		t.Fatalf("status %d, body %.1000s; want the first created, then the import ended at the huge element", res.status, res.body)
	}
}

// TestImportByteOrderMark: a UTF-8 byte order mark before the first
// record (as Windows editors write one) is not part of it, in JSON Lines
// and in a JSON array; charset=utf8, the common spelling of UTF-8, is
// taken as UTF-8.
func TestImportByteOrderMark(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lines := sourceLines(t, ctx, 2)
	base := importServer(t)
	for _, c := range []struct{ name, media, body string }{
		{"JSONLines", "application/x-ndjson", "\uFEFF" + lines[0] + "\n"},
		{"JSONArray", "application/json; charset=utf8", "\uFEFF[" + lines[1] + "]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := postImport(t, ctx, base, adminToken(t), "?dryRun=true", c.media, c.body)
			if res.status != http.StatusOK || fmt.Sprint(res.outcomes()) != "[created]" {
				t.Fatalf("status %d, body %.600s; want the record created", res.status, res.body)
			}
		})
	}
}

package graph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/export"
	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/storage"
	"referrals/storage/demo"
)

// exportServer serves /query and /export/referrals over e's store as the
// server wires them, with HS256 tokens required.
func exportServer(t testing.TB, e *env) http.Handler {
	t.Helper()
	return exportServerWith(t, e, transport.Options{}, slog.New(slog.DiscardHandler))
}

// exportServerWith is exportServer with the edge's options and a logger.
func exportServerWith(t testing.TB, e *env, opts transport.Options, logger *slog.Logger) http.Handler {
	t.Helper()
	auth, err := transport.NewAuth(t.Context(), transport.AuthOptions{Secret: transporttest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	gql := NewExecutor(e.store, e.broker, logger, nil, Options{})
	opts.Logger = logger
	api := transport.New(gql, auth, opts)
	mux := http.NewServeMux()
	mux.Handle("/query", api)
	mux.Handle("/export/referrals", api.Stream(export.New(gql, logger))) // as server.go routes it
	return mux
}

// readCSV parses an exported CSV file with encoding/csv after its UTF-8
// byte order mark, which it requires.
func readCSV(t *testing.T, body []byte) [][]string {
	t.Helper()
	rest, ok := bytes.CutPrefix(body, []byte("\uFEFF"))
	if !ok {
		t.Fatalf("the CSV does not start with a UTF-8 byte order mark: %.40q", body)
	}
	rows, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return rows
}

// jsonList is the entries of a list cell, a JSON array.
func jsonList(t *testing.T, cell string) []string {
	t.Helper()
	var entries []string
	if err := json.Unmarshal([]byte(cell), &entries); err != nil {
		t.Fatalf("list cell %q is not a JSON array: %v", cell, err)
	}
	return entries
}

func getExport(h http.Handler, bearer, accept string, params url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/export/referrals?"+params.Encode(), nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestExportCSV exports with a filter and an order and reads the file with
// a standard CSV parser: the same referrals in the same order as the API
// lists them, their values in the documented columns, for an admin and for
// a partner (who gets only what it can list, and no hidden address).
func TestExportCSV(t *testing.T) {
	e := newEnv(t, demoSize)
	h := exportServer(t, e)
	partnerOrg := e.referrals[0].Participation[0].OrganizationID
	callers := map[string]string{
		"Admin":   transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()}),
		"Partner": transporttest.HS(t, jwt.MapClaims{"sub": "p", "role": "partner", "org": partnerOrg, "exp": transporttest.InAnHour()}),
	}
	filter := `{"status":["ACTIVE","WON","LOST"],"dealValue":{"min":"1000.00"}}`
	order := `{"field":"DEAL_VALUE","direction":"ASC"}`
	for who, bearer := range callers {
		t.Run(who, func(t *testing.T) {
			var want []listedReferral
			after := ""
			for {
				var page struct {
					Referrals struct {
						Nodes    []listedReferral
						PageInfo struct {
							HasNextPage bool
							EndCursor   string
						}
					}
				}
				arg := ""
				if after != "" {
					arg = fmt.Sprintf(", after: %q", after)
				}
				postAs(t, h, bearer, `{ referrals(filter: { status: [ACTIVE, WON, LOST], dealValue: { min: "1000.00" } }, orderBy: { field: DEAL_VALUE, direction: ASC }, first: 100`+arg+`) {
				  nodes { `+listedFields+` } pageInfo { hasNextPage endCursor } } }`).mustData(t, &page)
				want = append(want, page.Referrals.Nodes...)
				if !page.Referrals.PageInfo.HasNextPage {
					break
				}
				after = page.Referrals.PageInfo.EndCursor
			}
			if len(want) < 2 {
				t.Fatalf("the filter lists %d referrals", len(want))
			}
			rec := getExport(h, bearer, "", url.Values{"filter": {filter}, "orderBy": {order}})
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
				t.Fatalf("status %d, type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			if d := rec.Header().Get("Content-Disposition"); !strings.Contains(d, `attachment; filename="referrals-`) || !strings.HasSuffix(d, `.csv"`) {
				t.Errorf("Content-Disposition %q", d)
			}
			rows := readCSV(t, rec.Body.Bytes())
			col := map[string]int{}
			for i, name := range rows[0] {
				col[name] = i
			}
			if len(rows)-1 != len(want) {
				t.Fatalf("%d rows, the API lists %d", len(rows)-1, len(want))
			}
			for i, r := range want {
				row := rows[i+1]
				country := ""
				if r.CustomerProfile.Address != nil {
					country = r.CustomerProfile.Address.Country
				}
				products := []string{}
				for _, p := range r.Details.Requirements["products"] {
					products = append(products, p.ID)
				}
				orgs := []string{}
				for _, p := range r.Participants {
					orgs = append(orgs, p.OrganizationID)
				}
				got := []string{row[col["id"]], row[col["status"]], row[col["dealValue"]], row[col["country"]]}
				wantRow := []string{r.ID, r.Status, *r.Details.DealValue, country}
				if !slices.Equal(got, wantRow) {
					t.Fatalf("row %d = %q, want %q", i, got, wantRow)
				}
				if got := jsonList(t, row[col["products"]]); !slices.Equal(got, products) {
					t.Fatalf("row %d products %q, want %q", i, got, products)
				}
				if got := jsonList(t, row[col["participantOrganizationIds"]]); !slices.Equal(got, orgs) {
					t.Fatalf("row %d participant organizations %q, want %q", i, got, orgs)
				}
			}
		})
	}
}

// TestExportJSONLines exports as JSON Lines: one referral per line, the
// API's shape.
func TestExportJSONLines(t *testing.T) {
	e := newEnv(t, 150)
	h := exportServer(t, e)
	bearer := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	rec := getExport(h, bearer, export.MediaNDJSON, url.Values{})
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), export.MediaNDJSON) {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var ids []string
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		var r struct {
			ID      string
			Details struct{ DealValue string }
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" || r.Details.DealValue == "" {
			t.Fatalf("line %d is not a referral: %v %s", len(ids)+1, err, sc.Bytes())
		}
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != 150 {
		t.Errorf("%d distinct referrals, want 150", len(ids))
	}
}

// TestExportRefusals: no token, a bad token, bad filter JSON, a filter the
// API refuses and an order of another type each get their status and the
// API's error shape with its code, never a 5xx and never a partial file.
func TestExportRefusals(t *testing.T) {
	e := newEnv(t, 10)
	h := exportServer(t, e)
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	for name, tc := range map[string]struct {
		bearer string
		params url.Values
		status int
		code   storage.ErrorCode
		says   string
	}{
		"NoToken":     {"", nil, http.StatusUnauthorized, storage.CodeUnauthenticated, "token"},
		"BadToken":    {"not-a-token", nil, http.StatusUnauthorized, storage.CodeUnauthenticated, "token"},
		"BadJSON":     {admin, url.Values{"filter": {`{"status": [`}}, http.StatusBadRequest, storage.CodeBadUserInput, "filter"},
		"NotAnObject": {admin, url.Values{"orderBy": {`["DEAL_VALUE"]`}}, http.StatusBadRequest, storage.CodeBadUserInput, "orderBy"},
		"BadEnum":     {admin, url.Values{"filter": {`{"status":["won"]}`}}, http.StatusBadRequest, storage.CodeBadUserInput, "won"},
		"BadCountry":  {admin, url.Values{"filter": {`{"customerCountry":["XX"]}`}}, http.StatusBadRequest, storage.CodeBadUserInput, "customerCountry"},
		"BadField":    {admin, url.Values{"filter": {`{"colour":"red"}`}}, http.StatusBadRequest, storage.CodeBadUserInput, "colour"},
		// a repeated parameter is refused rather than one of them read
		"TwoFilters": {admin, url.Values{"filter": {`{"status":["WON"]}`, `{"status":["LOST"]}`}}, http.StatusBadRequest, storage.CodeBadUserInput, "filter"},
		"TwoOrders":  {admin, url.Values{"orderBy": {`{"field":"DEAL_VALUE"}`, `{"field":"CREATED_DATE_TIME"}`}}, http.StatusBadRequest, storage.CodeBadUserInput, "orderBy"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := getExport(h, tc.bearer, "", tc.params)
			var body struct {
				Errors []gqlError
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			if rec.Code != tc.status || body.Errors[0].Extensions["code"] != string(tc.code) || !strings.Contains(body.Errors[0].Message, tc.says) {
				t.Errorf("status %d, error %+v; want %d %s mentioning %q", rec.Code, body.Errors[0], tc.status, tc.code, tc.says)
			}
		})
	}
}

// TestExportNeutralizesFormulas writes cells that a spreadsheet would run
// as formulas, some behind a space, a line break and a zero-width space,
// and reads them back as text.
func TestExportNeutralizesFormulas(t *testing.T) {
	e := newEnv(t, 0)
	h := exportServer(t, e)
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	name := `=HYPERLINK("http://evil.example","x")`
	notes := " \u200b\n@SUM(1+1)" // behind what a spreadsheet skips or does not show
	_, err := e.store.CreateReferral(storage.WithCaller(t.Context(), transport.DevCaller), storage.ReferralInput{
		ReferralSource: storage.SourceP2P,
		CustomerProfile: &storage.CustomerProfileInput{Name: &name,
			Address:  &storage.Address{AddressLine1: "-1 Street, \"quoted\"", City: "+City", Country: "GB"},
			Contacts: []storage.Contact{{FirstName: "Ana", LastName: "Lopez", PhoneNumber: "+44 20 7946 0000"}}},
		Details: &storage.DetailsInput{Notes: &notes},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := getExport(h, admin, "", nil)
	rows := readCSV(t, rec.Body.Bytes())
	if len(rows) != 2 {
		t.Fatalf("%d rows: %s", len(rows), rec.Body)
	}
	if !strings.Contains(rec.Body.String(), "\r\n") {
		t.Error("rows do not end with CRLF")
	}
	col := map[string]string{}
	for i, n := range rows[0] {
		col[n] = rows[1][i]
	}
	for field, want := range map[string]string{
		"customerName": "'" + name, "notes": "'" + notes, "city": "'+City",
		"addressLine1": "'-1 Street, \"quoted\"", "country": "GB",
	} {
		if col[field] != want {
			t.Errorf("%s = %q, want %q", field, col[field], want)
		}
	}
}

// BenchmarkExport streams exports of 200 and 2,000 referrals and reports
// the largest live heap seen while streaming, sampled every page, over the
// heap before: an export holds one page whatever its size. Under -short
// (CI runs every benchmark once) only 200. The heap includes the embedded
// store's, which runs in this process and reads the whole collection for
// each page's query.
func BenchmarkExport(b *testing.B) {
	sizes := []int{200, 2000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			e := newEnv(b, n)
			h := exportServer(b, e)
			bearer := transporttest.Token(b, []byte(transporttest.Secret), jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
			var peak uint64
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				w := &heapSampler{ResponseRecorder: httptest.NewRecorder(), base: before.HeapAlloc}
				req := httptest.NewRequest(http.MethodGet, "/export/referrals", nil)
				req.Header.Set("Authorization", "Bearer "+bearer)
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK || w.rows != n+1 {
					b.Fatalf("status %d, %d lines", w.Code, w.rows)
				}
				peak = max(peak, w.peak)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// heapSampler counts the lines written and samples the live heap at each
// flush (once a page).
type heapSampler struct {
	*httptest.ResponseRecorder
	base, peak uint64
	rows       int
}

func (w *heapSampler) Write(p []byte) (int, error) {
	w.rows += bytes.Count(p, []byte("\n"))
	return len(p), nil // the rows are not kept: the recorder would hold the file
}

func (w *heapSampler) Flush() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapAlloc > w.base {
		w.peak = max(w.peak, m.HeapAlloc-w.base)
	}
}

// TestExportFailingMidway loses the store after the first page: the file
// ends with an error line, not silently short.
func TestExportFailingMidway(t *testing.T) {
	for _, accept := range []string{"", export.MediaNDJSON} {
		t.Run("Accept="+accept, func(t *testing.T) {
			e := newEnvAt(t, 150, time.Now) // a client of its own, to close
			h := exportServer(t, e)
			admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
			w := &closingWriter{ResponseRecorder: httptest.NewRecorder(), close: func() { _ = e.store.Close(context.Background()) }}
			req := httptest.NewRequest(http.MethodGet, "/export/referrals", nil)
			req.Header.Set("Authorization", "Bearer "+admin)
			req.Header.Set("Accept", accept)
			h.ServeHTTP(w, req)
			lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
			last := lines[len(lines)-1]
			if w.Code != http.StatusOK || !strings.Contains(last, "INTERNAL") || !strings.Contains(last, "incomplete") {
				t.Fatalf("status %d, %d lines, last %q", w.Code, len(lines), last)
			}
			if accept != "" {
				var line struct{ Errors []gqlError }
				if err := json.Unmarshal([]byte(last), &line); err != nil || len(line.Errors) != 1 {
					t.Errorf("the last line is not an error of the API's shape: %q", last)
				}
			}
		})
	}
}

// closingWriter calls close at the first flush, once a page is written.
type closingWriter struct {
	*httptest.ResponseRecorder
	close func()
	done  bool
}

func (w *closingWriter) Flush() {
	if !w.done {
		w.done = true
		w.close()
	}
}

// heldWriter holds the export it serves at its first flush (after the
// first page) until release is closed, after saying so on flushed.
type heldWriter struct {
	*httptest.ResponseRecorder
	flushed chan<- struct{}
	release <-chan struct{}
	held    bool
}

func (w *heldWriter) Flush() {
	if !w.held {
		w.held = true
		w.flushed <- struct{}{}
		<-w.release
	}
}

// TestExportHoldsAStreamSlot: an export is a stream of its caller's, so
// with --max-streams-per-token 2 a third export of the same identity is
// refused 429 STREAM_LIMIT while two stream, another identity is not, and
// a slot is free again once an export ends.
func TestExportHoldsAStreamSlot(t *testing.T) {
	e := newEnv(t, 10)
	h := exportServerWith(t, e, transport.Options{MaxStreams: 2}, slog.New(slog.DiscardHandler))
	greedy := transporttest.HS(t, jwt.MapClaims{"sub": "greedy", "role": "admin", "exp": transporttest.InAnHour()})
	flushed := make(chan struct{})
	releases := []chan struct{}{make(chan struct{}), make(chan struct{})}
	codes := make(chan int, len(releases))
	for _, release := range releases {
		go func() {
			w := &heldWriter{ResponseRecorder: httptest.NewRecorder(), flushed: flushed, release: release}
			req := httptest.NewRequest(http.MethodGet, "/export/referrals", nil)
			req.Header.Set("Authorization", "Bearer "+greedy)
			h.ServeHTTP(w, req)
			codes <- w.Code
		}()
		<-flushed // streaming, and holding its slot
	}
	rec := getExport(h, greedy, "", nil)
	var body struct{ Errors []gqlError }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusTooManyRequests ||
		len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != string(storage.CodeStreamLimit) {
		t.Errorf("a third export while two stream: %d %.200s, want 429 STREAM_LIMIT", rec.Code, rec.Body)
	}
	other := transporttest.HS(t, jwt.MapClaims{"sub": "someone-else", "role": "admin", "exp": transporttest.InAnHour()})
	if rec := getExport(h, other, "", nil); rec.Code != http.StatusOK {
		t.Errorf("another identity's export: %d %.200s", rec.Code, rec.Body)
	}
	close(releases[0])
	if code := <-codes; code != http.StatusOK {
		t.Errorf("a held export ended %d", code)
	}
	if rec := getExport(h, greedy, "", nil); rec.Code != http.StatusOK {
		t.Errorf("an export after one ended: %d %.200s, want 200", rec.Code, rec.Body)
	}
	close(releases[1])
	<-codes
}

// TestExportHead answers HEAD with the export's status and headers, no
// body, and reads no referral: the store is closed before it.
func TestExportHead(t *testing.T) {
	e := newEnvAt(t, 5, time.Now) // a client of its own, to close
	h := exportServer(t, e)
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	if err := e.store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	head := func(accept string, params url.Values) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodHead, "/export/referrals?"+params.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for accept, want := range map[string]struct{ media, ext string }{
		"": {"text/csv", ".csv\""}, export.MediaNDJSON: {export.MediaNDJSON, ".jsonl\""},
	} {
		rec := head(accept, url.Values{"filter": {`{"status":["WON"]}`}})
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), want.media) ||
			!strings.HasSuffix(rec.Header().Get("Content-Disposition"), want.ext) || rec.Body.Len() != 0 {
			t.Errorf("HEAD (Accept %q): %d, %q, %q, %d bytes of body %.200q", accept, rec.Code,
				rec.Header().Get("Content-Type"), rec.Header().Get("Content-Disposition"), rec.Body.Len(), rec.Body)
		}
	}
	// validation still answers, as GET would
	if rec := head("", url.Values{"filter": {`{"status":["won"]}`}}); rec.Code != http.StatusBadRequest {
		t.Errorf("HEAD with a bad filter: %d, want 400", rec.Code)
	}
}

// TestExportCSVRoundTrip: values with LF, a lone CR, CRLF, quotes and the
// old list separator read back exactly with Python's csv module (as Excel
// reads them) and, but for CRLF inside a value, which encoding/csv reads
// as LF, with encoding/csv; list cells are JSON arrays whatever their
// entries hold.
func TestExportCSVRoundTrip(t *testing.T) {
	e := newEnv(t, 0)
	h := exportServer(t, e)
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	want := map[string]string{
		"notes": "first line\nsecond line", "addressLine1": "Unit 4\rBlock B",
		"addressLine2": "c/o \"Ops\"\r\nFloor 2", "customerName": "Smith; Jones, Ltd",
	}
	notes, line2 := want["notes"], want["addressLine2"]
	// Written as stored data, not through the API, which now refuses line
	// breaks in address lines: data written before, or straight into
	// MongoDB, may still hold them.
	refs, _ := demo.Generate(testSeed, 1, testAnchor)
	refs[0].Participation = nil
	refs[0].CustomerProfile.Name = want["customerName"]
	refs[0].CustomerProfile.Address = &storage.Address{AddressLine1: want["addressLine1"], AddressLine2: &line2, City: "Leeds", Country: "GB"}
	refs[0].CustomerProfile.Contacts = []storage.Contact{{FirstName: "Ana; Maria", LastName: "Lopez"}, {FirstName: "Bo", LastName: "Chen"}}
	refs[0].Details.Notes = &notes
	if err := e.store.InsertReferrals(t.Context(), refs, nil); err != nil {
		t.Fatal(err)
	}
	rec := getExport(h, admin, "", nil)
	body := rec.Body.Bytes()
	if !bytes.Contains(body, []byte("\"c/o \"\"Ops\"\"\r\nFloor 2\"")) || !bytes.Contains(body, []byte("\"first line\nsecond line\"")) {
		t.Errorf("line breaks inside values are not written as they are: %q", body)
	}
	rows := readCSV(t, body)
	if len(rows) != 2 {
		t.Fatalf("%d rows: %q", len(rows), body)
	}
	col := map[string]string{}
	for i, n := range rows[0] {
		col[n] = rows[1][i]
	}
	for field, v := range want {
		if field == "addressLine2" {
			v = strings.ReplaceAll(v, "\r\n", "\n") // encoding/csv's reading
		}
		if col[field] != v {
			t.Errorf("encoding/csv reads %s = %q, want %q", field, col[field], v)
		}
	}
	if got, want := col["contacts"], `[{"firstName":"Ana; Maria","lastName":"Lopez","email":"","phoneNumber":""},{"firstName":"Bo","lastName":"Chen","email":"","phoneNumber":""}]`; got != want {
		t.Errorf("contacts %s, want %s", got, want)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("the test reads the file with Python's csv module and needs python3: run `bash .ci/setup`")
	}
	cmd := exec.Command(python, "-c", `import csv, io, json, sys
rows = list(csv.DictReader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")))
json.dump(rows, sys.stdout)`)
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var read []map[string]string
	if err := json.Unmarshal(out, &read); err != nil || len(read) != 1 {
		t.Fatalf("python read %s (%v)", out, err)
	}
	for field, v := range want {
		if read[0][field] != v {
			t.Errorf("python's csv reads %s = %q, want %q", field, read[0][field], v)
		}
	}
}

// TestExportNegotiation: CSV for no Accept, */* and text/*; JSON Lines
// when asked for; 406 with the API's error shape naming both types for
// anything else.
func TestExportNegotiation(t *testing.T) {
	e := newEnv(t, 3)
	h := exportServer(t, e)
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	for accept, want := range map[string]string{
		"": "text/csv", "*/*": "text/csv", "text/*": "text/csv", "text/csv": "text/csv",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": "text/csv",
		export.MediaNDJSON: export.MediaNDJSON, "text/csv;q=0.5, application/x-ndjson": export.MediaNDJSON,
		"application/json": "", "text/plain": "", "application/json, text/csv;q=0": "",
	} {
		rec := getExport(h, admin, accept, nil)
		if want != "" {
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), want) {
				t.Errorf("Accept %q: %d %q, want %s", accept, rec.Code, rec.Header().Get("Content-Type"), want)
			}
			continue
		}
		var body struct{ Errors []gqlError }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusNotAcceptable || len(body.Errors) != 1 ||
			body.Errors[0].Extensions["code"] != string(storage.CodeBadUserInput) ||
			!strings.Contains(body.Errors[0].Message, "text/csv") || !strings.Contains(body.Errors[0].Message, export.MediaNDJSON) {
			t.Errorf("Accept %q: %d %.200s, want 406 BAD_USER_INPUT naming both types", accept, rec.Code, rec.Body)
		}
	}
}

// cancelingWriter ends the request's context at its first flush, after
// the first page: the client hangs up.
type cancelingWriter struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (w *cancelingWriter) Flush() { w.cancel() }

// TestExportRequestIDAndHangUp: an export echoes X-Request-Id as /query
// does, and a client hanging up mid-export is no error: nothing is logged
// at ERROR and no error line is written.
func TestExportRequestIDAndHangUp(t *testing.T) {
	e := newEnv(t, 150) // two pages
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := exportServerWith(t, e, transport.Options{}, logger)
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/export/referrals", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("X-Request-Id", "export-42")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("X-Request-Id") != "export-42" {
		t.Errorf("status %d, X-Request-Id %q, want 200 echoing export-42", rec.Code, rec.Header().Get("X-Request-Id"))
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &cancelingWriter{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
	req = httptest.NewRequestWithContext(ctx, http.MethodGet, "/export/referrals", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	h.ServeHTTP(w, req)
	if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(w.Body.String(), "#ERROR") {
		t.Errorf("a client hanging up was taken for a failure:\nlog: %s\nlast bytes: %q", logs.String(), w.Body.String()[max(0, w.Body.Len()-200):])
	}
}

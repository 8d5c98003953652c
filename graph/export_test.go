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
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/export"
	"referrals/graph/transport"
	"referrals/storage"
)

// exportServer serves /query and /export/referrals over e's store as the
// server wires them, with HS256 tokens required.
func exportServer(t testing.TB, e *env) http.Handler {
	t.Helper()
	auth, err := transport.NewAuth(t.Context(), transport.AuthOptions{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	exec := NewExecutor(e.store, e.broker, slog.New(slog.DiscardHandler), nil, Options{})
	mux := http.NewServeMux()
	mux.Handle("/query", transport.New(exec, auth, transport.Options{}))
	mux.Handle("GET /export/referrals", auth.Identified(export.New(exec, slog.New(slog.DiscardHandler))))
	return mux
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
		"Admin":   hs(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": inAnHour()}),
		"Partner": hs(t, jwt.MapClaims{"sub": "p", "role": "partner", "org": partnerOrg, "exp": inAnHour()}),
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
			rows, err := csv.NewReader(rec.Body).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
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
				var products []string
				for _, p := range r.Details.Requirements["products"] {
					products = append(products, p.ID)
				}
				var orgs []string
				for _, p := range r.Participants {
					orgs = append(orgs, p.OrganizationID)
				}
				got := []string{row[col["id"]], row[col["status"]], row[col["dealValue"]], row[col["country"]], row[col["products"]], row[col["participantOrganizationIds"]]}
				wantRow := []string{r.ID, r.Status, *r.Details.DealValue, country, strings.Join(products, "; "), strings.Join(orgs, "; ")}
				if !slices.Equal(got, wantRow) {
					t.Fatalf("row %d = %q, want %q", i, got, wantRow)
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
	bearer := hs(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": inAnHour()})
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
	admin := hs(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": inAnHour()})
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
// as formulas and reads them back as text.
func TestExportNeutralizesFormulas(t *testing.T) {
	e := newEnv(t, 0)
	h := exportServer(t, e)
	admin := hs(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": inAnHour()})
	name := `=HYPERLINK("http://evil.example","x")`
	notes := "@SUM(1+1)"
	_, err := e.store.CreateReferral(storage.WithCaller(t.Context(), transport.DevCaller), storage.ReferralInput{
		ReferralSource: storage.SourceP2P,
		CustomerProfile: &storage.CustomerProfileInput{Name: &name,
			Address:  &storage.Address{AddressLine1: "-1 Street, \"quoted\"\nsecond line", City: "+City", Country: "GB"},
			Contacts: []storage.Contact{{FirstName: "Ana", LastName: "Lopez", PhoneNumber: "+44 20 7946 0000"}}},
		Details: &storage.DetailsInput{Notes: &notes},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := getExport(h, admin, "", nil)
	rows, err := csv.NewReader(bytes.NewReader(rec.Body.Bytes())).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v: %s", err, rec.Body)
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
		"addressLine1": "'-1 Street, \"quoted\"\nsecond line", "country": "GB",
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
			bearer := token(b, []byte(testSecret), jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a", "role": "admin", "exp": inAnHour()})
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
			admin := hs(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": inAnHour()})
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

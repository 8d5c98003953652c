package playground

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"

	"referrals/graph"
)

func get(t *testing.T, h http.Handler, path string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if host := header["Host"]; host != "" {
		req.Host = host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func handler(t *testing.T, opts Options) http.Handler {
	t.Helper()
	h, err := Handler(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPage (issue 10, item 2): the page allows only its own origin, and
// every file it loads is served from the binary with its type and caching.
func TestPage(t *testing.T) {
	h := handler(t, Options{Endpoint: "/query", Introspection: true})
	page := get(t, h, "/", nil)
	if page.Code != http.StatusOK || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	policy := page.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self' ws://example.com wss://example.com;"} {
		if !strings.Contains(policy, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", policy, want)
		}
	}
	if strings.Contains(policy, "unsafe") || strings.Contains(page.Body.String(), "<script>") || strings.Contains(page.Body.String(), "style=") {
		t.Errorf("the page has inline script or style, or allows them: %s\n%s", policy, page.Body)
	}

	loaded := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page.Body.String(), -1)
	if len(loaded) != 8 {
		t.Errorf("the page loads %d files, want 8 (React, ReactDOM, GraphiQL and the explorer, their 2 stylesheets, app.js and app.css)", len(loaded))
	}
	for _, m := range loaded {
		path := m[1]
		t.Run(path, func(t *testing.T) {
			rec := get(t, h, path, nil)
			wantType, wantCache := "text/javascript; charset=utf-8", "no-cache"
			if strings.HasSuffix(path, ".css") {
				wantType = "text/css; charset=utf-8"
			}
			if strings.HasPrefix(path, "/playground/vendor/") {
				wantCache = "public, max-age=31536000, immutable"
			}
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != wantType || rec.Header().Get("Cache-Control") != wantCache ||
				rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Body.Len() == 0 {
				t.Errorf("got %d %q %q, want 200 %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"), wantType, wantCache)
			}
			again := get(t, h, path, map[string]string{"If-None-Match": rec.Header().Get("ETag")})
			if again.Code != http.StatusNotModified {
				t.Errorf("with its ETag: %d, want 304", again.Code)
			}
		})
	}

	t.Run("HostOutsidePolicy", func(t *testing.T) {
		rec := get(t, h, "/", map[string]string{"Host": "evil.example; script-src *"})
		if policy := rec.Header().Get("Content-Security-Policy"); strings.Contains(policy, "evil") || !strings.Contains(policy, "connect-src 'self';") {
			t.Errorf("a malformed Host reached the policy: %q", policy)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, path := range []string{"/playground/", "/playground/index.html", "/playground/nope.js", "/playground/vendor.json", "/playground/examples/4-watch.graphql", "/playground/vendor/react@18.3.1/"} {
			if rec := get(t, h, path, nil); rec.Code != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", path, rec.Code)
			}
		}
	})
}

// TestVendoredFiles: every pinned package's files and license are
// embedded, as update-vendor.mjs writes them.
func TestVendoredFiles(t *testing.T) {
	h := handler(t, Options{Endpoint: "/query"})
	b, err := os.ReadFile("vendor.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Packages []struct {
			Name, Version, Integrity string
			Files                    []string
		}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Packages {
		dir := "/playground/vendor/" + p.Name + "@" + p.Version + "/"
		if !strings.HasPrefix(p.Integrity, "sha512-") {
			t.Errorf("%s@%s has no pinned sha512 integrity", p.Name, p.Version)
		}
		license := get(t, h, dir+"LICENSE", nil)
		if license.Code != http.StatusOK || license.Header().Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(license.Body.String(), "MIT License") {
			t.Errorf("%sLICENSE: %d %q %.40q", dir, license.Code, license.Header().Get("Content-Type"), license.Body)
		}
		for _, f := range p.Files {
			if rec := get(t, h, dir+f[strings.LastIndex(f, "/")+1:], nil); rec.Code != http.StatusOK {
				t.Errorf("%s of %s@%s: %d", f, p.Name, p.Version, rec.Code)
			}
		}
	}
}

// TestSettings (issue 10, item 3): the page learns from the server whether
// it needs tokens and has introspection, and opens with the example tabs.
func TestSettings(t *testing.T) {
	examples, err := fs.Glob(files, "examples/*.graphql")
	if err != nil || len(examples) == 0 {
		t.Fatalf("examples: %v %v", examples, err)
	}
	for _, opts := range []Options{{Endpoint: "/query", Introspection: true}, {Endpoint: "/query", TokensRequired: true}} {
		rec := get(t, handler(t, opts), "/playground/config.json", nil)
		var got config
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
		}
		if got.Endpoint != opts.Endpoint || got.TokensRequired != opts.TokensRequired || got.Introspection != opts.Introspection || len(got.Tabs) != len(examples) {
			t.Errorf("settings %+v for %+v, want them and %d tabs", got, opts, len(examples))
		}
	}
}

// TestExampleTabs (issue 10, item 3): each tab is a valid operation with
// valid variables; together they show docs/api.md's example queries, a
// subscription and a mutation with its variables filled in.
func TestExampleTabs(t *testing.T) {
	tabs, err := exampleTabs()
	if err != nil {
		t.Fatal(err)
	}
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	kinds := map[string]bool{}
	for _, tab := range tabs {
		doc, errs := gqlparser.LoadQuery(schema, tab.Query)
		if errs != nil {
			t.Errorf("%.60q: %v", tab.Query, errs)
			continue
		}
		op := doc.Operations[0]
		kinds[string(op.Operation)] = true
		if len(op.VariableDefinitions) > 0 && op.VariableDefinitions[0].Type.NonNull {
			var vars map[string]any
			if err := json.Unmarshal([]byte(tab.Variables), &vars); err != nil || vars[op.VariableDefinitions[0].Variable] == nil {
				t.Errorf("%s: variables %q do not give $%s", op.Name, tab.Variables, op.VariableDefinitions[0].Variable)
			}
		}
	}
	if !kinds["query"] || !kinds["mutation"] || !kinds["subscription"] {
		t.Errorf("the tabs hold %v, want queries, a mutation and a subscription", kinds)
	}

	readme, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(readme), "```graphql\n")[1:] {
		example := block[:strings.Index(block, "```")]
		if !strings.HasPrefix(example, "query ") {
			continue
		}
		found := false
		for _, tab := range tabs {
			found = found || strings.HasSuffix(tab.Query, "\n"+example)
		}
		if !found {
			t.Errorf("no tab holds docs/api.md's example %.40q", example)
		}
	}
}

// TestExampleDatesAreRelative: the tabs' variables give "$today" and
// "$today+Nd", written as dates when the page asks for its settings, so
// the Expiring and Healthcare tabs ask about the coming days whenever it
// is opened (they held fixed dates, a week out of date within a week).
func TestExampleDatesAreRelative(t *testing.T) {
	now := time.Date(2026, 12, 3, 16, 30, 0, 0, time.UTC)
	if got := RelativeDates(`{ "now": "$today", "week": "$today+7d", "after": null, "x": "$todayx" }`, now); got != `{ "now": "2026-12-03T00:00:00Z", "week": "2026-12-10T00:00:00Z", "after": null, "x": "$todayx" }` {
		t.Errorf("got %s", got)
	}
	before := time.Now().UTC().Truncate(24 * time.Hour)
	rec := get(t, handler(t, Options{Endpoint: "/query"}), "/playground/config.json", nil)
	after := time.Now().UTC().Truncate(24 * time.Hour)
	var got config
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	dated := 0
	for _, tab := range got.Tabs {
		if strings.Contains(tab.Variables, "$today") {
			t.Errorf("a tab's variables still say $today: %s", tab.Variables)
		}
		if strings.Contains(tab.Variables, before.Format(time.RFC3339)) || strings.Contains(tab.Variables, after.Format(time.RFC3339)) {
			dated++
		}
	}
	if dated != 2 {
		t.Errorf("%d tabs give today's date, want 2 (Healthcare, Expiring)", dated)
	}
}

// Package playground serves GraphiQL from files embedded in the binary:
// the page at / and everything it loads under /playground/, so it works
// with no internet and under a Content-Security-Policy that allows only
// the server's own origin.
//
// The third-party files (React, GraphiQL, its explorer plugin) are pinned
// in vendor.json and fetched, with their licenses, by update-vendor.mjs;
// the example tabs are the files of examples/.
package playground

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

//go:embed static vendor vendor.json examples
var files embed.FS

// Options are what the page needs to know of the server.
type Options struct {
	// Endpoint is the path of the GraphQL endpoint, for HTTP and WebSocket.
	Endpoint string
	// TokensRequired says that requests need a bearer token: the page then
	// opens the headers editor and says how to put the token there.
	TokensRequired bool
	// Introspection says whether the server answers introspection; without
	// it the page says why there are no docs.
	Introspection bool
	// PersistedOnly says that the server runs registered operations only:
	// the page then says that its tabs and typed operations are refused
	// unless registered.
	PersistedOnly bool
}

// config is what the page reads from /playground/config.json.
type config struct {
	Endpoint       string `json:"endpoint"`
	TokensRequired bool   `json:"tokensRequired"`
	Introspection  bool   `json:"introspection"`
	PersistedOnly  bool   `json:"persistedOnly"`
	Tabs           []tab  `json:"tabs"`
}

// tab is one of the operations the page opens with.
type tab struct {
	Query     string `json:"query"`
	Variables string `json:"variables,omitempty"`
}

// Handler serves the page at / and its files under /playground/.
// Third-party files are under versioned paths and cached for a year;
// the page, its script and its settings are revalidated by ETag.
func Handler(opts Options) (http.Handler, error) {
	tabs, err := exampleTabs()
	if err != nil {
		return nil, err
	}
	settings := func(now time.Time) ([]byte, error) {
		dated := make([]tab, len(tabs))
		for i, t := range tabs {
			dated[i] = tab{Query: t.Query, Variables: RelativeDates(t.Variables, now)}
		}
		return json.Marshal(config{Endpoint: opts.Endpoint, TokensRequired: opts.TokensRequired, Introspection: opts.Introspection, PersistedOnly: opts.PersistedOnly, Tabs: dated})
	}
	if _, err := settings(time.Now()); err != nil {
		return nil, err
	}
	page, err := renderPage()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", withPolicy(serveBytes(page, "text/html; charset=utf-8", revalidate)))
	mux.Handle("GET /playground/config.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := settings(time.Now()) // it marshalled at start: it does now
		serveBytes(b, "application/json", revalidate).ServeHTTP(w, r)
	}))
	mux.Handle("GET /playground/", http.StripPrefix("/playground/", serveFiles()))
	return mux, nil
}

// Cache-Control of the files: those under a versioned path never change,
// the others change with the binary.
const (
	revalidate = "no-cache"
	immutable  = "public, max-age=31536000, immutable"
)

// contentTypes are the types of the files served, by extension; files of
// other kinds are not served.
var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	"":      "text/plain; charset=utf-8", // LICENSE
	".json": "application/json",
}

// serveFiles serves static/ and vendor/ under their names ("app.js",
// "vendor/graphiql@4.1.2/graphiql.min.js").
func serveFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, cache := "static/"+r.URL.Path, revalidate
		if strings.HasPrefix(r.URL.Path, "vendor/") {
			name, cache = r.URL.Path, immutable
		}
		typ, known := contentTypes[path.Ext(name)]
		b, err := fs.ReadFile(files, name)
		if !known || err != nil {
			http.NotFound(w, r)
			return
		}
		serveBytes(b, typ, cache).ServeHTTP(w, r)
	})
}

// serveBytes serves b with its type, caching and an ETag of its content.
func serveBytes(b []byte, contentType, cache string) http.Handler {
	sum := sha256.Sum256(b)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", cache)
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}

// hostPattern is a host[:port] as a browser sends it; anything else is
// left out of the policy rather than written into a header.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)

// withPolicy sends the page's Content-Security-Policy: scripts, styles,
// fonts and connections from the server's own origin only. The WebSocket
// endpoint is named with its host, since 'self' covers ws: and wss: only in
// browsers that follow CSP Level 3. GraphiQL's stylesheet embeds its fonts
// and icons as data: URLs.
func withPolicy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connect := "'self'"
		if hostPattern.MatchString(r.Host) {
			connect += " ws://" + r.Host + " wss://" + r.Host
		}
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
			"img-src 'self' data:; font-src 'self' data:; connect-src "+connect+"; "+
			"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// vendored is vendor.json: the pinned packages and the files the page
// loads from each, in order.
type vendored struct {
	Packages []struct {
		Name    string   `json:"name"`
		Version string   `json:"version"`
		Files   []string `json:"files"`
	} `json:"packages"`
}

// renderPage writes the page with the pinned files' paths.
func renderPage() ([]byte, error) {
	var v vendored
	b, err := fs.ReadFile(files, "vendor.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("vendor.json: %w", err)
	}
	var assets struct{ Scripts, Styles []string }
	for _, p := range v.Packages {
		for _, f := range p.Files {
			url := "/playground/vendor/" + p.Name + "@" + p.Version + "/" + path.Base(f)
			if path.Ext(f) == ".css" {
				assets.Styles = append(assets.Styles, url)
			} else {
				assets.Scripts = append(assets.Scripts, url)
			}
		}
	}
	page, err := template.ParseFS(files, "static/index.html")
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = page.Execute(&out, assets)
	return out.Bytes(), err
}

// exampleTabs are the operations the page opens with: each
// examples/NAME.graphql in name order, with the variables of
// examples/NAME.json when there is one.
func exampleTabs() ([]tab, error) {
	names, err := fs.Glob(files, "examples/*.graphql")
	if err != nil {
		return nil, err
	}
	var tabs []tab
	for _, name := range names {
		query, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, err
		}
		t := tab{Query: string(query)}
		if vars, err := fs.ReadFile(files, strings.TrimSuffix(name, ".graphql")+".json"); err == nil {
			t.Variables = string(vars)
		}
		tabs = append(tabs, t)
	}
	return tabs, nil
}

// relativeDate is a variable's value "$today", or "$today+Nd" for N days
// later, in an example's variables.
var relativeDate = regexp.MustCompile(`"\$today(?:\+([0-9]{1,4})d)?"`)

// RelativeDates writes the relative dates of vars as of now (today at
// 00:00 UTC, plus the days asked), so that the example tabs ask about the
// coming days whenever the page is opened (and the examples of docs/, as
// their test runs them).
func RelativeDates(vars string, now time.Time) string {
	today := now.UTC().Truncate(24 * time.Hour)
	return relativeDate.ReplaceAllStringFunc(vars, func(m string) string {
		days := 0
		if sub := relativeDate.FindStringSubmatch(m); sub[1] != "" {
			days, _ = strconv.Atoi(sub[1])
		}
		return `"` + today.AddDate(0, 0, days).Format(time.RFC3339) + `"`
	})
}

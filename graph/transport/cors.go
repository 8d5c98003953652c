package transport

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// corsMaxAge is how long browsers may cache a preflight answer, in seconds.
const corsMaxAge = "600"

// originAllowed reports whether a browser page from origin may call the
// API: listed exactly ("https://app.example.com"), or everything with "*".
func originAllowed(allowed []string, origin string) bool {
	return slices.Contains(allowed, "*") || slices.Contains(allowed, origin)
}

// withCORS answers preflight requests and marks responses readable by the
// allowed origins. Same-origin pages (GraphiQL) need no header; any other
// origin gets none, so browsers keep its pages from reading responses, and
// its preflights are refused with 403.
func withCORS(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		ok := origin != "" && originAllowed(allowed, origin)
		if ok {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			// Content-Disposition: an export's file name.
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Content-Disposition")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !ok {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Accept, Authorization, X-Request-Id")
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// websocketOriginPatterns turns allowed origins into the patterns the
// WebSocket handshake checks the Origin header against ("scheme://host").
func websocketOriginPatterns(allowed []string) (patterns []string, any bool) {
	for _, o := range allowed {
		if o == "*" {
			return nil, true
		}
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			patterns = append(patterns, strings.ToLower(u.Scheme+"://"+u.Host))
		}
	}
	return patterns, false
}

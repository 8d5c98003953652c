package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"referrals/graph/importer"
	"referrals/graph/transport"
	"referrals/storage"
)

// routes wires the endpoints of the runtime contract. /healthz, /readyz
// and the playground (page at /, its files under /playground/) are
// public; /query authenticates every request in its edge,
// /export/referrals and /import/referrals as /query does and hold a
// stream slot, and /metrics needs an admin token in authenticated mode.
func routes(api *transport.Handler, exports, imports, page http.Handler, store *storage.Store, auth *transport.Auth, logger *slog.Logger, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/query", api)
	mux.Handle("/export/referrals", api.Stream(exports)) // GET, HEAD and CORS preflights
	mux.Handle("/import/referrals", api.Upload(imports)) // POST and CORS preflights
	mux.Handle("GET /{$}", api.Logged(slog.LevelInfo, page))
	mux.Handle("GET /playground/", api.Logged(slog.LevelInfo, page))
	// Probes come every few seconds: logged at debug.
	mux.Handle("GET /healthz", api.Logged(slog.LevelDebug, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})))
	mux.Handle("GET /readyz", api.Logged(slog.LevelDebug, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := store.Ready(ctx); err != nil {
			logger.Warn("not ready", "error", err)
			http.Error(w, "store cannot answer queries", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})))
	mux.Handle("GET /metrics", api.Logged(slog.LevelInfo, auth.Authenticated(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))))
	mux.Handle("/", api.Logged(slog.LevelInfo, http.NotFoundHandler())) // every other path: 404, logged too
	return mux
}

// newImporter is the import handler over store, with files up to
// maxBytes.
func newImporter(store *storage.Store, logger *slog.Logger, maxBytes int64) http.Handler {
	h := importer.New(store, logger)
	h.Limits.MaxBytes = maxBytes
	return h
}

// displayAddr turns a wildcard listen address ("[::]:8080") into one a
// browser can open ("localhost:8080").
func displayAddr(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return "localhost:" + strconv.Itoa(tcp.Port)
	}
	return addr.String()
}

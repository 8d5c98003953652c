// Package export serves GET /export/referrals: every referral matching a
// filter, streamed as CSV or JSON Lines.
//
// It reads through the GraphQL executor, a page of the `referrals`
// connection at a time with its keyset cursor, so an export is validated,
// limited and scoped to the caller exactly as the API's own reads are, and
// holds one page in memory whatever its size. It imports the executor's
// interface and the HTTP edge's error writer, not the GraphQL layer.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"referrals/graph/transport"
	"referrals/storage"
)

// pageSize is how many referrals one read of an export asks for: the
// largest page of the API.
const pageSize = storage.MaxPageSize

// Media types of the export, asked for with Accept.
const (
	mediaCSV    = "text/csv"
	MediaNDJSON = "application/x-ndjson"
)

// ReferralFields is the selection of a referral that an export writes a
// line of, and that a webhook delivery's body holds.
const ReferralFields = `id createdDateTime updatedDateTime version status statusReason referralSource
      customerProfile {
        id name size
        address { addressLine1 addressLine2 city state postalCode country }
        contacts { firstName lastName email phoneNumber }
      }
      details {
        notes dealValue closingDate
        requirements { industryFocus { id } products { id } serviceTypes { id } solutions { id } }
      }
      participants {
        id createdDateTime organizationId organizationName locationId status expirationDateTime invitedByParticipantId
        users { id firstName lastName email phoneNumber }
      }`

// exportQuery is what an export reads, one page at a time.
var exportQuery = fmt.Sprintf(`query Export($filter: ReferralFilter, $orderBy: ReferralOrder, $after: String) {
  referrals(filter: $filter, orderBy: $orderBy, first: %d, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      %s
    }
  }
}`, pageSize, ReferralFields)

// Limits bound how long an export may hold its connection and stream
// slot: a client that reads slowly, or not at all, would otherwise keep
// both for as long as it likes (one reading a byte a second held an
// export for minutes).
type Limits struct {
	// Each ProgressBytes of the export (or what is left of a page) must be
	// taken by the client within ProgressInterval of being offered.
	ProgressBytes    int
	ProgressInterval time.Duration
	// MaxDuration bounds the whole export; past it the export ends.
	MaxDuration time.Duration
}

// defaultLimits are the limits of New: at least 64 KiB every 30 s (about
// 2 KiB/s, a tenth of a slow mobile link) and 15 minutes in all (the whole
// export of 100,000 referrals took 19 s to 162 s here).
var defaultLimits = Limits{ProgressBytes: 64 << 10, ProgressInterval: 30 * time.Second, MaxDuration: 15 * time.Minute}

// Handler serves exports over a GraphQL executor. The request's context
// must carry its caller (transport.Handler.Stream).
type Handler struct {
	exec   graphql.GraphExecutor
	logger *slog.Logger
	// Limits are defaultLimits unless changed before the handler serves.
	Limits Limits
}

// New returns the export handler over exec.
func New(exec graphql.GraphExecutor, logger *slog.Logger) *Handler {
	return &Handler{exec: exec, logger: logger, Limits: defaultLimits}
}

// ServeHTTP streams the export. `filter` and `orderBy` are JSON in the
// query string, as the `referrals` arguments take them. Anything wrong
// with them is answered 400 BAD_USER_INPUT (with the API's error shape)
// before the first byte of the export, an Accept that allows neither
// format 406; a failure after that ends the stream with an error line.
// HEAD answers the headers of the export after validating the query, and
// reads no referral.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ndjson, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		transport.WriteErrorStatus(w, http.StatusNotAcceptable, storage.CodeBadUserInput,
			fmt.Sprintf("Accept: the export is served as %s or %s only", mediaCSV, MediaNDJSON))
		return
	}
	// Go's r.URL.Query() drops a pair it cannot read (an unencoded ";"),
	// which would export everything instead of the filtered rows.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		transport.WriteError(w, storage.CodeBadUserInput, "the query string cannot be read ("+err.Error()+"): percent-encode filter and orderBy, \";\" as %3B")
		return
	}
	// A parameter the export does not know (a misspelt FILTER=) is refused
	// rather than ignored, which would export everything.
	for name := range query {
		if name != "filter" && name != "orderBy" {
			transport.WriteError(w, storage.CodeBadUserInput, fmt.Sprintf("%.100q is not a parameter of the export: give filter and orderBy only (names are case-sensitive)", name))
			return
		}
	}
	vars := map[string]any{}
	for _, name := range []string{"filter", "orderBy"} {
		if len(query[name]) > 1 {
			transport.WriteError(w, storage.CodeBadUserInput, fmt.Sprintf("%s: given %d times; give it once", name, len(query[name])))
			return
		}
		raw := query.Get(name)
		if raw == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber() // Decimal amounts stay digit for digit
		var v map[string]any
		if err := dec.Decode(&v); err != nil || dec.More() {
			transport.WriteError(w, storage.CodeBadUserInput, fmt.Sprintf("%s: not a JSON object: give it as the %s argument of `referrals` is written in JSON", name, name))
			return
		}
		vars[name] = v
	}
	paced := newPacedWriter(w, h.Limits)
	out := newWriter(paced, ndjson)
	if r.Method == http.MethodHead {
		if _, _, err := h.prepare(r.Context(), vars); err != nil {
			transport.WriteError(w, err.code, err.message)
			return
		}
		out.start(w)
		return
	}
	// A page is read to its end even when the client leaves (or the server
	// shuts down) meanwhile, and the export stops before the next: its
	// reads are never cut short, so a client hanging up is no failure of
	// the store's.
	ctx := context.WithoutCancel(r.Context())
	for started := false; ; started = true {
		if r.Context().Err() != nil {
			if errors.Is(context.Cause(r.Context()), transport.ErrShuttingDown) {
				// The client is still there: say why its file ends here.
				h.logger.InfoContext(ctx, "export ended: the server is shutting down", "request_id", transport.RequestID(ctx))
				err := &pageError{code: storage.CodeShuttingDown, message: "the server is shutting down; export again once it is back"}
				if !started {
					transport.WriteError(w, err.code, err.message)
					return
				}
				out.fail(err)
				return
			}
			h.logger.DebugContext(ctx, "export ended early: the client went away", "request_id", transport.RequestID(ctx))
			return
		}
		if started && paced.overdue() {
			h.logger.InfoContext(ctx, "export ended: it took longer than its bound", "request_id", transport.RequestID(ctx), "max_duration", h.Limits.MaxDuration)
			out.fail(&pageError{code: storage.CodeComplexityLimit, message: fmt.Sprintf("exports end after %s; export less at a time (a narrower filter, such as a createdDateTime range)", h.Limits.MaxDuration)})
			return
		}
		p, err := h.page(ctx, vars)
		switch {
		case err != nil && !started:
			transport.WriteError(w, err.code, err.message)
			return
		case err != nil:
			out.fail(err)
			return
		case !started:
			out.start(w)
		}
		if err := out.rows(p.Nodes); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				h.logger.InfoContext(ctx, "export ended: the client did not read it in time", "request_id", transport.RequestID(ctx))
				return
			}
			h.logger.DebugContext(ctx, "export ended early: the client went away", "request_id", transport.RequestID(ctx), "error", err)
			return
		}
		if !p.PageInfo.HasNextPage {
			_ = out.flush()
			return
		}
		vars["after"] = p.PageInfo.EndCursor
	}
}

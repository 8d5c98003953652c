package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"referrals/graph/transport/transporttest"
	"referrals/internal/testclock"
	"referrals/storage"
)

// BenchmarkEnvelope measures what the embedded store serves at 200, 2,000
// and 10,000 demo referrals (and 100,000 with -envelope.large), each
// operation the ways it can be done in one run:
//
//   - graphql: the whole HTTP handler;
//   - raw: the fewest driver commands that do the same on this store,
//     decoded and encoded with encoding/json: a read by _id, an update by
//     _id, one query per page (no claims, no change records, no scope).
//     FerretDB reads every referral for a page's query, so the raw pages
//     are left out past 10,000 referrals (47 s each at 100,000).
//
// Operations: read one referral by id with its participants, a versioned
// update, an invitation answer, a page of 20 with participants and tags
// (the nested page), a page with a filter and its totalCount, a plain page
// of 20, the README's first example, a filtered count, statistics by
// status and country, the worst filter the API allows (a name contains a
// text, ordered by deal value, with its count); a whole JSON Lines export
// (referrals/s); and, through the store, the expiry sweep of a tenth as
// many invitations as referrals while reads by id go on. Each reports its
// time per operation as p50 and p99 (ms) and its reads of the store per
// operation: MongoDB commands, and the selections the embedded read
// planner answers.
//
// The change feed's reader runs, as in a server. Under -short (CI) only
// 200 referrals. The README's table:
//
//	go test ./graph -run '^$' -bench Envelope -benchtime 10x -timeout 60m -envelope.large
func BenchmarkEnvelope(b *testing.B) {
	// As the server runs unless GOGC is set (serverGCPercent in main).
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	sizes := []int{200, 2000, 10000}
	if *envelopeLarge {
		sizes = append(sizes, 100_000)
	}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("referrals=%d", n), func(b *testing.B) {
			clock := testclock.At(testAnchor)
			e := newEnvAt(b, n, clock.Now)
			client, err := mongo.Connect(options.Client().ApplyURI(testURI).SetMonitor(commands.monitor()))
			if err != nil {
				b.Fatal(err)
			}
			defer client.Disconnect(context.Background())
			db := client.Database(e.db)
			for _, op := range envelopeOps(e, db) {
				for _, variant := range []string{"graphql", "raw"} {
					run := op.graphql
					if variant == "raw" {
						run = op.raw
					}
					if run == nil || (variant == "raw" && op.scans && n > 10000) {
						continue
					}
					b.Run(fmt.Sprintf("op=%s/variant=%s", op.name, variant), func(b *testing.B) {
						measure(b, e, op.prepare, run)
					})
				}
			}
			b.Run("op=export", func(b *testing.B) { benchExport(b, e, n) })
			b.Run("op=sweep", func(b *testing.B) { benchSweep(b, e, clock, n/10) })
		})
	}
}

// envelopeLarge adds 100,000 referrals to BenchmarkEnvelope (seeding them
// takes minutes).
var envelopeLarge = flag.Bool("envelope.large", false, "BenchmarkEnvelope: also measure 100,000 referrals")

// benchExport streams the whole JSON Lines export and reports referrals
// per second.
func benchExport(b *testing.B, e *env, n int) {
	h := exportServer(b, e)
	bearer := transporttest.Token(b, []byte(transporttest.Secret), jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	var rows int
	start := time.Now()
	for b.Loop() {
		w := &heapSampler{ResponseRecorder: httptest.NewRecorder()}
		req := httptest.NewRequest(http.MethodGet, "/export/referrals", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Accept", "application/x-ndjson")
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.rows < n {
			b.Fatalf("status %d, %d lines, want %d", w.Code, w.rows, n+1)
		}
		rows += w.rows
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "referrals/s")
}

// benchOrgs numbers the organizations the envelope invites, so that each
// invitation is new.
var benchOrgs atomic.Int64

// envelopeOp is one operation of the envelope: prepare (may be nil) makes
// what one run needs, untimed; graphql and raw do it.
type envelopeOp struct {
	name string
	// scans: FerretDB reads every referral for the raw variant.
	scans        bool
	prepare      func(ctx context.Context, i int) (any, error)
	graphql, raw func(ctx context.Context, arg any) error
}

func envelopeOps(e *env, db *mongo.Database) []envelopeOp {
	admin := storage.WithCaller(context.Background(), storage.Caller{Subject: "bench", Role: storage.RoleAdmin})
	refs := openReferrals(e.referrals)
	pick := func(_ context.Context, i int) (any, error) { return refs[(i*7919)%len(refs)].ID, nil }
	current := func(ctx context.Context, i int) (any, error) {
		id, _ := pick(ctx, i)
		got, err := e.store.ReferralsByID(admin, []string{id.(string)})
		return got[id.(string)], err
	}
	invitation := func(ctx context.Context, i int) (any, error) {
		id, _ := pick(ctx, i)
		return e.store.InviteParticipant(admin, id.(string), storage.InviteInput{
			OrganizationID: fmt.Sprint("bench-", benchOrgs.Add(1)), OrganizationName: "Bench Partners"})
	}
	return []envelopeOp{
		{
			name: "readByID", prepare: pick,
			graphql: func(_ context.Context, id any) error {
				return e.benchPost(`query R($id: ID!) { referral(id: $id) { id version status
					customerProfile { name address { city country } } details { dealValue closingDate }
					participants { id organizationName status } } }`, map[string]any{"id": id})
			},
			raw: func(ctx context.Context, id any) error {
				var r storage.Referral
				if err := db.Collection("referrals").FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r); err != nil {
					return err
				}
				parts := make([]storage.Participant, len(r.Participation))
				g, gctx := errgroup.WithContext(ctx)
				for i, p := range r.Participation {
					g.Go(func() error {
						return db.Collection("participants").FindOne(gctx, bson.D{{Key: "_id", Value: p.ParticipantID}}).Decode(&parts[i])
					})
				}
				if err := g.Wait(); err != nil {
					return err
				}
				return json.NewEncoder(io.Discard).Encode(map[string]any{"referral": r, "participants": parts})
			},
		},
		{
			name: "update", prepare: current,
			graphql: func(_ context.Context, r any) error {
				ref := r.(*storage.Referral)
				return e.benchPost(`mutation U($id: ID!, $v: Int!) { updateReferral(id: $id, expectedVersion: $v,
					patch: { details: { notes: "benchmark" } }) { id version } }`, map[string]any{"id": ref.ID, "v": ref.Version})
			},
			raw: func(ctx context.Context, r any) error {
				var after storage.Referral
				err := db.Collection("referrals").FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: r.(*storage.Referral).ID}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "details.notes", Value: "benchmark"}, {Key: "updatedDateTime", Value: time.Now()}}},
						{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}},
					options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&after)
				if err != nil {
					return err
				}
				return json.NewEncoder(io.Discard).Encode(map[string]any{"id": after.ID, "version": after.Version})
			},
		},
		{
			name: "answer", prepare: invitation,
			graphql: func(_ context.Context, p any) error {
				return e.benchPost(`mutation A($id: ID!) { respondToInvitation(participantId: $id, response: ACCEPT) { id status } }`,
					map[string]any{"id": p.(*storage.Participant).ID})
			},
			raw: func(ctx context.Context, p any) error {
				part := p.(*storage.Participant)
				if _, err := db.Collection("participants").UpdateOne(ctx, bson.D{{Key: "_id", Value: part.ID}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: storage.ParticipantAccepted}}}}); err != nil {
					return err
				}
				var r storage.Referral
				if err := db.Collection("referrals").FindOne(ctx, bson.D{{Key: "_id", Value: part.ReferralID}}).Decode(&r); err != nil {
					return err
				}
				for i := range r.Participation {
					if r.Participation[i].ParticipantID == part.ID {
						r.Participation[i].Status = storage.ParticipantAccepted
						r.Participation[i].OrgStatus = part.OrganizationID + "/" + string(storage.ParticipantAccepted)
					}
				}
				_, err := db.Collection("referrals").UpdateOne(ctx, bson.D{{Key: "_id", Value: r.ID}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "participation", Value: r.Participation}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}})
				if err != nil {
					return err
				}
				return json.NewEncoder(io.Discard).Encode(map[string]any{"id": part.ID, "status": "ACCEPTED"})
			},
		},
		{
			name: "nestedPage", scans: true,
			graphql: func(context.Context, any) error {
				return e.benchPost(nestedPageQuery, map[string]any{"first": 20})
			},
			raw: func(ctx context.Context, _ any) error { return rawPage(ctx, db, 20, false) },
		},
		{
			name: "plainPage",
			graphql: func(context.Context, any) error {
				return e.benchPost(`{ referrals(first: 20) { nodes { id status } } }`, nil)
			},
		},
		{
			name: "readmeExample",
			graphql: func(context.Context, any) error {
				return e.benchPost(`{ referrals(filter: { status: [PENDING, ACTIVE], customerCountry: ["DE", "GB"], dealValue: { min: "100000" } },
					orderBy: { field: DEAL_VALUE, direction: DESC }, first: 10) { totalCount pageInfo { hasNextPage endCursor }
					nodes { id status customerProfile { name address { city country } } details { dealValue closingDate }
					participants { organizationName status invitedBy { organizationName } } } } }`, nil)
			},
		},
		{
			name: "count",
			graphql: func(context.Context, any) error {
				return e.benchPost(`{ referrals(filter: { status: [ACTIVE], referralSource: [PARTNER_LED] }) { totalCount } }`, nil)
			},
		},
		{
			name: "stats",
			graphql: func(context.Context, any) error {
				return e.benchPost(`{ referralStats(groupBy: [STATUS, CUSTOMER_COUNTRY]) { groupCount
					groups { key { status customerCountry } measures { count won lost dealValue { sum average } } } } }`, nil)
			},
		},
		{
			name: "worstFilter",
			graphql: func(context.Context, any) error {
				return e.benchPost(`{ referrals(first: 20, filter: { customerName: "ing" }, orderBy: { field: DEAL_VALUE, direction: DESC }) {
					totalCount nodes { id customerProfile { name } } } }`, nil)
			},
		},
		{
			name: "filteredPage", scans: true,
			graphql: func(context.Context, any) error {
				return e.benchPost(`{ referrals(first: 20, filter: { status: [PENDING, ACTIVE], customerCountry: ["GB", "DE"] },
					orderBy: { field: DEAL_VALUE, direction: DESC }) { totalCount nodes { id status details { dealValue } } } }`, nil)
			},
			raw: func(ctx context.Context, _ any) error {
				filter := bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{"Pending", "Active"}}}},
					{Key: "customerProfile.address.country", Value: bson.D{{Key: "$in", Value: bson.A{"GB", "DE"}}}}}
				var page []storage.Referral
				var total int64
				g, gctx := errgroup.WithContext(ctx)
				g.Go(func() error {
					cur, err := db.Collection("referrals").Find(gctx, filter, options.Find().
						SetSort(bson.D{{Key: "details.dealValueCents", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(-21))
					if err != nil {
						return err
					}
					return cur.All(gctx, &page)
				})
				g.Go(func() (err error) {
					total, err = db.Collection("referrals").CountDocuments(gctx, filter)
					return err
				})
				if err := g.Wait(); err != nil {
					return err
				}
				return json.NewEncoder(io.Discard).Encode(map[string]any{"totalCount": total, "nodes": page[:min(20, len(page))]})
			},
		},
	}
}

// benchPost serves one GraphQL request and fails on any error in it.
func (e *env) benchPost(query string, vars map[string]any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	if rec.Code != 200 || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
		return fmt.Errorf("status %d: %.300s", rec.Code, rec.Body)
	}
	return nil
}

// measure runs op b.N times, each after an untimed prepare, and reports
// the p50 and p99 of its times and the MongoDB commands it sent.
func measure(b *testing.B, e *env, prepare func(context.Context, int) (any, error), op func(context.Context, any) error) {
	ctx := context.Background()
	b.ReportAllocs()
	times := make([]time.Duration, 0, b.N)
	cmds := 0
	for i := range b.N {
		b.StopTimer()
		var arg any
		if prepare != nil {
			var err error
			if arg, err = prepare(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
		e.reads()
		b.StartTimer()
		start := time.Now()
		if err := op(ctx, arg); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		cmds += len(e.reads())
		b.StartTimer()
	}
	p50, p99 := percentiles(times)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
}

// percentiles returns the p50 and p99 of times, in milliseconds.
func percentiles(times []time.Duration) (p50, p99 float64) {
	if len(times) == 0 {
		return 0, 0
	}
	slices.Sort(times)
	at := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))]) / 1e6 }
	return at(0.5), at(0.99)
}

// benchSweep invites due organizations (untimed), moves the store's clock
// past their expiration, and times ExpireInvitations while one client reads
// referrals by id through the API the whole time. It reports the sweep's
// seconds and the reads' p50 and p99 meanwhile.
func benchSweep(b *testing.B, e *env, clock *testclock.Clock, due int) {
	admin := storage.WithCaller(context.Background(), storage.Caller{Subject: "bench", Role: storage.RoleAdmin})
	var sweeps []time.Duration
	var reads []time.Duration
	open := openReferrals(e.referrals)
	for range b.N {
		b.StopTimer()
		expires := clock.Now().Add(time.Hour)
		g, ctx := errgroup.WithContext(admin)
		g.SetLimit(4)
		for j := range due {
			g.Go(func() error {
				_, err := e.store.InviteParticipant(ctx, open[j%len(open)].ID, storage.InviteInput{
					OrganizationID: fmt.Sprint("due-", benchOrgs.Add(1)), OrganizationName: "Due", ExpirationDateTime: &expires})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		clock.Advance(2 * time.Hour)
		b.StartTimer()

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var readErr error
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				if err := e.benchPost(`query R($id: ID!) { referral(id: $id) { id version participants { id status } } }`,
					map[string]any{"id": e.referrals[(k*7919)%len(e.referrals)].ID}); err != nil {
					readErr = err
					return
				}
				reads = append(reads, time.Since(start))
			}
		})
		start := time.Now()
		n, err := e.store.ExpireInvitations(admin)
		sweeps = append(sweeps, time.Since(start))
		close(stop)
		wg.Wait()
		if err != nil || readErr != nil {
			b.Fatal(err, readErr)
		}
		if n < due {
			b.Fatalf("the sweep expired %d of %d", n, due)
		}
	}
	slices.Sort(sweeps)
	p50, p99 := percentiles(reads)
	b.ReportMetric(sweeps[len(sweeps)/2].Seconds(), "sweep-s")
	b.ReportMetric(float64(due), "expired")
	b.ReportMetric(p50, "read-p50-ms")
	b.ReportMetric(p99, "read-p99-ms")
}

// openReferrals returns the referrals of refs that are not ARCHIVED, which
// are read-only.
func openReferrals(refs []storage.Referral) []storage.Referral {
	var out []storage.Referral
	for _, r := range refs {
		if r.Status != storage.ReferralArchived {
			out = append(out, r)
		}
	}
	return out
}

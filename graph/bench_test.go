package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"referrals/storage"
)

// BenchmarkNestedPage measures a page of N referrals with participants,
// users, invitedBy and all four tag lists, three ways on one seeded store:
//
//   - raw: the same reads with the driver (page, count, participants $in,
//     tags $in), overlapping the independent ones as the server does,
//     decoded into structs and encoded with encoding/json: the floor any
//     server must spend;
//   - naive: one find per participant list and per tag: what the loaders
//     exist to avoid;
//   - graphql: the whole HTTP handler with loaders and query cache.
//
// Run: go test ./graph -run '^$' -bench NestedPage -count 6 | tee bench.txt
// and compare with benchstat (see README).
func BenchmarkNestedPage(b *testing.B) {
	e := newEnv(b, demoSize)
	client, err := mongo.Connect(options.Client().ApplyURI(testURI).SetMonitor(commands.monitor()))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	db := client.Database(e.db)

	for _, n := range []int{1, 20, 100} {
		b.Run(fmt.Sprintf("variant=raw/N=%d", n), func(b *testing.B) {
			benchLoop(b, e, n, func(ctx context.Context) error { return rawPage(ctx, db, n, false) })
		})
		b.Run(fmt.Sprintf("variant=naive/N=%d", n), func(b *testing.B) {
			benchLoop(b, e, n, func(ctx context.Context) error { return rawPage(ctx, db, n, true) })
		})
		b.Run(fmt.Sprintf("variant=graphql/N=%d", n), func(b *testing.B) {
			vars := map[string]any{"first": n}
			benchLoop(b, e, n, func(context.Context) error { return e.benchPost(nestedPageQuery, vars) })
		})
	}
}

// benchLoop runs one variant and reports MongoDB commands per request.
func benchLoop(b *testing.B, e *env, n int, page func(context.Context) error) {
	ctx := context.Background()
	b.ReportAllocs()
	commands.take(e.db)
	for b.Loop() {
		if err := page(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(commands.take(e.db)))/float64(b.N), "cmds/op")
}

// Result shapes of the raw variants, as the GraphQL response shows them.
type (
	rawTag struct {
		ID       string `json:"id"`
		Category string `json:"category"`
		Name     string `json:"name"`
	}
	rawInviter struct {
		ID               string `json:"id"`
		OrganizationName string `json:"organizationName"`
	}
	rawParticipant struct {
		*storage.Participant
		InvitedBy *rawInviter `json:"invitedBy"`
	}
	rawReferral struct {
		*storage.Referral
		Tags         map[string][]rawTag `json:"tags"`
		Participants []rawParticipant    `json:"participants"`
	}
)

// rawPage reads and encodes one nested page straight through the driver;
// naive reads each participant list and each tag with its own find.
func rawPage(ctx context.Context, db *mongo.Database, n int, naive bool) error {
	var refs []*storage.Referral
	var total int64
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		cur, err := db.Collection("referrals").Find(gctx, bson.D{},
			options.Find().SetSort(bson.D{{Key: "customerProfile.name", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(-int64(n+1)))
		if err != nil {
			return err
		}
		return cur.All(gctx, &refs)
	})
	g.Go(func() (err error) {
		total, err = db.Collection("referrals").CountDocuments(gctx, bson.D{})
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	refs = refs[:min(n, len(refs))]
	ids := make([]string, len(refs))
	var tagIDs []string
	for i, r := range refs {
		ids[i] = r.ID
		for c, list := range requirementLists(r) {
			for _, id := range list {
				tagIDs = append(tagIDs, string(c)+":"+id)
			}
		}
	}
	var parts []*storage.Participant
	var tags []*storage.Tag
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		parts, err = findAll[storage.Participant](gctx, db.Collection("participants"), "referralId", ids, naive)
		return err
	})
	g.Go(func() (err error) {
		tags, err = findAll[storage.Tag](gctx, db.Collection("tags"), "_id", tagIDs, naive)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	byReferral := map[string][]*storage.Participant{}
	byID := map[string]*storage.Participant{}
	for _, p := range parts {
		byReferral[p.ReferralID] = append(byReferral[p.ReferralID], p)
		byID[p.ID] = p
	}
	tagByKey := map[string]*storage.Tag{}
	for _, t := range tags {
		tagByKey[string(t.Category)+":"+t.ID] = t
	}
	out := make([]rawReferral, len(refs))
	for i, r := range refs {
		out[i] = rawReferral{Referral: r, Tags: map[string][]rawTag{}}
		for c, list := range requirementLists(r) {
			for _, id := range list {
				t := tagByKey[string(c)+":"+id]
				out[i].Tags[string(c)] = append(out[i].Tags[string(c)], rawTag{t.ID, string(t.Category), t.Name})
			}
		}
		for _, p := range byReferral[r.ID] {
			rp := rawParticipant{Participant: p}
			if p.InvitedByParticipantID != nil {
				inv := byID[*p.InvitedByParticipantID]
				rp.InvitedBy = &rawInviter{inv.ID, inv.OrganizationName}
			}
			out[i].Participants = append(out[i].Participants, rp)
		}
	}
	return json.NewEncoder(io.Discard).Encode(map[string]any{"totalCount": total, "nodes": out})
}

func requirementLists(r *storage.Referral) map[storage.TagCategory][]string {
	q := r.Details.Requirements
	return map[storage.TagCategory][]string{
		storage.TagIndustryFocus: q.IndustryFocus, storage.TagProducts: q.Products,
		storage.TagServiceTypes: q.ServiceTypes, storage.TagSolutions: q.Solutions,
	}
}

// findAll reads the documents whose field is one of values: with one $in,
// or naively with one find per value.
func findAll[T any](ctx context.Context, coll *mongo.Collection, field string, values []string, naive bool) ([]*T, error) {
	var filters []bson.D
	if naive {
		for _, v := range values {
			filters = append(filters, bson.D{{Key: field, Value: v}})
		}
	} else {
		filters = []bson.D{{{Key: field, Value: bson.D{{Key: "$in", Value: values}}}}}
	}
	var out []*T
	for _, f := range filters {
		cur, err := coll.Find(ctx, f, options.Find().SetBatchSize(1000))
		if err != nil {
			return nil, err
		}
		var docs []*T
		if err := cur.All(ctx, &docs); err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

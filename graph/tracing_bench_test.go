package graph

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"referrals/storage"
)

// readByIDQuery is the operation of BenchmarkReadByID.
const readByIDQuery = `query ReferralByID($id: ID!) { referral(id: $id) { id status customerProfile { name } } }`

// BenchmarkReadByID measures one referral read by id, three ways on one
// seeded store, to show what tracing costs:
//
//   - raw: the driver's FindOne by _id, decoded and encoded with
//     encoding/json: the floor any server must spend;
//   - tracing-off: the whole HTTP handler as the server builds it without
//     the OpenTelemetry variables, which installs nothing of tracing;
//   - tracing-on: the same handler and store with every layer traced, each
//     span sampled and batched to an exporter that discards it.
//
// Run: go test ./graph -run '^$' -bench ReadByID -count 6 | tee bench.txt
// and compare with benchstat (see README, "Traces"). The raw and off
// variants use only what the code had before tracing, so the same file
// run on an older commit compares off with the code before it.
func BenchmarkReadByID(b *testing.B) {
	e := newEnv(b, demoSize)
	client, err := mongo.Connect(options.Client().ApplyURI(testURI))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database(e.db).Collection("referrals")
	ids := make([]string, len(e.referrals))
	for i, r := range e.referrals {
		ids[i] = r.ID
	}
	read := func(b *testing.B, one func(id string) error) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := one(ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("variant=raw", func(b *testing.B) {
		read(b, func(id string) error {
			var ref storage.Referral
			if err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&ref); err != nil {
				return err
			}
			return json.NewEncoder(io.Discard).Encode(map[string]any{"data": map[string]any{"referral": &ref}})
		})
	})
	b.Run("variant=tracing-off", func(b *testing.B) {
		read(b, func(id string) error { return e.benchPost(readByIDQuery, map[string]any{"id": id}) })
	})
	b.Run("variant=tracing-on", func(b *testing.B) {
		on := tracedEnv(b, e)
		read(b, func(id string) error { return on.benchPost(readByIDQuery, map[string]any{"id": id}) })
	})
}

// tracedEnv is e served traced into an exporter that discards every span,
// through a batch as the server sends them, on a client of its own to e's
// database.
func tracedEnv(b *testing.B, e *env) *env {
	b.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx := context.Background()
	store, err := storage.Connect(ctx, storage.Options{URI: testURI, Database: e.db, Tracing: tp, Embedded: testEmbedded})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close(context.Background()) })
	if err := store.Prepare(ctx); err != nil {
		b.Fatal(err)
	}
	on := *e
	on.store, on.handler = store, tracedRoutes(store, e.broker, e.auth, tp)
	return &on
}

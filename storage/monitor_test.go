package storage

import (
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestCommandSpans: a command sent within a traced operation is a client
// span, child of the operation's, named for the command and its collection,
// with the database, collection and server (the embedded store's socket
// here, host and port over TCP); a failed one carries MongoDB's
// error code and no message; commands outside a trace (Prepare's, here)
// make no spans.
func TestCommandSpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	s := openTestStore(t, Options{Tracing: tp, Pushdown: PushdownIndexed})
	if got := spans.GetSpans(); len(got) != 0 {
		t.Fatalf("%d spans outside a trace, the first %q", len(got), got[0].Name)
	}

	ctx, parent := tp.Tracer("test").Start(asAdmin(t), "request")
	var doc bson.Raw
	_ = s.referrals.FindOne(ctx, bson.D{{Key: "_id", Value: "none"}}).Decode(&doc)
	failed := s.db.RunCommand(ctx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err()
	parent.End()
	if failed == nil {
		t.Fatal("noSuchCommand succeeded")
	}

	got := map[string]tracetest.SpanStub{}
	for _, sp := range spans.GetSpans() {
		got[sp.Name] = sp
	}
	find, ok := got["find referrals"]
	if !ok {
		t.Fatalf("no span \"find referrals\" in %v", got)
	}
	if find.Parent.SpanID() != parent.SpanContext().SpanID() || find.SpanKind != trace.SpanKindClient || find.Status.Code == codes.Error {
		t.Errorf("find: parent %v, kind %v, status %v; want the request's span, client, ok", find.Parent.SpanID(), find.SpanKind, find.Status)
	}
	attrs := func(sp tracetest.SpanStub) map[string]string {
		m := map[string]string{}
		for _, a := range sp.Attributes {
			m[string(a.Key)] = a.Value.Emit()
		}
		return m
	}
	socket, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(testEmbedded.URI(), "mongodb://"), "/")) // the embedded store's socket
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"db.system.name": "mongodb", "db.operation.name": "find", "db.namespace": s.db.Name(),
		"db.collection.name": "referrals", "server.address": socket} {
		if v := attrs(find)[k]; v != want {
			t.Errorf("find: %s = %q, want %q", k, v, want)
		}
	}
	bad, ok := got["noSuchCommand"]
	if !ok {
		t.Fatalf("no span \"noSuchCommand\" in %v", got)
	}
	if bad.Status.Code != codes.Error || bad.Status.Description != "command failed" || attrs(bad)["db.response.status_code"] != "59" {
		t.Errorf("failed command: status %v, attributes %v; want an error, \"command failed\", code 59 (CommandNotFound)", bad.Status, attrs(bad))
	}
}

// TestServerAddress: a command span's server is read from the driver's
// connection id, TCP or Unix socket.
func TestServerAddress(t *testing.T) {
	for _, tc := range []struct {
		id, host string
		port     int
	}{
		{"127.0.0.1:27017[-3]", "127.0.0.1", 27017},
		{"db1.example.net:27018[-12]", "db1.example.net", 27018},
		{"[::1]:27017[-1]", "::1", 27017},
		{"/tmp/mongodb-27017.sock[-3]", "/tmp/mongodb-27017.sock", 0},
	} {
		if host, port := serverAddress(tc.id); host != tc.host || port != tc.port {
			t.Errorf("serverAddress(%q) = %q, %d; want %q, %d", tc.id, host, port, tc.host, tc.port)
		}
	}
}

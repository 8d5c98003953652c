package sqlplan

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// storedReferral is a referral as FerretDB v1 stores it, for decode.
var storedReferral = []byte(`{"$s":{"p":{"_id":{"t":"string"},"createdDateTime":{"t":"date"},"version":{"t":"long"},"status":{"t":"string"},"customerProfile":{"t":"object","$s":{"p":{"name":{"t":"string"},"address":{"t":"object","$s":{"p":{"city":{"t":"string"},"country":{"t":"string"}},"$k":["city","country"]}},"contacts":{"t":"array","i":[{"t":"object","$s":{"p":{"firstName":{"t":"string"},"email":{"t":"string"}},"$k":["firstName","email"]}}]}},"$k":["name","address","contacts"]}},"details":{"t":"object","$s":{"p":{"dealValue":{"t":"long"},"notes":{"t":"string"},"ratio":{"t":"double"},"ok":{"t":"bool"},"tags":{"t":"array","i":[{"t":"string"},{"t":"string"}]}},"$k":["dealValue","notes","ratio","ok","tags"]}},"statusReason":{"t":"null"},"writer":{"t":"objectId"}},"$k":["_id","createdDateTime","version","status","customerProfile","details","statusReason","writer"]},"_id":"r-1","createdDateTime":1764720000000,"version":3,"status":"Active","customerProfile":{"name":"Stra\u00dfe \"AG\"\n","address":{"city":"Köln","country":"DE"},"contacts":[{"firstName":"Dana","email":"dana@example.com"}]},"details":{"dealValue":1234567,"notes":"a\\b","ratio":0.1,"ok":true,"tags":["T1","T2"]},"statusReason":null,"writer":"65661a2b3c4d5e6f70819203"}`)

func BenchmarkDecode(b *testing.B) {
	for b.Loop() {
		if _, err := decode(storedReferral); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecode reads every type the storage writes, with escaped and
// non-ASCII strings, a 64-bit amount, null and an object id, in the stored
// key order.
func TestDecode(t *testing.T) {
	got, err := decode(storedReferral)
	if err != nil {
		t.Fatal(err)
	}
	want, err := bson.Marshal(bson.D{
		{Key: "_id", Value: "r-1"},
		{Key: "createdDateTime", Value: bson.DateTime(1764720000000)},
		{Key: "version", Value: int64(3)},
		{Key: "status", Value: "Active"},
		{Key: "customerProfile", Value: bson.D{
			{Key: "name", Value: "Straße \"AG\"\n"},
			{Key: "address", Value: bson.D{{Key: "city", Value: "Köln"}, {Key: "country", Value: "DE"}}},
			{Key: "contacts", Value: bson.A{bson.D{{Key: "firstName", Value: "Dana"}, {Key: "email", Value: "dana@example.com"}}}},
		}},
		{Key: "details", Value: bson.D{
			{Key: "dealValue", Value: int64(1234567)},
			{Key: "notes", Value: `a\b`},
			{Key: "ratio", Value: 0.1},
			{Key: "ok", Value: true},
			{Key: "tags", Value: bson.A{"T1", "T2"}},
		}},
		{Key: "statusReason", Value: nil},
		{Key: "writer", Value: bson.ObjectID{0x65, 0x66, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81, 0x92, 0x03}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("decoded\n%s\nwant\n%s", got, bson.Raw(want))
	}
}

// TestDecodeRefuses: a document that does not match its schema, or holds
// a type the storage never writes, is an error, not a wrong document.
func TestDecodeRefuses(t *testing.T) {
	for _, stored := range []string{
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]}}`,                            // value missing
		`{"$s":{"p":{"a":{"t":"long"}},"$k":["a"]},"a":"1"}`,                      // not a number
		`{"$s":{"p":{"a":{"t":"objectId"}},"$k":["a"]},"a":"6566"}`,               // not 12 bytes
		`{"$s":{"p":{"a":{"t":"binData"}},"$k":["a"]},"a":"AAE="}`,                // unsupported type
		`{"$s":{"p":{"a":{"t":"array","i":[{"t":"string"}]}},"$k":["a"]},"a":[]}`, // items and types differ
		`{"a":1}`, // no schema
		`{"$s":`,  // not JSON
	} {
		if doc, err := decode([]byte(stored)); err == nil {
			t.Errorf("%s: decoded as %s", stored, doc)
		}
	}
}

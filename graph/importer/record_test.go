package importer

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"referrals/storage"
)

// TestDecodeNamesTypeErrors: a value of the wrong JSON type is an error on
// its field, said in JSON's terms and in the record's naming, never in
// Go's (it read "cannot unmarshal string into Go struct field
// record.version of type int64").
func TestDecodeNamesTypeErrors(t *testing.T) {
	for _, c := range []struct{ line, field, message string }{
		{`{"id":"a","version":"x"}`, "version", "is a string: give an integer"},
		{`{"id":"a","version":1.5}`, "version", "is the number 1.5: give an integer"},
		{`{"id":"a","customerProfile":{"contacts":5}}`, "customerProfile.contacts", "is a number: give a list (a JSON array)"},
		{`{"id":"a","customerProfile":{"name":true}}`, "customerProfile.name", "is a boolean: give a string"},
		{`{"id":"a","customerProfile":[]}`, "customerProfile", "is an array: give an object"},
		{`{"Id":"a","CustomerProfile":{"Contacts":{}}}`, "CustomerProfile.Contacts", "is an object: give a list (a JSON array)"},
	} {
		_, id, _, err := decode([]byte(c.line))
		var se *storage.Error
		if !errors.As(err, &se) || strings.Join(se.Field, ".") != c.field || se.Message != c.message || id != "a" {
			t.Errorf("%s: got %v (id %q), want %q on %s", c.line, err, id, c.message, c.field)
		}
		if strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "struct") {
			t.Errorf("%s: %v names Go's types", c.line, err)
		}
	}
}

// TestDeepRecordsAreRefusedCheaply: a record nested deeper than a
// referral is is an error naming where, found after reading at most
// maxDepth levels: a line of 20,000 brackets allocates kilobytes, not the
// hundreds of megabytes a path per level cost (a line of 200,000 grew the
// server to 24 GB until the kernel killed it).
func TestDeepRecordsAreRefusedCheaply(t *testing.T) {
	for _, line := range []string{
		strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000),
		`{"id":"deep","details":{"notes":` + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + `}}`,
		`{"Id":"deep","Details":` + strings.Repeat(`{"Notes":`, 20) + `1` + strings.Repeat("}", 21),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, _, err := decode([]byte(line))
		runtime.ReadMemStats(&after)
		var se *storage.Error
		if !errors.As(err, &se) || !strings.Contains(se.Message, "nested more than 16 levels") {
			t.Errorf("%.40s…: got %v, want an error on nesting", line, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("%.40s…: decoding allocated %d MB", line, grew>>20)
		}
	}
}

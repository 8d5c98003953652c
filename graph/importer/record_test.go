package importer

import (
	"errors"
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

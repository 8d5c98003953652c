package sqlplan

import (
	"encoding/json"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Decode turns a document as FerretDB v1 stores it (_ferretdb_sjson: the
// values as JSON beside a "$s" schema of their BSON types and key order)
// into the BSON FerretDB would answer with, so that a selection's
// documents come from the same SQL read rather than from one read by _id
// each. It knows the types the storage writes — documents, arrays,
// strings, dates, 32- and 64-bit integers, doubles, booleans and null —
// and refuses the others (binary data, object ids, regular expressions,
// timestamps) with ErrUnsupported.
func Decode(sjson []byte) (bson.Raw, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(sjson, &top); err != nil {
		return nil, fmt.Errorf("stored document: %w", err)
	}
	var s schema
	if err := json.Unmarshal(top["$s"], &s); err != nil {
		return nil, fmt.Errorf("stored document schema: %w", err)
	}
	delete(top, "$s")
	doc, err := appendDocument(nil, top, &s)
	return bson.Raw(doc), err
}

// schema and elem mirror FerretDB's: a document's properties by key with
// their order, and each value's type ("t"), with the schema of a nested
// document ("$s") or of each array element ("i").
type schema struct {
	Properties map[string]*elem `json:"p"`
	Keys       []string         `json:"$k"`
}

type elem struct {
	Type   string  `json:"t"`
	Schema *schema `json:"$s"`
	Items  []*elem `json:"i"`
}

func appendDocument(dst []byte, values map[string]json.RawMessage, s *schema) ([]byte, error) {
	if len(values) != len(s.Keys) {
		return nil, fmt.Errorf("stored document: %d values for %d keys", len(values), len(s.Keys))
	}
	idx, dst := bsoncore.AppendDocumentStart(dst)
	for _, k := range s.Keys {
		raw, ok := values[k]
		if !ok {
			return nil, fmt.Errorf("stored document: no value of %q", k)
		}
		var err error
		if dst, err = appendValue(dst, k, raw, s.Properties[k]); err != nil {
			return nil, err
		}
	}
	return bsoncore.AppendDocumentEnd(dst, idx)
}

func appendValue(dst []byte, key string, raw json.RawMessage, e *elem) ([]byte, error) {
	if string(raw) == "null" {
		return bsoncore.AppendNullElement(dst, key), nil
	}
	if e == nil {
		return nil, fmt.Errorf("stored document: no type of %q", key)
	}
	switch e.Type {
	case "object":
		var values map[string]json.RawMessage
		if err := json.Unmarshal(raw, &values); err != nil || e.Schema == nil {
			return nil, fmt.Errorf("stored document %q: %v", key, err)
		}
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, key)
		return appendDocument(dst, values, e.Schema)
	case "array":
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil || len(items) != len(e.Items) {
			return nil, fmt.Errorf("stored array %q: %v", key, err)
		}
		var idx int32
		idx, dst = bsoncore.AppendArrayElementStart(dst, key)
		for i, it := range items {
			var err error
			if dst, err = appendValue(dst, strconv.Itoa(i), it, e.Items[i]); err != nil {
				return nil, err
			}
		}
		return bsoncore.AppendArrayEnd(dst, idx)
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("stored string %q: %w", key, err)
		}
		return bsoncore.AppendStringElement(dst, key, s), nil
	case "date", "long", "int":
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("stored %s %q: %w", e.Type, key, err)
		}
		switch e.Type {
		case "date":
			return bsoncore.AppendDateTimeElement(dst, key, n), nil
		case "int":
			return bsoncore.AppendInt32Element(dst, key, int32(n)), nil
		}
		return bsoncore.AppendInt64Element(dst, key, n), nil
	case "double":
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, fmt.Errorf("stored double %q: %w", key, err)
		}
		return bsoncore.AppendDoubleElement(dst, key, f), nil
	case "bool":
		return bsoncore.AppendBooleanElement(dst, key, string(raw) == "true"), nil
	}
	return nil, unsupported("stored value of type %q", e.Type)
}

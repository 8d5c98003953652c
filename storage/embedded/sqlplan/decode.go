package sqlplan

import (
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// parsers parse stored documents: fastjson reads a document in one pass
// into a tree it reuses, where encoding/json read each nested value again
// at every level (a full export spent most of its time there).
var parsers fastjson.ParserPool

// decode turns a document as FerretDB v1 stores it (_ferretdb_sjson: the
// values as JSON beside a "$s" schema of their BSON types and key order)
// into the BSON FerretDB would answer with, so that a selection's
// documents come from the same SQL read rather than from one read by _id
// each. It knows the types the storage writes — documents, arrays,
// strings, dates, 32- and 64-bit integers, doubles, booleans, object ids
// and null — and refuses the others (binary data, regular expressions,
// timestamps) with ErrUnsupported.
func decode(sjson []byte) (bson.Raw, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(sjson)
	if err != nil {
		return nil, fmt.Errorf("stored document: %w", err)
	}
	top, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("stored document: %w", err)
	}
	// The BSON is smaller than the stored JSON, which carries the schema.
	doc, err := appendDocument(make([]byte, 0, len(sjson)), top, top.Get("$s"), 1)
	return bson.Raw(doc), err
}

// appendDocument appends the document of values whose schema is s: an
// object of its properties' types by key ("p") and its keys in order
// ("$k"). extra is how many members of values are not properties (the
// top level's "$s").
func appendDocument(dst []byte, values *fastjson.Object, s *fastjson.Value, extra int) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("stored document: no schema")
	}
	keys := s.GetArray("$k")
	props := s.Get("p")
	if values.Len() != len(keys)+extra {
		return nil, fmt.Errorf("stored document: %d values for %d keys", values.Len()-extra, len(keys))
	}
	idx, dst := bsoncore.AppendDocumentStart(dst)
	for _, kv := range keys {
		k, err := kv.StringBytes()
		if err != nil {
			return nil, fmt.Errorf("stored document schema: %w", err)
		}
		key := string(k)
		raw := values.Get(key)
		if raw == nil {
			return nil, fmt.Errorf("stored document: no value of %q", key)
		}
		if dst, err = appendValue(dst, key, raw, props.Get(key)); err != nil {
			return nil, err
		}
	}
	return bsoncore.AppendDocumentEnd(dst, idx)
}

// appendValue appends the element key: v, whose type is given by the
// schema element e: its type ("t"), with the schema of a nested document
// ("$s") or of each array element ("i").
func appendValue(dst []byte, key string, v *fastjson.Value, e *fastjson.Value) ([]byte, error) {
	if v.Type() == fastjson.TypeNull {
		return bsoncore.AppendNullElement(dst, key), nil
	}
	if e == nil {
		return nil, fmt.Errorf("stored document: no type of %q", key)
	}
	switch t := string(e.GetStringBytes("t")); t {
	case "object":
		values, err := v.Object()
		if err != nil || e.Get("$s") == nil {
			return nil, fmt.Errorf("stored document %q: %v", key, err)
		}
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, key)
		return appendDocument(dst, values, e.Get("$s"), 0)
	case "array":
		items, err := v.Array()
		types := e.GetArray("i")
		if err != nil || len(items) != len(types) {
			return nil, fmt.Errorf("stored array %q: %d items for %d types (%v)", key, len(items), len(types), err)
		}
		var idx int32
		idx, dst = bsoncore.AppendArrayElementStart(dst, key)
		for i, it := range items {
			if dst, err = appendValue(dst, arrayKey(i), it, types[i]); err != nil {
				return nil, err
			}
		}
		return bsoncore.AppendArrayEnd(dst, idx)
	case "string":
		s, err := v.StringBytes()
		if err != nil {
			return nil, fmt.Errorf("stored string %q: %w", key, err)
		}
		return bsoncore.AppendStringElement(dst, key, string(s)), nil
	case "date", "long", "int":
		n, err := v.Int64() // the digits as an integer, never a float
		if err != nil {
			return nil, fmt.Errorf("stored %s %q: %w", t, key, err)
		}
		switch t {
		case "date":
			return bsoncore.AppendDateTimeElement(dst, key, n), nil
		case "int":
			return bsoncore.AppendInt32Element(dst, key, int32(n)), nil
		}
		return bsoncore.AppendInt64Element(dst, key, n), nil
	case "double":
		if v.Type() != fastjson.TypeNumber {
			return nil, fmt.Errorf("stored double %q: not a number", key)
		}
		f, err := strconv.ParseFloat(string(v.MarshalTo(nil)), 64)
		if err != nil {
			return nil, fmt.Errorf("stored double %q: %w", key, err)
		}
		return bsoncore.AppendDoubleElement(dst, key, f), nil
	case "objectId": // 24 hex digits
		s, err := v.StringBytes()
		if err != nil {
			return nil, fmt.Errorf("stored object id %q: %w", key, err)
		}
		id, err := bson.ObjectIDFromHex(string(s))
		if err != nil {
			return nil, fmt.Errorf("stored object id %q: %w", key, err)
		}
		return bsoncore.AppendObjectIDElement(dst, key, id), nil
	case "bool":
		b, err := v.Bool()
		if err != nil {
			return nil, fmt.Errorf("stored bool %q: %w", key, err)
		}
		return bsoncore.AppendBooleanElement(dst, key, b), nil
	default:
		return nil, unsupported("stored value of type %q", t)
	}
}

// arrayKeys are the keys of the first elements of an array, made once.
var arrayKeys = func() (keys [64]string) {
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	return keys
}()

// arrayKey is the BSON key of an array's element i.
func arrayKey(i int) string {
	if i < len(arrayKeys) {
		return arrayKeys[i]
	}
	return strconv.Itoa(i)
}

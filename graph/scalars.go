package graph

import (
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"referrals/storage"
)

// MarshalDateTime writes t as RFC 3339 in UTC, with fractions of a second
// only when there are any.
func MarshalDateTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(time.RFC3339Nano)))
	})
}

// UnmarshalDateTime reads an RFC 3339 string (any offset) as a UTC time.
func UnmarshalDateTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, storage.Errorf(storage.CodeBadUserInput, "DateTime must be an RFC 3339 string such as \"2026-03-01T09:30:00Z\", got %v", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, storage.Errorf(storage.CodeBadUserInput, "%q is not an RFC 3339 date-time such as \"2026-03-01T09:30:00Z\"", s)
	}
	return t.UTC(), nil
}

// MarshalDecimal writes the amount as a string with two decimals, so no
// client reads money into a binary float.
func MarshalDecimal(m storage.Money) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(m.String()))
	})
}

// UnmarshalDecimal reads a decimal string or a JSON number, exactly.
func UnmarshalDecimal(v any) (storage.Money, error) {
	switch v := v.(type) {
	case string:
		return storage.ParseMoney(v)
	case json.Number:
		return storage.ParseMoney(v.String())
	case int64:
		return storage.ParseMoney(strconv.FormatInt(v, 10))
	case int:
		return storage.ParseMoney(strconv.Itoa(v))
	case float64:
		// A literal in the query text arrives as float64; its shortest
		// representation is the text that was written.
		return storage.ParseMoney(strconv.FormatFloat(v, 'f', -1, 64))
	}
	return 0, storage.Errorf(storage.CodeBadUserInput, "Decimal must be a string or a number, got %v", v)
}

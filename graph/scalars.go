package graph

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"

	"referrals/storage"
)

// MarshalInt writes an Int held as a Go int.
func MarshalInt(i int) graphql.Marshaler { return graphql.MarshalInt(i) }

// UnmarshalInt reads an Int into a Go int, refusing what does not fit
// GraphQL's 32 bits (see unmarshalInt32).
func UnmarshalInt(v any) (int, error) {
	n, err := unmarshalInt32(v)
	return int(n), err
}

// MarshalInt64 writes an Int held as a Go int64 (a version).
func MarshalInt64(i int64) graphql.Marshaler { return graphql.MarshalInt64(i) }

// UnmarshalInt64 reads an Int into a Go int64, refusing what does not fit
// GraphQL's 32 bits (see unmarshalInt32).
func UnmarshalInt64(v any) (int64, error) {
	n, err := unmarshalInt32(v)
	return int64(n), err
}

// unmarshalInt32 reads an Int as the GraphQL specification defines it, a
// signed 32-bit integer. gqlparser and gqlgen take any int64 for Int, so
// 2^53 would otherwise reach the resolvers; it is BAD_USER_INPUT here,
// whether it came as a literal or a variable.
func unmarshalInt32(v any) (int32, error) {
	n, err := graphql.UnmarshalInt32(v)
	if err != nil {
		return 0, storage.Errorf(storage.CodeBadUserInput, "Int is a signed 32-bit integer (%d to %d), got %v", math.MinInt32, math.MaxInt32, v)
	}
	return n, nil
}

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
// Number literals in the document arrive as their text too (see
// decimalLiterals); nothing that went through a binary float is accepted.
func UnmarshalDecimal(v any) (storage.Money, error) {
	switch v := v.(type) {
	case string:
		return storage.ParseMoney(v)
	case json.Number:
		return storage.ParseMoney(v.String())
	}
	return 0, storage.Errorf(storage.CodeBadUserInput, "Decimal must be a string or a number, got %v", v)
}

// decimalLiterals is a validation rule that turns number literals written
// for a Decimal into string literals of the same text. gqlparser reads a
// number literal as an int64 or a float64, so 1234567890123456.78 would
// reach UnmarshalDecimal rounded to 1234567890123456.8; as a string it
// arrives digit for digit, like strings and JSON numbers in variables.
// Rules run on a freshly parsed document before the query cache shares
// it, and the rewrite is idempotent, so every later use of a cached
// document sees the same, already rewritten literals.
var decimalLiterals = core.Rule{Name: "DecimalLiteralsAsText", RuleFunc: func(observers *core.Events, _ core.AddErrFunc) {
	observers.OnValue(func(_ *core.Walker, v *ast.Value) {
		if v.Definition != nil && v.Definition.Name == "Decimal" && (v.Kind == ast.IntValue || v.Kind == ast.FloatValue) {
			v.Kind = ast.StringValue
		}
	})
}}

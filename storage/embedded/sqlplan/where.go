package sqlplan

import (
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Where translates filter into an SQL condition on t and its arguments.
func (t *Table) Where(filter bson.D) (string, []any, error) {
	b := builder{t: t}
	cond, err := b.doc(filter)
	if err != nil {
		return "", nil, err
	}
	return cond, b.args, nil
}

type builder struct {
	t    *Table
	args []any
}

func (b *builder) doc(d bson.D) (string, error) {
	var parts []string
	for _, e := range d {
		var cond string
		var err error
		switch {
		case e.Key == "$and" || e.Key == "$or" || e.Key == "$nor":
			cond, err = b.logical(e.Key, e.Value)
		case strings.HasPrefix(e.Key, "$"):
			err = unsupported("top-level operator %s", e.Key)
		default:
			cond, err = b.field(e.Key, e.Value)
		}
		if err != nil {
			return "", err
		}
		parts = append(parts, cond)
	}
	return join(parts, " AND ", "1"), nil
}

func (b *builder) logical(op string, v any) (string, error) {
	list, ok := v.(bson.A)
	if !ok || len(list) == 0 {
		return "", unsupported("%s takes a non-empty array", op)
	}
	parts := make([]string, len(list))
	for i, item := range list {
		d, ok := item.(bson.D)
		if !ok {
			return "", unsupported("%s[%d] is %T, not a document", op, i, item)
		}
		cond, err := b.doc(d)
		if err != nil {
			return "", err
		}
		parts[i] = cond
	}
	switch op {
	case "$and":
		return join(parts, " AND ", "1"), nil
	case "$or":
		return join(parts, " OR ", "0"), nil
	}
	// IS NOT 1 rather than NOT: a comparison with a null or missing value
	// is NULL in SQL, and NOT NULL would not match where MongoDB's $nor does.
	return "(" + join(parts, " OR ", "0") + ") IS NOT 1", nil
}

// join joins conditions in parentheses; empty is the condition without any.
func join(parts []string, sep, empty string) string {
	switch len(parts) {
	case 0:
		return empty
	case 1:
		return parts[0]
	}
	return "(" + strings.Join(parts, sep) + ")"
}

func (b *builder) field(path string, v any) (string, error) {
	f, ok := b.t.Fields[path]
	if !ok {
		return "", unsupported("path %q is not queryable", path)
	}
	ops, isOps := v.(bson.D)
	if !isOps || len(ops) == 0 || !strings.HasPrefix(ops[0].Key, "$") {
		return b.op(path, f, "$eq", v, ops)
	}
	var parts []string
	for _, op := range ops {
		if op.Key == "$options" {
			continue // read with $regex
		}
		cond, err := b.op(path, f, op.Key, op.Value, ops)
		if err != nil {
			return "", err
		}
		parts = append(parts, cond)
	}
	return join(parts, " AND ", "1"), nil
}

// op translates one operator on path; siblings are the operators beside
// it ($regex reads $options there).
func (b *builder) op(path string, f Field, op string, v any, siblings bson.D) (string, error) {
	if f.Array != "" {
		return b.elementOp(path, f, op, v)
	}
	x := Expr(path)
	switch op {
	case "$eq":
		if v == nil {
			return x + " IS NULL", nil
		}
		return b.compare(x, "=", f, v)
	case "$ne":
		if v == nil {
			return x + " IS NOT NULL", nil
		}
		return b.compare(x, "IS NOT", f, v)
	case "$in", "$nin":
		in, err := b.in(x, f, v)
		if err != nil || op == "$in" {
			return in, err
		}
		return "(" + in + ") IS NOT 1", nil // true where IN is false or NULL
	case "$all":
		return b.all(path, f, v)
	case "$gt", "$gte", "$lt", "$lte":
		return b.rangeOp(x, op, f, v)
	case "$exists":
		want, ok := v.(bool)
		if !ok {
			return "", unsupported("$exists %T", v)
		}
		if want {
			return "json_type(_ferretdb_sjson, '$." + path + "') IS NOT NULL", nil
		}
		return "json_type(_ferretdb_sjson, '$." + path + "') IS NULL", nil
	case "$regex":
		return b.regex(x, f, v, siblings)
	}
	return "", unsupported("operator %s", op)
}

var rangeOps = map[string]string{"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

// rangeOp compares x with v within v's type, as MongoDB does: SQLite
// orders NULL below numbers below text, so a string bound excludes the
// numbers below it ("x >= ”") and a number bound the text above it
// ("x < ”"). Both stay ranges on one index column.
func (b *builder) rangeOp(x, op string, f Field, v any) (string, error) {
	if v == nil {
		return "", unsupported("%s null", op)
	}
	cond, err := b.compare(x, rangeOps[op], f, v)
	if err != nil {
		return "", err
	}
	if _, isString := v.(string); isString {
		return cond + " AND " + x + " >= ''", nil
	}
	return cond + " AND " + x + " < ''", nil
}

func (b *builder) compare(x, sqlOp string, f Field, v any) (string, error) {
	arg, err := b.arg(f, v)
	if err != nil {
		return "", err
	}
	return x + " " + sqlOp + " " + arg, nil
}

// in matches x against a list that may hold null (null or missing).
func (b *builder) in(x string, f Field, v any) (string, error) {
	list, ok := v.(bson.A)
	if !ok {
		if s, isStrings := v.([]string); isStrings {
			list = make(bson.A, len(s))
			for i, e := range s {
				list[i] = e
			}
		} else {
			return "", unsupported("$in of %T", v)
		}
	}
	var marks []string
	null := false
	for _, e := range list {
		if e == nil {
			null = true
			continue
		}
		m, err := b.arg(f, e)
		if err != nil {
			return "", err
		}
		marks = append(marks, m)
	}
	var parts []string
	if len(marks) > 0 {
		parts = append(parts, x+" IN ("+strings.Join(marks, ", ")+")")
	}
	if null {
		parts = append(parts, x+" IS NULL")
	}
	return join(parts, " OR ", "0"), nil
}

// all matches every value of the list: on a scalar path, each must equal
// the value; an empty list matches nothing, as in MongoDB.
func (b *builder) all(path string, f Field, v any) (string, error) {
	list, err := values(v)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(list))
	for _, e := range list {
		if e == nil {
			return "", unsupported("$all with null")
		}
		cond, err := b.op(path, f, "$eq", e, nil)
		if err != nil {
			return "", err
		}
		parts = append(parts, cond)
	}
	return join(parts, " AND ", "0"), nil
}

func values(v any) (bson.A, error) {
	switch l := v.(type) {
	case bson.A:
		return l, nil
	case []string:
		out := make(bson.A, len(l))
		for i, e := range l {
			out[i] = e
		}
		return out, nil
	}
	return nil, unsupported("a list of %T", v)
}

// elementOp translates an operator on a path through an array: it holds
// when some element meets it ($ne, $nin: when none meets its opposite).
func (b *builder) elementOp(path string, f Field, op string, v any) (string, error) {
	some := func(cond string) string {
		return IDExpr + " IN (SELECT id FROM " + Quote(b.t.SideTable()) + " WHERE path = '" + path + "' AND " + cond + ")"
	}
	none := func(cond string) string { return "NOT " + some(cond) }
	switch op {
	case "$eq", "$ne":
		if v == nil {
			return "", unsupported("%s null on the array path %s", op, path)
		}
		cond, err := b.compare("value", "=", f, v)
		if op == "$eq" {
			return some(cond), err
		}
		return none(cond), err
	case "$in", "$nin":
		list, err := values(v)
		if err != nil {
			return "", err
		}
		if len(list) == 0 && op == "$in" {
			return "0", nil
		}
		if len(list) == 0 {
			return "1", nil
		}
		marks := make([]string, len(list))
		for i, e := range list {
			if e == nil {
				return "", unsupported("%s with null on the array path %s", op, path)
			}
			if marks[i], err = b.arg(f, e); err != nil {
				return "", err
			}
		}
		cond := "value IN (" + strings.Join(marks, ", ") + ")"
		if op == "$in" {
			return some(cond), nil
		}
		return none(cond), nil
	case "$all":
		return b.all(path, f, v)
	case "$gt", "$gte", "$lt", "$lte":
		cond, err := b.rangeOp("value", op, f, v)
		return some(cond), err
	}
	return "", unsupported("operator %s on the array path %s", op, path)
}

// regex matches a literal pattern with FerretDB's meaning: Go's regexp
// with the options i, m and s as flags.
func (b *builder) regex(x string, f Field, v any, siblings bson.D) (string, error) {
	pattern, ok := v.(string)
	if !ok || f.Type != String {
		return "", unsupported("$regex %T on a non-string path", v)
	}
	options := ""
	for _, s := range siblings {
		if s.Key == "$options" {
			if options, ok = s.Value.(string); !ok {
				return "", unsupported("$options %T", s.Value)
			}
		}
	}
	flags := ""
	for _, o := range options {
		if !strings.ContainsRune("ims", o) {
			return "", unsupported("regular expression option %q", o)
		}
		flags += string(o)
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	if _, err := regexp.Compile(pattern); err != nil {
		return "", unsupported("regular expression: %v", err)
	}
	b.args = append(b.args, pattern)
	return regexpFunction + "(" + x + ", ?)", nil
}

// arg adds v as an argument, in the form the JSON holds for f's type, and
// returns its placeholder. A value of another type than the path's is not
// translated: MongoDB compares across types by its own type order.
func (b *builder) arg(f Field, v any) (string, error) {
	var a any
	switch x := v.(type) {
	case string:
		if f.Type == String || f.Type == Enum {
			a = x
		}
	case time.Time:
		if f.Type == Date {
			a = x.UnixMilli()
		}
	case bson.DateTime:
		if f.Type == Date {
			a = int64(x)
		}
	case int32:
		if f.Type == Number || f.Type == Enum {
			a = int64(x)
		}
	case int64:
		if f.Type == Number || f.Type == Enum {
			a = x
		}
	case int:
		if f.Type == Number || f.Type == Enum {
			a = int64(x)
		}
	}
	if a == nil {
		return "", unsupported("a %T compared with a path of type %d", v, f.Type)
	}
	b.args = append(b.args, a)
	return "?", nil
}

package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/introspection"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// maxIntrospectionFields bounds the fields one operation's introspection
// (everything under `__schema` and `__type`) may resolve. Introspection
// reads only the schema in memory, so its cost is the number of fields it
// resolves, and that number is known before it runs: the schema is fixed.
// graphql-js's standard introspection query with every option resolves
// 3,417 fields on this schema (TestIntrospectionLimit), so the schema may
// grow fivefold; what multiplies, aliases or fragments repeating
// introspection, reaches the bound. Its nesting is bounded by validation:
// graphql-js's MaxIntrospectionDepth rule, which gqlparser applies, refuses
// `fields`, `inputFields`, `interfaces` and `possibleTypes` nested three
// deep (the standard query nests them once).
const maxIntrospectionFields = 20_000

// introspectionLimit refuses, before it runs, an operation whose
// introspection would resolve more than maxIntrospectionFields fields.
// Introspection is left out of the operation cost and of the depth limit:
// it sends no database command, and the standard query's type references
// nest deeper (`ofType` nine times) than any data an operation reads.
type introspectionLimit struct{ schema *ast.Schema }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &introspectionLimit{}

func (*introspectionLimit) ExtensionName() string { return "IntrospectionLimit" }

// Validate keeps the schema that introspection shows.
func (l *introspectionLimit) Validate(es graphql.ExecutableSchema) error {
	l.schema = es.Schema()
	return nil
}

// MutateOperationContext counts the fields the operation's introspection
// would resolve.
func (l *introspectionLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if introspectionFields(l.schema, opCtx.Operation.SelectionSet, opCtx.Variables) > maxIntrospectionFields {
		return limitError("the operation's introspection would resolve more than %d fields (the standard introspection query "+
			"resolves about 3,400); ask for each part of the schema once: aliases and fragments that repeat it count each time", maxIntrospectionFields)
	}
	return nil
}

// isIntrospectionRoot says whether f is `__schema` or `__type`, the fields
// through which all introspection is reached (validation allows them on
// the query type only).
func isIntrospectionRoot(f *ast.Field) bool {
	return f.Name == "__schema" || f.Name == "__type"
}

// introspectionFields counts the fields that the introspection of an
// operation's root selection sel would resolve, up to just past
// maxIntrospectionFields.
func introspectionFields(schema *ast.Schema, sel ast.SelectionSet, vars map[string]any) int {
	w := introspectionWalk{def: schema, schema: introspection.WrapSchema(schema), vars: vars}
	w.roots(sel)
	return w.fields
}

// introspectionWalk resolves an introspection selection against the
// schema as the executor would, counting the fields, and stops as soon as
// the count passes maxIntrospectionFields: so it takes time bounded by the
// limit, however the document multiplies. It counts every field whatever
// its @skip or @include, fields repeated under one response name each
// time, and deprecated items as if asked for, so the count is never less
// than what runs.
type introspectionWalk struct {
	def    *ast.Schema
	schema *introspection.Schema
	vars   map[string]any
	types  []any // the schema's types, listed once
	fields int
}

// roots walks the introspection fields of an operation's root selection
// and reports whether they stay within the limit.
func (w *introspectionWalk) roots(sel ast.SelectionSet) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if isIntrospectionRoot(s) && !w.field(s, w.root(s)) {
				return false
			}
		case *ast.InlineFragment:
			if !w.roots(s.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			if !w.roots(s.Definition.SelectionSet) {
				return false
			}
		}
	}
	return true
}

// root is what an introspection root field resolves to.
func (w *introspectionWalk) root(f *ast.Field) []any {
	if f.Name == "__schema" {
		return []any{w.schema}
	}
	name, _ := f.ArgumentMap(w.vars)["name"].(string)
	return orNone(introspection.WrapTypeFromDef(w.def, w.def.Types[name]))
}

// field counts f and walks its selection on each object it resolves to.
func (w *introspectionWalk) field(f *ast.Field, objects []any) bool {
	if w.fields++; w.fields > maxIntrospectionFields {
		return false
	}
	for _, o := range objects {
		if !w.selection(f.SelectionSet, o) {
			return false
		}
	}
	return true
}

// selection walks sel on obj, one of the introspection objects.
// Fragments need no type check: every introspection type is an object
// type, so validation has matched each fragment to it.
func (w *introspectionWalk) selection(sel ast.SelectionSet, obj any) bool {
	for _, s := range sel {
		var ok bool
		switch s := s.(type) {
		case *ast.Field:
			ok = w.field(s, w.children(obj, s.Name))
		case *ast.InlineFragment:
			ok = w.selection(s.SelectionSet, obj)
		case *ast.FragmentSpread:
			ok = w.selection(s.Definition.SelectionSet, obj)
		}
		if !ok {
			return false
		}
	}
	return true
}

// children is what the field name of obj resolves to when it is an
// object or a list of objects; nothing for a scalar or null.
func (w *introspectionWalk) children(obj any, name string) []any {
	switch o := obj.(type) {
	case *introspection.Schema:
		switch name {
		case "types":
			return w.listTypes()
		case "queryType":
			return orNone(o.QueryType())
		case "mutationType":
			return orNone(o.MutationType())
		case "subscriptionType":
			return orNone(o.SubscriptionType())
		case "directives":
			return pointers(o.Directives())
		}
	case *introspection.Type:
		switch name {
		case "fields":
			return pointers(o.Fields(true))
		case "inputFields":
			return pointers(o.InputFields())
		case "interfaces":
			return pointers(o.Interfaces())
		case "possibleTypes":
			return pointers(o.PossibleTypes())
		case "enumValues":
			return pointers(o.EnumValues(true))
		case "ofType":
			return orNone(o.OfType())
		}
	case *introspection.Field:
		switch name {
		case "args":
			return pointers(o.Args)
		case "type":
			return orNone(o.Type)
		}
	case *introspection.InputValue:
		if name == "type" {
			return orNone(o.Type)
		}
	case *introspection.Directive:
		if name == "args" {
			return pointers(o.Args)
		}
	}
	return nil
}

func (w *introspectionWalk) listTypes() []any {
	if w.types == nil {
		w.types = pointers(w.schema.Types())
	}
	return w.types
}

// orNone is the object t, or nothing when it is null.
func orNone(t *introspection.Type) []any {
	if t == nil {
		return nil
	}
	return []any{t}
}

// pointers lists the address of each item, as the executor resolves them.
func pointers[T any](items []T) []any {
	out := make([]any, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// introspectionGate refuses operations that select __schema or __type
// (__typename stays allowed: clients use it to read unions).
type introspectionGate struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = introspectionGate{}

func (introspectionGate) ExtensionName() string { return "IntrospectionGate" }

func (introspectionGate) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext refuses an introspection query before it runs.
func (introspectionGate) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Doc.Operations.ForName(opCtx.OperationName)
	if op != nil && selectsIntrospection(op.SelectionSet, map[string]bool{}) {
		return codedError(storage.CodeForbidden, "introspection is disabled on this server; start it with --introspection true to enable it")
	}
	return nil
}

// selectsIntrospection looks through each fragment once: seen holds those
// already looked through.
func selectsIntrospection(sel ast.SelectionSet, seen map[string]bool) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if selectsIntrospection(s.SelectionSet, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				if selectsIntrospection(s.Definition.SelectionSet, seen) {
					return true
				}
			}
		}
	}
	return false
}

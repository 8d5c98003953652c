package graph

import (
	"context"
	"reflect"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// exactEnums refuses variables holding an enum value that is not one of
// the enum's names exactly. Enum literals in the document are checked
// exactly by validation, but gqlparser compares variable values without
// regard to case ("p2p" passes as P2P), and gqlgen's generated code then
// maps the value to the bound storage constant with a map lookup that
// yields "" for anything but an exact name: a lower-case value would reach
// the resolver as an empty value. The check runs on the coerced variables
// of every operation, on every transport, before anything executes.
type exactEnums struct{ schema *ast.Schema }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &exactEnums{}

// ExtensionName names the extension for gqlgen.
func (*exactEnums) ExtensionName() string { return "ExactEnums" }

// Validate keeps the schema the variables are checked against.
func (e *exactEnums) Validate(es graphql.ExecutableSchema) error {
	e.schema = es.Schema()
	return nil
}

// MutateOperationContext checks every variable of the operation to run.
func (e *exactEnums) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	for _, def := range opCtx.Operation.VariableDefinitions {
		path := ast.Path{ast.PathName("variable"), ast.PathName(def.Variable)}
		if err := e.check(def.Type, opCtx.Variables[def.Variable], path); err != nil {
			return err
		}
	}
	return nil
}

// check walks value as a value of type t: list items, input object fields
// and enum values. Everything else has been checked by gqlparser already.
func (e *exactEnums) check(t *ast.Type, value any, path ast.Path) *gqlerror.Error {
	if value == nil {
		return nil
	}
	if t.Elem != nil {
		// A list, or a single value given for one; gqlparser's coercion
		// of the latter makes a slice of another type than []any.
		items := reflect.ValueOf(value)
		if items.Kind() != reflect.Slice {
			return e.check(t.Elem, value, path)
		}
		for i := range items.Len() {
			if err := e.check(t.Elem, items.Index(i).Interface(), append(path, ast.PathIndex(i))); err != nil {
				return err
			}
		}
		return nil
	}
	def := e.schema.Types[t.NamedType]
	switch def.Kind {
	case ast.Enum:
		if name, ok := value.(string); !ok || def.EnumValues.ForName(name) == nil {
			err := gqlerror.ErrorPathf(path, "%v is not a valid %s: enum values are exact, case-sensitive names", value, def.Name)
			errcode.Set(err, errcode.ValidationFailed)
			return err
		}
	case ast.InputObject:
		fields, _ := value.(map[string]any)
		for _, f := range def.Fields {
			if err := e.check(f.Type, fields[f.Name], append(path, ast.PathName(f.Name))); err != nil {
				return err
			}
		}
	}
	return nil
}

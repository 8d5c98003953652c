package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// depthLimit refuses operations nested deeper than max fields, before any
// of them runs.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string { return "DepthLimit" }

func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext checks the depth of the operation to run.
func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Doc.Operations.ForName(opCtx.OperationName)
	if op == nil {
		return nil
	}
	if depth := (fragmentDepths{}).selectionDepth(op.SelectionSet); depth > d.max {
		return limitError("operation is nested %d fields deep, which exceeds the limit of %d", depth, d.max)
	}
	return nil
}

// fragmentDepths remembers the depth of each fragment measured, so each is
// measured once however often it is spread.
type fragmentDepths map[string]int

// selectionDepth is the deepest field nesting in sel, fragments included.
// Validation has already refused fragment cycles.
func (m fragmentDepths) selectionDepth(sel ast.SelectionSet) int {
	deepest := 0
	for _, s := range sel {
		var d int
		switch s := s.(type) {
		case *ast.Field:
			d = 1
			if !isIntrospectionRoot(s) { // introspectionLimit bounds what is below
				d += m.selectionDepth(s.SelectionSet)
			}
		case *ast.InlineFragment:
			d = m.selectionDepth(s.SelectionSet)
		case *ast.FragmentSpread:
			var ok bool
			if d, ok = m[s.Name]; !ok {
				d = m.selectionDepth(s.Definition.SelectionSet)
				m[s.Name] = d
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

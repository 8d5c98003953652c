package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

// Default operation limits. The nested page of BenchmarkNestedPage at 100
// referrals (every field, participants with users and inviter, all four
// tag lists) costs 16,501 (TestOperationLimits), so the default admits it
// and refuses two of them in one operation, or pages inside pages.
const (
	DefaultMaxComplexity = 20_000
	DefaultMaxDepth      = 12
)

// Estimated list sizes for lists that are not paged, so their cost scales.
const (
	costParticipantsPerReferral = 4
	costTagsPerList             = 5
	costCatalog                 = 92
)

// complexityCosts prices connections by the page size they ask for, and other
// lists by their expected length: cost = children × items + 1.
func complexityCosts() ComplexityRoot {
	var c ComplexityRoot
	times := func(n int) func(int) int { return func(child int) int { return child*n + 1 } }
	c.Query.Referrals = func(child int, _ *storage.ReferralFilter, _ *storage.ReferralOrder, first *int, _ *string, last *int, _ *string) int {
		return child*pageCost(first, last) + 1
	}
	c.Query.Participants = func(child int, _ *storage.ParticipantFilter, first *int, _ *string) int {
		return child*pageCost(first, nil) + 1
	}
	c.Query.Tags = func(child int, _ *storage.TagCategory) int { return child*costCatalog + 1 }
	c.Referral.Participants = times(costParticipantsPerReferral)
	c.ReferralRequirements.IndustryFocus = times(costTagsPerList)
	c.ReferralRequirements.Products = times(costTagsPerList)
	c.ReferralRequirements.ServiceTypes = times(costTagsPerList)
	c.ReferralRequirements.Solutions = times(costTagsPerList)
	return c
}

// pageCost is the number of items a connection may return. Out-of-range
// sizes are priced at the maximum; the resolver refuses them anyway.
func pageCost(first, last *int) int {
	n := storage.DefaultPageSize
	for _, v := range []*int{first, last} {
		if v != nil {
			n = *v
		}
	}
	if n < 0 || n > storage.MaxPageSize {
		n = storage.MaxPageSize
	}
	return max(n, 1)
}

// depthLimit refuses operations nested deeper than max fields, before any
// of them runs.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext checks the depth of the operation to run.
func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Doc.Operations.ForName(opCtx.OperationName)
	if op == nil {
		return nil
	}
	if depth := selectionDepth(op.SelectionSet, 0); depth > d.max {
		return codedError(storage.CodeComplexityLimit, "operation is nested %d fields deep, which exceeds the limit of %d", depth, d.max)
	}
	return nil
}

// selectionDepth is the deepest field nesting in sel, fragments included.
// Validation has already refused fragment cycles.
func selectionDepth(sel ast.SelectionSet, depth int) int {
	deepest := depth
	for _, s := range sel {
		var d int
		switch s := s.(type) {
		case *ast.Field:
			d = selectionDepth(s.SelectionSet, depth+1)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet, depth)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// introspectionGate refuses operations that select __schema or __type
// (__typename stays allowed: clients use it to read unions).
type introspectionGate struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = introspectionGate{}

func (introspectionGate) ExtensionName() string                   { return "IntrospectionGate" }
func (introspectionGate) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext refuses an introspection query before it runs.
func (introspectionGate) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Doc.Operations.ForName(opCtx.OperationName)
	if op != nil && selectsIntrospection(op.SelectionSet) {
		return codedError(storage.CodeForbidden, "introspection is disabled on this server; start it with --introspection to enable it")
	}
	return nil
}

func selectsIntrospection(sel ast.SelectionSet) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if selectsIntrospection(s.SelectionSet) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && selectsIntrospection(s.Definition.SelectionSet) {
				return true
			}
		}
	}
	return false
}

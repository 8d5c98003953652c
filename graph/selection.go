package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// pageSelection tells which nested reads a connection's selection needs.
type pageSelection struct {
	participants bool
	tags         bool
}

// referralPageSelection inspects the selection of the connection field
// being resolved in ctx: its nodes may be selected through `nodes` or
// `edges { node }`, and through fragments.
func referralPageSelection(ctx context.Context) pageSelection {
	opCtx := graphql.GetOperationContext(ctx)
	field := graphql.GetFieldContext(ctx).Field
	var want pageSelection
	for _, node := range [][]string{{"nodes"}, {"edges", "node"}} {
		nodeSel, ok := selectionAt(opCtx, field.Selections, node)
		if !ok {
			continue
		}
		_, p := selectionAt(opCtx, nodeSel, []string{"participants"})
		_, t := selectionAt(opCtx, nodeSel, []string{"details", "requirements"})
		want.participants = want.participants || p
		want.tags = want.tags || t
	}
	return want
}

// selectionAt follows path down sel and returns the merged selection set of
// the fields found there, and whether any was.
func selectionAt(opCtx *graphql.OperationContext, sel ast.SelectionSet, path []string) (ast.SelectionSet, bool) {
	if len(path) == 0 {
		return sel, true
	}
	var merged ast.SelectionSet
	found := false
	for _, f := range graphql.CollectFields(opCtx, sel, nil) {
		if f.Name != path[0] {
			continue
		}
		if below, ok := selectionAt(opCtx, f.Selections, path[1:]); ok {
			merged, found = append(merged, below...), true
		}
	}
	return merged, found
}

// statsSelectsExtremes reports whether the referralStats field being
// resolved in ctx selects a minimum or maximum deal value, in its groups or
// its total, which costs the store one more aggregation.
func statsSelectsExtremes(ctx context.Context) bool {
	opCtx := graphql.GetOperationContext(ctx)
	field := graphql.GetFieldContext(ctx).Field
	for _, measures := range [][]string{{"groups", "measures", "dealValue"}, {"total", "dealValue"}} {
		sel, _ := selectionAt(opCtx, field.Selections, measures)
		for _, extreme := range []string{"minimum", "maximum"} {
			if _, ok := selectionAt(opCtx, sel, []string{extreme}); ok {
				return true
			}
		}
	}
	return false
}

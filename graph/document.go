package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"

	"referrals/storage"
)

// Bounds of a document, checked before gqlgen parses and validates it.
// gqlparser's validation is not linear in the document: its walk visits
// every fragment again for each operation and fragment definition, and its
// rule that fields sharing a response name must be mergeable compares them,
// and the fragments spread at one place, pairwise (20,000 `__typename`s in
// one selection took 30–50 s, 1,000 aliases `x:` 1.3 GB). Within these
// bounds parsing and validating any document up to the body limit takes
// under 1 s of CPU and 64 MiB (TestDocumentLimits, FuzzDocument);
// graphql-js's full introspection query and the README's examples use
// under 5% of each (TestDocumentLimitsAdmitRealDocuments).
const (
	// maxDocumentTokens bounds parsing: names, punctuation and values
	// (comments not counted), as Apollo Router and graphql-java bound it.
	maxDocumentTokens = 15_000
	// maxExpandedNodes bounds the validator's walk: fields, fragment
	// spreads, inline fragments, directives, arguments and values of every
	// operation and fragment definition, each spread counted with the
	// fragment it expands to.
	maxExpandedNodes = 20_000
	// maxMergeComparisons bounds the pairwise comparisons of fields that
	// share a response name at one place of the response, and of the
	// fragments spread at one place, fragments expanded.
	maxMergeComparisons = 20_000
)

// documentLimits refuses documents beyond the bounds above with
// COMPLEXITY_LIMIT, and fragment cycles with BAD_USER_INPUT (validation
// refuses them too, but expanding a cycle has no end), before gqlgen
// parses and validates them. A document that does not parse is left to
// gqlgen, which says where it fails.
type documentLimits struct{}

// documentTokens counts the tokens of src up to one past the limit.
func documentTokens(src *ast.Source) int {
	lex := lexer.New(src)
	n := 0
	for n <= maxDocumentTokens {
		tok, err := lex.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			break
		}
		if tok.Kind != lexer.Comment {
			n++
		}
	}
	return n
}

// checkDocument refuses doc when validating it would take long.
func checkDocument(doc *ast.QueryDocument) *gqlerror.Error {
	m := measureDocument(doc)
	switch {
	case m.cycle != "":
		err := gqlerror.Errorf("fragment %q spreads itself, directly or through other fragments", m.cycle)
		setCode(err, storage.CodeBadUserInput)
		return err
	case m.nodes > maxExpandedNodes:
		return limitError("the document is too large: with its fragments expanded it has more than %d fields, arguments and values", maxExpandedNodes)
	case m.comparisons > maxMergeComparisons:
		return limitError("the document repeats response names too often: validating it would compare more than %d pairs of "+
			"same-named fields, or of fragments spread at one place; select each field once per place", maxMergeComparisons)
	}
	return nil
}

// measureDocument measures doc as gqlparser's validation walks it: every
// operation and fragment definition, with the fragments they spread
// expanded. The comparisons are counted only once the size is known to be
// within its bound, and up to just past theirs.
func measureDocument(doc *ast.QueryDocument) documentMeasure {
	m := documentMeasure{
		fragments: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		sizes:     map[string]int{},
		expanding: map[string]bool{},
	}
	for _, f := range doc.Fragments {
		if _, ok := m.fragments[f.Name]; !ok { // the first of a duplicate name, as gqlparser
			m.fragments[f.Name] = f
		}
	}
	var roots []ast.SelectionSet
	for _, op := range doc.Operations {
		roots = append(roots, op.SelectionSet)
		m.nodes += directiveNodes(op.Directives) + m.selectionNodes(op.SelectionSet)
		for _, v := range op.VariableDefinitions {
			m.nodes += 1 + directiveNodes(v.Directives)
			if v.DefaultValue != nil {
				m.nodes += valueNodes(v.DefaultValue)
			}
		}
	}
	for _, f := range doc.Fragments {
		roots = append(roots, f.SelectionSet)
		m.nodes += directiveNodes(f.Directives) + m.selectionNodes(f.SelectionSet)
	}
	if m.cycle != "" || m.nodes > maxExpandedNodes {
		return m
	}
	for _, root := range roots {
		if m.compareAt([]scope{{sel: root}}); m.comparisons > maxMergeComparisons {
			break
		}
	}
	return m
}

// documentMeasure measures a document with its fragments expanded. Each
// fragment's own size is measured once, so even a document whose expansion
// is exponential is measured in time linear in it.
type documentMeasure struct {
	nodes       int    // the size of the document, fragments expanded
	comparisons int    // what validation compares pairwise, fragments expanded
	cycle       string // a fragment that spreads itself, if any

	fragments map[string]*ast.FragmentDefinition
	sizes     map[string]int  // expanded size of each fragment measured
	expanding map[string]bool // fragments being measured: reaching one again is a cycle
}

// selectionNodes is the size of sel with its fragments expanded, counted up
// to just past maxExpandedNodes.
func (m *documentMeasure) selectionNodes(sel ast.SelectionSet) int {
	n := 0
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			n += 1 + argumentNodes(s.Arguments) + directiveNodes(s.Directives) + m.selectionNodes(s.SelectionSet)
		case *ast.InlineFragment:
			n += 1 + directiveNodes(s.Directives) + m.selectionNodes(s.SelectionSet)
		case *ast.FragmentSpread:
			n += 1 + directiveNodes(s.Directives) + m.fragmentNodes(s.Name)
		}
		if n > maxExpandedNodes {
			return maxExpandedNodes + 1
		}
	}
	return n
}

func (m *documentMeasure) fragmentNodes(name string) int {
	if n, ok := m.sizes[name]; ok {
		return n
	}
	def := m.fragments[name]
	if def == nil { // unknown: validation says so
		return 0
	}
	if m.expanding[name] {
		m.cycle = name
		return 0
	}
	m.expanding[name] = true
	n := min(maxExpandedNodes+1, directiveNodes(def.Directives)+m.selectionNodes(def.SelectionSet))
	delete(m.expanding, name)
	m.sizes[name] = n
	return n
}

func argumentNodes(args ast.ArgumentList) int {
	n := 0
	for _, a := range args {
		n += 1 + valueNodes(a.Value)
	}
	return n
}

func directiveNodes(dirs ast.DirectiveList) int {
	n := 0
	for _, d := range dirs {
		n += 1 + argumentNodes(d.Arguments)
	}
	return n
}

func valueNodes(v *ast.Value) int {
	n := 1
	for _, c := range v.Children {
		n += valueNodes(c.Value)
	}
	return n
}

// scope is a selection set that contributes fields to one place of the
// response, with the number of inline fragments around it on the way from
// its operation or fragment definition.
type scope struct {
	sel    ast.SelectionSet
	inline int
}

// compareAt adds what gqlparser's OverlappingFieldsCanBeMerged compares at
// the place of the response that scopes select, and below it, at most:
// every pair of fields with one response name (with their arguments by
// name and their values), every pair of fragments spread there, and each
// field against each fragment. Each inline fragment around a selection
// makes the rule compare its contents once more.
func (m *documentMeasure) compareAt(scopes []scope) {
	type group struct {
		fields, args, argsSquared, values int
		below                             []scope
	}
	groups := map[string]*group{}
	spreads, inline := 0, 0
	direct, fromFragments := 0, 0 // fields collected outside and inside fragments
	var collect func(sel ast.SelectionSet, depth int, inFragment bool)
	collect = func(sel ast.SelectionSet, depth int, inFragment bool) {
		inline = max(inline, depth)
		for _, s := range sel {
			switch s := s.(type) {
			case *ast.Field:
				g := groups[s.Alias]
				if g == nil {
					g = &group{}
					groups[s.Alias] = g
				}
				g.fields++
				g.args += len(s.Arguments)
				g.argsSquared += len(s.Arguments) * len(s.Arguments)
				g.values += argumentNodes(s.Arguments)
				if len(s.SelectionSet) > 0 {
					g.below = append(g.below, scope{sel: s.SelectionSet, inline: depth})
				}
				if inFragment {
					fromFragments++
				} else {
					direct++
				}
			case *ast.InlineFragment:
				collect(s.SelectionSet, depth+1, inFragment)
			case *ast.FragmentSpread:
				spreads++
				if def := m.fragments[s.Name]; def != nil {
					collect(def.SelectionSet, depth, true)
				}
			}
		}
	}
	for _, s := range scopes {
		collect(s.sel, s.inline, false)
	}
	n := spreads*(spreads-1)/2 + direct*spreads + fromFragments*max(spreads-1, 0)
	for _, g := range groups {
		n += g.fields*(g.fields-1)/2 + (g.args*g.args-g.argsSquared)/2 + (g.fields-1)*g.values
	}
	m.comparisons += n * (1 + inline)
	for _, g := range groups {
		if m.comparisons > maxMergeComparisons {
			return
		}
		if len(g.below) > 0 {
			m.compareAt(g.below)
		}
	}
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentLimits{}

func (documentLimits) ExtensionName() string { return "DocumentLimits" }

func (documentLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters checks the document of a request, once any
// persisted query has put it in place.
func (documentLimits) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	src := &ast.Source{Input: p.Query}
	if documentTokens(src) > maxDocumentTokens {
		return limitError("the document has more than %d tokens", maxDocumentTokens)
	}
	doc, err := parser.ParseQuery(src)
	if err != nil {
		return nil
	}
	return checkDocument(doc)
}

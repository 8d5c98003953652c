package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"referrals/storage"
)

// Default operation limits. The nested page of BenchmarkNestedPage at 100
// referrals (every field, participants with users and inviter, all four
// tag lists) and its count costs 18,501 with its 2 commands (TestOperationCost), so the default admits it
// and refuses two of them in one operation, or pages inside pages.
const (
	DefaultMaxComplexity = 20_000
	DefaultMaxDepth      = 12
)

// useOperationLimits registers every limit on what one operation may ask:
// the document bounds before parsing and validation, at most
// maxValidationErrors errors, cost and depth before execution; and no
// "Did you mean …?" suggestions when introspection is off. Introspection
// has its own limit (introspectionLimit) instead of cost and depth.
func useOperationLimits(exec *executor.Executor, opts Options) {
	exec.Use(documentLimits{})
	exec.Use(&costLimit{max: opts.MaxComplexity})
	exec.Use(depthLimit{max: opts.MaxDepth})
	exec.Use(&introspectionLimit{})
	// Suggestions name fields, arguments, types and enum values: the schema
	// that introspection being off keeps to itself.
	exec.SetDisableSuggestion(opts.NoIntrospection)
	exec.SetDefaultRulesFn(validationRules(!opts.NoIntrospection))
}

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

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentLimits{}

func (documentLimits) ExtensionName() string                   { return "DocumentLimits" }
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

// Estimated list sizes for lists that are not paged, so their cost scales.
const (
	costParticipantsPerReferral = 4
	costTagsPerList             = 5
	costCatalog                 = 92
)

// costDatabaseCommand is the price of one database command (a page's find,
// a count, a write). On the embedded store each one scans a whole
// collection, 200 `totalCount`s in one operation took 40 s, and the nested
// page of 100 sends four; so one operation may send about 20.
const costDatabaseCommand = 1000

// databaseCommands is how many database commands each run of a field sends,
// for the fields that send their own: root fields and the totalCount of
// root connections, which run once each. Fields read through the
// per-request loaders share batched reads and are priced per item by
// complexityCosts. The writes were counted with the driver's command
// monitor (claims, updates and the change record).
var databaseCommands = map[string]int{
	"Query.referrals":                  1,
	"Query.participants":               1,
	"Query.tags":                       1,
	"Query.referralStats":              2, // the sums and the counts
	"DealValueStats.minimum":           1, // the extremes (one for both)
	"DealValueStats.maximum":           1,
	"ReferralConnection.totalCount":    1,
	"ParticipantConnection.totalCount": 1,
	"Mutation.createReferral":          2,
	"Mutation.updateReferral":          3,
	"Mutation.changeReferralStatus":    4,
	"Mutation.inviteParticipant":       7,
	"Mutation.respondToInvitation":     7,
}

// expiringFilter lists the fields whose ReferralFilter may hold
// participant.expirationDateTime, or a participant status INVITED or
// EXPIRED, which costs one more read (of the participants: the range's,
// or the invitations past their expiration not yet recorded) when the
// selection is built; a page's totalCount counts the same built query.
var expiringFilter = map[string]bool{"Query.referrals": true, "Query.referralStats": true}

// hasExpirationRange reports whether a filter argument, as the document or
// its variables give it, has participant.expirationDateTime or a
// participant status an invitation's expiration changes.
func hasExpirationRange(filter any) bool {
	f, _ := filter.(map[string]any)
	p, _ := f["participant"].(map[string]any)
	statuses, _ := p["status"].([]any)
	if one, ok := p["status"].(string); ok { // a list of one may be given as its value
		statuses = []any{one}
	}
	return p["expirationDateTime"] != nil || slices.Contains(statuses, any("INVITED")) || slices.Contains(statuses, any("EXPIRED"))
}

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
	c.Query.ReferralStats = func(child int, _ *storage.ReferralFilter, groupBy []storage.StatsDimension, _ *storage.StatsOrder, first *int) int {
		// Each list grouped by is read again for every matching referral:
		// priced as one more database command.
		return child*statsGroupsCost(first) + 1 + costDatabaseCommand*storage.StatsListDimensions(groupBy)
	}
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

// statsGroupsCost is the number of groups referralStats may return, by
// which the cost of its selection is multiplied (the total's included, a
// small overestimate). Out-of-range sizes are priced at the maximum.
func statsGroupsCost(first *int) int {
	n := storage.DefaultStatsGroups
	if first != nil {
		n = *first
	}
	if n < 0 || n > storage.MaxStatsGroups {
		n = storage.MaxStatsGroups
	}
	return max(n, 1)
}

// costLimit refuses operations that cost more than max (operationCost)
// before any of them runs.
type costLimit struct {
	max int
	es  graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &costLimit{}

func (*costLimit) ExtensionName() string { return "CostLimit" }

// Validate keeps the schema, whose complexity functions price the fields.
func (c *costLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

// MutateOperationContext prices the operation to run.
func (c *costLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if cost := operationCost(ctx, c.es, opCtx.Operation, opCtx.Variables); cost > c.max {
		return limitError("operation has complexity %d, which exceeds the limit of %d", cost, c.max)
	}
	return nil
}

// costCeiling caps costs, far above any limit, so that no sum or product
// of them overflows.
const costCeiling = 1 << 40

// cost is the price of a selection: fields by gqlgen's model, and the
// database commands it sends.
type cost struct{ fields, commands int }

func (c cost) plus(d cost) cost {
	return cost{min(c.fields+d.fields, costCeiling), min(c.commands+d.commands, costCeiling)}
}

// operationCost is the cost of op: gqlgen's model (complexity.Calculate:
// each field 1 plus its children's cost, or its complexityCosts function;
// introspection free, as introspectionLimit bounds it) with each fragment
// priced once however often it is spread, so pricing takes time linear in
// the document, plus costDatabaseCommand for each database command op
// sends. The schema has no interfaces or unions, so gqlgen's rule for them
// does not arise.
func operationCost(ctx context.Context, es graphql.ExecutableSchema, op *ast.OperationDefinition, vars map[string]any) int {
	w := costWalk{ctx: ctx, es: es, vars: vars, fragments: map[string]cost{}}
	c := w.selectionSet(op.SelectionSet)
	return min(c.fields+c.commands*costDatabaseCommand, costCeiling)
}

type costWalk struct {
	ctx       context.Context
	es        graphql.ExecutableSchema
	vars      map[string]any
	fragments map[string]cost // each fragment's cost, once priced
}

func (w *costWalk) selectionSet(sel ast.SelectionSet) cost {
	var total cost
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			total = total.plus(w.field(s))
		case *ast.InlineFragment:
			total = total.plus(w.selectionSet(s.SelectionSet))
		case *ast.FragmentSpread:
			c, ok := w.fragments[s.Name]
			if !ok {
				c = w.selectionSet(s.Definition.SelectionSet)
				w.fragments[s.Name] = c
			}
			total = total.plus(c)
		}
	}
	return total
}

func (w *costWalk) field(f *ast.Field) cost {
	if isIntrospectionRoot(f) {
		return cost{}
	}
	name := f.ObjectDefinition.Name + "." + f.Name
	commands := databaseCommands[name]
	if expiringFilter[name] && hasExpirationRange(f.ArgumentMap(w.vars)["filter"]) {
		commands++ // the participants read that builds the selection
	}
	typ := w.es.Schema().Types[f.Definition.Type.Name()]
	var child cost
	if typ.Kind == ast.Object {
		child = w.selectionSet(f.SelectionSet)
	}
	c := cost{fields: 1 + child.fields, commands: child.commands + commands}
	if custom, ok := w.es.Complexity(w.ctx, f.ObjectDefinition.Name, f.Name, child.fields, f.ArgumentMap(w.vars)); ok && custom >= 1 {
		c.fields = custom
	}
	return cost{min(c.fields, costCeiling), min(c.commands, costCeiling)}
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
	if op != nil && selectsIntrospection(op.SelectionSet, map[string]bool{}) {
		return codedError(storage.CodeForbidden, "introspection is disabled on this server; start it with --introspection to enable it")
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

// maxValidationErrors is how many validation errors a response reports, as
// graphql-js's validate stops at 100: past that they are of no use to the
// client and, each one megabytes apart from the next, a document of
// errors would cost more memory than any other.
const maxValidationErrors = 100

// validationRules returns gqlparser's validation rules and decimalLiterals,
// reporting at most
// maxValidationErrors errors per document. Without suggestions, the rules
// that suggest names ("Did you mean …?") are swapped for their variants
// that do not, under the names SetDisableSuggestion swaps them to, so that
// its own swap finds them in place.
func validationRules(suggest bool) func() *rules.Rules {
	return func() *rules.Rules {
		base := rules.NewDefaultRules()
		base.AddRule(decimalLiterals.Name, decimalLiterals.RuleFunc)
		if !suggest {
			for _, swap := range []struct{ with, without core.Rule }{
				{rules.FieldsOnCorrectTypeRule, rules.FieldsOnCorrectTypeRuleWithoutSuggestions},
				{rules.ScalarLeafsRule, rules.ScalarLeafsRuleWithoutSuggestions},
				{rules.KnownArgumentNamesRule, rules.KnownArgumentNamesRuleWithoutSuggestions},
				{rules.KnownTypeNamesRule, rules.KnownTypeNamesRuleWithoutSuggestions},
				{rules.ValuesOfCorrectTypeRule, rules.ValuesOfCorrectTypeRuleWithoutSuggestions},
			} {
				base.RemoveRule(swap.with.Name)
				base.AddRule(swap.without.Name, swap.without.RuleFunc)
			}
		}
		reported := 0 // one document is validated by one goroutine
		capped := rules.NewRules()
		for name, rule := range base.GetInner() {
			capped.AddRule(name, func(observers *core.Events, addError core.AddErrFunc) {
				rule(observers, func(options ...core.ErrorOption) {
					switch reported++; {
					case reported <= maxValidationErrors:
						addError(options...)
					case reported == maxValidationErrors+1:
						addError(core.Message("more than %d validation errors; the rest are not reported", maxValidationErrors))
					}
				})
			})
		}
		return capped
	}
}

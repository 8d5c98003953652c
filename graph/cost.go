package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"referrals/storage"
)

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

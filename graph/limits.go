package graph

import (
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// useOperationLimits registers every limit on what one operation may ask:
// the document bounds before parsing and validation, at most
// maxValidationErrors errors, cost and depth before execution; and no
// "Did you mean …?" suggestions when introspection is off. Introspection
// has its own limit (introspectionLimit) instead of cost and depth.
func useOperationLimits(exec *executor.Executor, maxComplexity, maxDepth int, noIntrospection bool) {
	exec.Use(documentLimits{})
	exec.Use(&costLimit{max: maxComplexity})
	exec.Use(depthLimit{max: maxDepth})
	exec.Use(&introspectionLimit{})
	// Suggestions name fields, arguments, types and enum values: the schema
	// that introspection being off keeps to itself.
	exec.SetDisableSuggestion(noIntrospection)
	exec.SetDefaultRulesFn(validationRules(!noIntrospection))
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

// Default operation limits. The nested page of BenchmarkNestedPage at 100
// referrals (every field, participants with users and inviter, all four
// tag lists) and its count costs 18,501 with its 2 commands (TestOperationCost), so the default admits it
// and refuses two of them in one operation, or pages inside pages.
const (
	DefaultMaxComplexity = 20_000
	DefaultMaxDepth      = 12
)

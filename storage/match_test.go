package storage

import (
	"slices"
	"testing"
	"time"
)

// TestMatchesAgreesWithQuery checks that the in-memory matcher and the
// MongoDB query select the same referrals for a range of filters.
func TestMatchesAgreesWithQuery(t *testing.T) {
	s := newTestStore(t)
	refs, parts := demoGenerate(3, 150, testAnchor)
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	mid := refs[len(refs)/2].CreatedDateTime
	later := mid.Add(60 * 24 * time.Hour)
	lo, hi := Money(10_000_000), Money(30_000_000)
	name, org := "ar", refs[0].Participation[0].OrganizationID
	allOf := refs[1].Details.Requirements.Products
	filters := map[string]ReferralFilter{
		"Empty":        {},
		"Status":       {Status: []ReferralStatus{ReferralWon, ReferralPending}},
		"Source":       {ReferralSource: []ReferralSource{SourceAgentLed}},
		"Created":      {CreatedDateTime: &TimeRange{From: &mid, To: &later}},
		"UpdatedTo":    {UpdatedDateTime: &TimeRange{To: &mid}},
		"Closing":      {ClosingDate: &TimeRange{From: &mid}},
		"Deal":         {DealValue: &MoneyRange{Min: &lo, Max: &hi}},
		"TagsAny":      {Requirements: &RequirementsFilter{Solutions: &TagMatch{AnyOf: []string{"DevOps", "BigData", "Gaming"}}}},
		"TagsAll":      {Requirements: &RequirementsFilter{Products: &TagMatch{AllOf: allOf}}},
		"Organization": {Participant: &ParticipantMatch{OrganizationID: &org}},
		"OrgStatus":    {Participant: &ParticipantMatch{OrganizationID: &org, Status: []ParticipantStatus{ParticipantAccepted}}},
		"PartStatus":   {Participant: &ParticipantMatch{Status: []ParticipantStatus{ParticipantRejected}}},
		"Name":         {CustomerName: &name},
		"Country":      {CustomerCountry: []string{"jp", "BR"}},
		"Combined":     {Status: []ReferralStatus{ReferralActive}, CustomerCountry: []string{"US", "DE", "GB"}, DealValue: &MoneyRange{Min: &lo}},
	}
	for label, f := range filters {
		t.Run(label, func(t *testing.T) {
			var want []string
			for i := range refs {
				if f.Matches(&refs[i]) {
					want = append(want, refs[i].ID)
				}
			}
			got := pageForward(t, s, &f, nil, 100)
			slices.Sort(got)
			slices.Sort(want)
			if label != "Empty" && (len(want) == 0 || len(want) == len(refs)) {
				t.Fatalf("the filter selects %d of %d: it cannot tell the two apart", len(want), len(refs))
			}
			if !slices.Equal(got, want) {
				t.Errorf("query selects %d, Matches %d\nquery   %v\nmatches %v", len(got), len(want), got, want)
			}
		})
	}
}

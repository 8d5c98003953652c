package storage

import (
	"testing"
	"time"
)

// FuzzDecodeCursor feeds arbitrary text to the cursor decoder: it never
// panics, and anything it refuses is a BAD_USER_INPUT error.
func FuzzDecodeCursor(f *testing.F) {
	scope := cursorScope("referrals", sortOrder{Field: "details.dealValueCents"})
	f.Add(encodeCursor(scope, Money(1250), "r1"))
	f.Add(encodeCursor(scope, nil, "r2"))
	f.Add(encodeCursor(scope, time.Unix(1, 0), "r3"))
	f.Add("")
	f.Add("eyJvIjoxfQ")
	f.Fuzz(func(t *testing.T, s string) {
		_, id, err := decodeCursor(scope, "after", s)
		if err != nil && ErrorCodeOf(err) != CodeBadUserInput {
			t.Fatalf("error %v is not BAD_USER_INPUT", err)
		}
		if err == nil && id == "" {
			t.Fatal("accepted a cursor without an id")
		}
	})
}

// FuzzReferralFilter builds filters from arbitrary values: building the
// query never panics, refusals are BAD_USER_INPUT, and a filter that builds
// can be matched in memory.
func FuzzReferralFilter(f *testing.F) {
	f.Add("harbor", "GB", int64(0), int64(100), int64(0), int64(86400), "Azure", "Teams", "org", "Won")
	f.Add("(.*", "usa", int64(5), int64(1), int64(10), int64(10), "", "", "", "")
	f.Fuzz(func(t *testing.T, name, country string, lo, hi, from, to int64, anyTag, allTag, org, status string) {
		min, max := Money(lo), Money(hi)
		start, end := time.Unix(from, 0), time.Unix(to, 0)
		filter := ReferralFilter{
			Status:          []ReferralStatus{ReferralStatus(status)},
			CustomerName:    &name,
			CustomerCountry: []string{country},
			DealValue:       &MoneyRange{Min: &min, Max: &max},
			CreatedDateTime: &TimeRange{From: &start, To: &end},
			Requirements:    &RequirementsFilter{Products: &TagMatch{AnyOf: []string{anyTag}, AllOf: []string{allTag}}},
			Participant:     &ParticipantMatch{OrganizationID: &org, Status: []ParticipantStatus{ParticipantStatus(status)}},
		}
		if err := filter.check(); err != nil {
			if ErrorCodeOf(err) != CodeBadUserInput {
				t.Fatalf("error %v is not BAD_USER_INPUT", err)
			}
			return
		}
		_ = filter.query() // a checked filter builds
		closing := start.Add(time.Hour)
		value := Money(lo)
		filter.Matches(&Referral{Status: ReferralStatus(status), CreatedDateTime: start,
			CustomerProfile: &CustomerProfile{Name: name, Address: &Address{Country: country}},
			Details:         &ReferralDetails{DealValue: &value, ClosingDate: &closing},
			Participation:   []Participation{{OrganizationID: org}}})
	})
}

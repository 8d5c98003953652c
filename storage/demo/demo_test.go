package demo

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"referrals/storage"
	"referrals/storage/storagetest"
)

var testServer *storagetest.Server

func TestMain(m *testing.M) {
	storagetest.Main(m, nil, func(s *storagetest.Server) { testServer = s })
}

// testAnchor is the day the tests' demo data is made on.
var testAnchor = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// TestDemoIsAPipeline seeds the server's demo (its seed, 200 referrals) and
// asks the store docs/api.md's example questions: each finds a handful of
// referrals. The data is spread like a pipeline's, and no invitation is
// left open past its expiration for the first sweep to record.
func TestDemoIsAPipeline(t *testing.T) {
	s := testServer.NewStore(t, nil)
	ctx := storage.WithCaller(t.Context(), storage.Caller{Subject: "test", Role: storage.RoleAdmin})
	const serverSeed = 2026 // demoSeed in server.go
	refs, parts := Generate(serverSeed, 200, testAnchor)
	if err := s.InsertReferrals(ctx, refs, parts); err != nil {
		t.Fatal(err)
	}
	big := storage.Money(100_000_00)
	from, to := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)
	contoso := "5f0d7c1e-6a3b-4c1e-9a51-0b7e3c9d2a01"
	count := map[string]func() (int, error){
		"OpenBigDealsInDEOrGB": func() (int, error) {
			return s.CountReferrals(ctx, &storage.ReferralFilter{Status: []storage.ReferralStatus{storage.ReferralPending, storage.ReferralActive},
				CustomerCountry: []string{"DE", "GB"}, DealValue: &storage.MoneyRange{Min: &big}})
		},
		"HealthcareAzureOrTeamsClosingH1": func() (int, error) {
			return s.CountReferrals(ctx, &storage.ReferralFilter{ClosingDate: &storage.TimeRange{From: &from, To: &to},
				Requirements: &storage.RequirementsFilter{IndustryFocus: &storage.TagMatch{AnyOf: []string{"Healthcare"}}, Products: &storage.TagMatch{AnyOf: []string{"Azure", "Teams"}}}})
		},
		"ContosoAccepted": func() (int, error) {
			return s.CountParticipants(ctx, &storage.ParticipantFilter{OrganizationID: &contoso, Status: []storage.ParticipantStatus{storage.ParticipantAccepted}})
		},
	}
	for name, n := range count {
		if got, err := n(); err != nil || got < 3 || got > 30 {
			t.Errorf("%s: %d, %v; want a handful (3 to 30)", name, got, err)
		}
	}

	seen := map[string]bool{}
	for _, r := range refs {
		seen[string(r.Status)] = true
		seen[string(r.ReferralSource)] = true
		seen[r.CustomerProfile.Address.Country] = true
	}
	for _, place := range demoPlaces {
		if !seen[place.country] {
			t.Errorf("no customer in %s", place.country)
		}
	}
	for _, want := range []string{"Pending", "Active", "Won", "Lost", "Archived", "WebDirect", "PartnerLed", "AgentLed", "P2P"} {
		if !seen[want] {
			t.Errorf("no referral is %s", want)
		}
	}
	for _, p := range parts {
		if p.Status == storage.ParticipantInvited && !p.ExpirationDateTime.After(testAnchor) {
			t.Errorf("participant %s is Invited past its expiration (%s)", p.ID, p.ExpirationDateTime)
		}
	}
}

// TestDemoDoesNotDependOnTheDay: the demo seeded on two days holds the
// same referrals (everything but dates), with creation dates moved by the
// days between; before, sources and amounts changed with the day (the
// tables of docs/analytics.md stopped matching a fresh store).
func TestDemoDoesNotDependOnTheDay(t *testing.T) {
	days := []time.Time{
		time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC),
		time.Date(2027, 3, 17, 0, 0, 0, 0, time.UTC),
		time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC),
	}
	first, firstParts := Generate(2026, 500, days[0])
	// Only what no date shapes: the same in every generation.
	undated := func(r storage.Referral, parts []storage.Participant) string {
		var b strings.Builder
		a := r.CustomerProfile.Address
		fmt.Fprintf(&b, "%s %s %s %v %s %q %s %q %s %s %+v %+v|", r.ID, r.Status, r.ReferralSource, *r.Details.DealValue,
			a.AddressLine1, str(a.AddressLine2), a.City, str(a.State), a.PostalCode, a.Country, r.CustomerProfile.Contacts, r.Details.Requirements)
		fmt.Fprint(&b, r.CustomerProfile.Name, r.CustomerProfile.Size, *r.Details.Notes)
		for _, p := range parts {
			if p.ReferralID == r.ID {
				fmt.Fprintf(&b, "|%s %s %s %+v", p.ID, p.OrganizationID, p.Status, p.Users)
			}
		}
		return b.String()
	}
	for _, day := range days[1:] {
		refs, parts := Generate(2026, 500, day)
		if len(refs) != len(first) || len(parts) != len(firstParts) {
			t.Fatalf("anchored on %s: %d referrals and %d participants, want %d and %d", day.Format(time.DateOnly), len(refs), len(parts), len(first), len(firstParts))
		}
		for i := range refs {
			if got, want := undated(refs[i], parts), undated(first[i], firstParts); got != want {
				t.Fatalf("anchored on %s, referral %d differs:\n%s\nwant\n%s", day.Format(time.DateOnly), i, got, want)
			}
			if moved := refs[i].CreatedDateTime.Sub(first[i].CreatedDateTime); moved != day.Sub(days[0]) {
				t.Fatalf("anchored on %s, referral %d was created %s later, want %s", day.Format(time.DateOnly), i, moved, day.Sub(days[0]))
			}
		}
	}
}

// TestDemoContactsBelongToTheirPlace: a customer's company has its
// country's legal form and its contacts its phone numbers; e-mail
// addresses spell names in ASCII.
func TestDemoContactsBelongToTheirPlace(t *testing.T) {
	dial := map[string]string{"US": "+1 ", "CA": "+1 ", "GB": "+44 ", "DE": "+49 ", "FR": "+33 ", "IN": "+91 ", "AU": "+61 ", "JP": "+81 ", "BR": "+55 ", "NL": "+31 "}
	refs, _ := Generate(2026, 500, testAnchor)
	for _, r := range refs {
		c := r.CustomerProfile
		country := c.Address.Country
		if !slices.ContainsFunc(demoLegalForms[country], func(form string) bool { return strings.HasSuffix(c.Name, " "+form) }) {
			t.Errorf("%s in %s: not one of its legal forms %v", c.Name, country, demoLegalForms[country])
		}
		for _, ct := range c.Contacts {
			if !strings.HasPrefix(ct.PhoneNumber, dial[country]) || strings.Contains(ct.PhoneNumber, "#") {
				t.Errorf("a contact of %s in %s has phone %s", c.Name, country, ct.PhoneNumber)
			}
			local := strings.TrimSuffix(ct.Email, "@example.com")
			for _, ch := range local {
				if (ch < 'a' || ch > 'z') && ch != '.' {
					t.Errorf("e-mail %s of %s %s is not plain ASCII letters", ct.Email, ct.FirstName, ct.LastName)
					break
				}
			}
		}
	}
	for in, want := range map[string]string{"García": "garcia", "Tomás": "tomas", "O'Brien": "obrien", "Mönckebergstraße": "monckebergstrasse", "Søren": "soren"} {
		if got := asciiLower(in); got != want {
			t.Errorf("asciiLower(%q) = %q, want %q", in, got, want)
		}
	}
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestGenerateIsDeterministic: one seed gives one set of referrals, and
// another seed another.
func TestGenerateIsDeterministic(t *testing.T) {
	a, pa := Generate(1, 20, testAnchor)
	b, pb := Generate(1, 20, testAnchor)
	c, _ := Generate(2, 20, testAnchor)
	if a[7].ID != b[7].ID || pa[7].ID != pb[7].ID || a[7].CustomerProfile.Name != b[7].CustomerProfile.Name {
		t.Error("the same seed gave different data")
	}
	if a[7].ID == c[7].ID {
		t.Error("different seeds gave the same ids")
	}
}

package storage

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDemoIsAPipeline seeds the server's demo (its seed, 200 referrals) and
// asks the store the README's example questions: each finds a handful of
// referrals. The data is spread like a pipeline's, and no invitation is
// left open past its expiration for the first sweep to record.
func TestDemoIsAPipeline(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	const serverSeed = 2026 // demoSeed in server.go
	refs, parts := GenerateDemo(serverSeed, 200, testAnchor)
	if err := s.InsertReferrals(ctx, refs, parts); err != nil {
		t.Fatal(err)
	}
	big := Money(100_000_00)
	from, to := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)
	contoso := "5f0d7c1e-6a3b-4c1e-9a51-0b7e3c9d2a01"
	count := map[string]func() (int, error){
		"OpenBigDealsInDEOrGB": func() (int, error) {
			return s.CountReferrals(ctx, &ReferralFilter{Status: []ReferralStatus{ReferralPending, ReferralActive},
				CustomerCountry: []string{"DE", "GB"}, DealValue: &MoneyRange{Min: &big}})
		},
		"HealthcareAzureOrTeamsClosingH1": func() (int, error) {
			return s.CountReferrals(ctx, &ReferralFilter{ClosingDate: &TimeRange{From: &from, To: &to},
				Requirements: &RequirementsFilter{IndustryFocus: &TagMatch{AnyOf: []string{"Healthcare"}}, Products: &TagMatch{AnyOf: []string{"Azure", "Teams"}}}})
		},
		"ContosoAccepted": func() (int, error) {
			return s.CountParticipants(ctx, &ParticipantFilter{OrganizationID: &contoso, Status: []ParticipantStatus{ParticipantAccepted}})
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
	for _, want := range slices.Concat(toA(referralStatusPositions), toA(referralSourcePositions)) {
		if !seen[want.(string)] {
			t.Errorf("no referral is %s", want)
		}
	}
	for _, p := range parts {
		if p.Status == ParticipantInvited && !p.ExpirationDateTime.After(testAnchor) {
			t.Errorf("participant %s is Invited past its expiration (%s)", p.ID, p.ExpirationDateTime)
		}
	}
}

// attrCounter is a handler that counts the attributes it is given.
type attrCounter struct {
	attrs   *int
	records *[]string
}

func (h attrCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h attrCounter) Handle(_ context.Context, r slog.Record) error {
	*h.records = append(*h.records, r.Message)
	return nil
}
func (h attrCounter) WithAttrs(a []slog.Attr) slog.Handler { *h.attrs += len(a); return h }
func (h attrCounter) WithGroup(string) slog.Handler        { return h }

// TestEmbeddedLoggerSkipsDebugAttributes: FerretDB adds every statement's
// arguments to its logger before each debug call; they reach the server's
// handler only with a record that is logged.
func TestEmbeddedLoggerSkipsDebugAttributes(t *testing.T) {
	var attrs int
	var records []string
	logger := slog.New(errorsOnly{base: attrCounter{&attrs, &records}})
	logger.With("args", strings.Repeat("document ", 1000)).Debug("statement")
	logger.WithGroup("g").With("args", "x").Warn("routine")
	if attrs != 0 || len(records) != 0 {
		t.Fatalf("below error level: %d attributes passed on, records %v", attrs, records)
	}
	logger.With("args", "x").Error("failed")
	if attrs != 1 || !slices.Equal(records, []string{"failed"}) {
		t.Errorf("an error: %d attributes and records %v, want 1 and [failed]", attrs, records)
	}
}

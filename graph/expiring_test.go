package graph

import (
	"slices"
	"testing"
	"time"

	"referrals/internal/testclock"
	"referrals/storage"
)

// TestExpiringInvitations asks "which invitations expire in this week"
// in one query, of participants and of referrals, and checks the answer
// against the seeded participants.
func TestExpiringInvitations(t *testing.T) {
	// The store's clock stands at the seed's anchor: its open invitations
	// are INVITED, as they would be read, not past their expiration.
	clock := testclock.At(testAnchor)
	e := newEnvAt(t, demoSize, clock.Now)
	// The week starts at the first open invitation's expiration, so that
	// it holds some of the seeded invitations and leaves others out.
	var from time.Time
	invited := 0
	for _, p := range e.parts {
		if p.Status == storage.ParticipantInvited && p.ExpirationDateTime != nil {
			invited++
			if from.IsZero() || p.ExpirationDateTime.Before(from) {
				from = *p.ExpirationDateTime
			}
		}
	}
	to := from.AddDate(0, 0, 7)
	var wantParts, wantRefs []string
	for _, p := range e.parts {
		if p.Status == storage.ParticipantInvited && !p.ExpirationDateTime.Before(from) && p.ExpirationDateTime.Before(to) {
			wantParts = append(wantParts, p.ID)
			if !slices.Contains(wantRefs, p.ReferralID) {
				wantRefs = append(wantRefs, p.ReferralID)
			}
		}
	}
	if len(wantParts) == 0 || len(wantParts) == invited {
		t.Fatalf("%d of the seed's %d open invitations expire in the week from %v; the test needs some in and some out", len(wantParts), invited, from)
	}
	var got struct {
		Participants struct {
			TotalCount int
			Nodes      []struct{ ID string }
		}
		Referrals struct {
			TotalCount int
			Nodes      []struct{ ID string }
		}
	}
	window := map[string]any{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}
	e.post(t, `query($w: DateTimeRange!) {
	  participants(filter: { status: [INVITED], expirationDateTime: $w }, first: 100) { totalCount nodes { id } }
	  referrals(filter: { participant: { status: [INVITED], expirationDateTime: $w } }, first: 100) { totalCount nodes { id } }
	}`, map[string]any{"w": window}).mustData(t, &got)
	ids := func(nodes []struct{ ID string }) []string {
		var out []string
		for _, n := range nodes {
			out = append(out, n.ID)
		}
		slices.Sort(out)
		return out
	}
	slices.Sort(wantParts)
	slices.Sort(wantRefs)
	if p := ids(got.Participants.Nodes); !slices.Equal(p, wantParts) || got.Participants.TotalCount != len(wantParts) {
		t.Errorf("participants %v (total %d), want %v", p, got.Participants.TotalCount, wantParts)
	}
	if r := ids(got.Referrals.Nodes); !slices.Equal(r, wantRefs) || got.Referrals.TotalCount != len(wantRefs) {
		t.Errorf("referrals %v (total %d), want %v", r, got.Referrals.TotalCount, wantRefs)
	}
	t.Run("BadRange", func(t *testing.T) {
		e.post(t, `{ participants(filter: { expirationDateTime: { from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z" } }) { totalCount } }`, nil).
			wantBadInput(t, "filter.expirationDateTime", "before")
	})
	t.Run("NotInSubscriptions", func(t *testing.T) {
		f := &storage.ReferralFilter{Participant: &storage.ParticipantMatch{ExpirationDateTime: &storage.TimeRange{From: &from}}}
		if err := f.Validate(); storage.ErrorCodeOf(err) != storage.CodeBadUserInput {
			t.Errorf("Validate = %v, want BAD_USER_INPUT", err)
		}
	})
}

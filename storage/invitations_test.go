package storage

import (
	"sync"
	"testing"
	"time"

	"referrals/internal/testclock"
)

// TestExpireInvitations records a past-due invitation as Expired, in the
// participant and in its referral, exactly once even with two sweeps at
// once, and leaves a current invitation alone. The store's clock moves past
// the expiration; nothing waits for the wall clock.
func TestExpireInvitations(t *testing.T) {
	clock := testclock.At(testAnchor)
	s := newTestStoreAt(t, clock.Now)
	ctx := asAdmin(t)
	r, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
		Name: ptr("Sweep Ltd"), Address: &Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}})
	if err != nil {
		t.Fatal(err)
	}
	soon := clock.Now().Add(time.Hour)
	late, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "late", OrganizationName: "Late", ExpirationDateTime: &soon})
	if err != nil {
		t.Fatal(err)
	}
	current, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "current", OrganizationName: "Current"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireInvitations(ctx); n != 0 || err != nil {
		t.Fatalf("a sweep before the expiration expired %d (%v), want 0", n, err)
	}
	clock.Advance(time.Hour)

	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.ExpireInvitations(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 {
		t.Errorf("the sweeps expired %v invitations, want 1 in all", counts)
	}
	parts, err := s.ParticipantsByID(ctx, []string{late.ID, current.ID})
	if err != nil {
		t.Fatal(err)
	}
	if parts[late.ID].Status != ParticipantExpired || parts[current.ID].Status != ParticipantInvited {
		t.Errorf("stored statuses %s and %s, want Expired and Invited", parts[late.ID].Status, parts[current.ID].Status)
	}
	n, err := s.CountReferrals(ctx, &ReferralFilter{Participant: &ParticipantMatch{OrganizationID: ptr("late"), Status: []ParticipantStatus{ParticipantExpired}}})
	if err != nil || n != 1 {
		t.Errorf("referrals with an expired participant from late: %d, %v; want 1", n, err)
	}
	if n, err := s.ExpireInvitations(ctx); n != 0 || err != nil {
		t.Errorf("a second sweep expired %d (%v), want 0", n, err)
	}
	if _, err := s.RespondToInvitation(ctx, late.ID, Accept); ErrorCodeOf(err) != CodeBadUserInput {
		t.Errorf("accepting an expired invitation: %v, want BAD_USER_INPUT", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestClaimLifetimes checks that version claims expire and that the claims
// keeping an organization to one participation do not.
func TestClaimLifetimes(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	r, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
		Name: ptr("Claims Ltd"), Address: &Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"}); err != nil {
		t.Fatal(err)
	}
	for key, expires := range map[string]bool{"referral:" + r.ID + ":v2": true, "participation:" + r.ID + ":o": false} {
		var doc struct {
			ExpiresAt *time.Time `bson:"expiresAt"`
		}
		if err := s.claims.FindOne(ctx, map[string]any{"_id": key}).Decode(&doc); err != nil {
			t.Fatalf("claim %s: %v", key, err)
		}
		if (doc.ExpiresAt != nil) != expires {
			t.Errorf("claim %s: expires = %v, want %v", key, doc.ExpiresAt != nil, expires)
		}
	}
}

package storage

import (
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// abandonedAt is when the claims of a write that a dead process left
// halfway were made: long enough ago to be recovered.
func abandonedAt() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond).Add(-abandonedAfter - time.Minute)
}

// putClaim writes a claim directly, as a writer that died after it would
// have: a pending one with its pendingWrites entry, written before it.
func putClaim(t *testing.T, s *Store, key string, at time.Time, pending bool) {
	t.Helper()
	doc := bson.D{{Key: "_id", Value: key}, {Key: "at", Value: at}}
	if pending {
		doc = append(doc, bson.E{Key: "pending", Value: true})
		if _, err := s.pending.InsertOne(t.Context(), doc[:2]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.claims.InsertOne(t.Context(), doc); err != nil {
		t.Fatal(err)
	}
}

func newReferral(t *testing.T, s *Store) *Referral {
	t.Helper()
	r, err := s.CreateReferral(asAdmin(t), ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
		Name: ptr("Crash Ltd"), Address: &Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// storedParticipation returns the participation entries of referral id.
func storedParticipation(t *testing.T, s *Store, id string) []Participation {
	t.Helper()
	r, err := s.referralByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Participation
}

// claimPendingState returns whether claim key exists and is pending.
func claimPendingState(t *testing.T, s *Store, key string) (exists, pending bool) {
	t.Helper()
	var c claimDoc
	if err := s.claims.FindOne(t.Context(), bson.D{{Key: "_id", Value: key}}).Decode(&c); err != nil {
		return false, false
	}
	return true, c.Pending
}

// TestRecoverAbandonedWrites builds, directly through the driver, what a
// process that died in the middle of a write leaves behind, and checks the
// API works again: the write is undone or finished, consistently.
func TestRecoverAbandonedWrites(t *testing.T) {
	t.Run("VersionClaimWithoutUpdate", func(t *testing.T) {
		s := newTestStore(t)
		ctx := asAdmin(t)
		r := newReferral(t, s)
		putClaim(t, s, "referral:"+r.ID+":v2", abandonedAt(), false)
		got, err := s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{Details: &DetailsInput{Notes: ptr("after the crash")}})
		if err != nil || got.Version != 2 {
			t.Fatalf("update at version 1: %v, %v; want version 2", got, err)
		}
		if _, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"}); err != nil {
			t.Errorf("invite after the crash: %v", err)
		}
	})
	t.Run("ErrConflictWhileTheWriterMayLive", func(t *testing.T) {
		s := newTestStore(t)
		ctx := asAdmin(t)
		r := newReferral(t, s)
		putClaim(t, s, "referral:"+r.ID+":v2", time.Now().UTC().Truncate(time.Millisecond), false)
		putClaim(t, s, "participation:"+r.ID+":o", time.Now().UTC().Truncate(time.Millisecond), true)
		if _, err := s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{Details: &DetailsInput{Notes: ptr("n")}}); ErrorCodeOf(err) != CodeConflict {
			t.Errorf("update while version 2 is claimed: %v, want CONFLICT", err)
		}
		if err := s.RecoverWrites(ctx); err != nil {
			t.Fatal(err)
		}
		if exists, _ := claimPendingState(t, s, "participation:"+r.ID+":o"); !exists {
			t.Error("recovery undid a write that may still be under way")
		}
	})
	t.Run("InvitationClaimOnly", func(t *testing.T) {
		s := newTestStore(t)
		r := newReferral(t, s)
		putClaim(t, s, "participation:"+r.ID+":o", abandonedAt(), true)
		if _, err := s.InviteParticipant(asAdmin(t), r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"}); err != nil {
			t.Fatalf("invite after the crash: %v", err)
		}
		if list := storedParticipation(t, s, r.ID); len(list) != 1 || list[0].OrganizationID != "o" {
			t.Errorf("participation %+v, want o's", list)
		}
	})
	t.Run("ParticipantWithoutParticipation", func(t *testing.T) {
		// The failure of the hostile pass: the participant and its claim,
		// no entry in the referral, and the version the update claimed.
		s := newTestStore(t)
		ctx := asAdmin(t)
		r := newReferral(t, s)
		p := &Participant{ID: "p-crash", ReferralID: r.ID, CreatedDateTime: abandonedAt(), OrganizationID: "o",
			OrganizationName: "O", Users: []ParticipantUser{}, Status: ParticipantInvited}
		if _, err := s.participants.InsertOne(ctx, p); err != nil {
			t.Fatal(err)
		}
		putClaim(t, s, "participation:"+r.ID+":o", abandonedAt(), true)
		putClaim(t, s, "referral:"+r.ID+":v2", abandonedAt(), false)
		partner := WithCaller(t.Context(), Caller{Subject: "u", OrganizationID: "o", Role: RolePartner})

		other, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "other", OrganizationName: "Other"})
		if err != nil {
			t.Fatalf("inviting another organization after the crash: %v", err)
		}
		if err := s.Prepare(ctx); err != nil { // a restart
			t.Fatal(err)
		}
		var ids []string
		for _, e := range storedParticipation(t, s, r.ID) {
			ids = append(ids, e.ParticipantID)
		}
		want := []string{other.ID, p.ID}
		slices.Sort(ids)
		if slices.Sort(want); !slices.Equal(ids, want) {
			t.Errorf("participation of %v, want %s and %s", ids, other.ID, p.ID)
		}
		if seen, err := s.ReferralsByID(partner, []string{r.ID}); err != nil || seen[r.ID] == nil {
			t.Errorf("the invited partner reads referral %s as %v, %v", r.ID, seen[r.ID], err)
		}
		if exists, pending := claimPendingState(t, s, "participation:"+r.ID+":o"); !exists || pending {
			t.Errorf("claim exists %v, pending %v; want a settled claim", exists, pending)
		}
		if _, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"}); ErrorCodeOf(err) != CodeConflict {
			t.Errorf("inviting o again: %v, want CONFLICT (it takes part)", err)
		}
	})
	t.Run("AnswerClaimOnly", func(t *testing.T) {
		s := newTestStore(t)
		ctx := asAdmin(t)
		r := newReferral(t, s)
		p, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"})
		if err != nil {
			t.Fatal(err)
		}
		putClaim(t, s, "answer:"+p.ID, abandonedAt(), true)
		got, err := s.RespondToInvitation(ctx, p.ID, Accept)
		if err != nil || got.Status != ParticipantAccepted {
			t.Fatalf("answer after the crash: %v, %v", got, err)
		}
		if list := storedParticipation(t, s, r.ID); len(list) != 1 || list[0].Status != ParticipantAccepted {
			t.Errorf("participation %+v, want o Accepted", list)
		}
	})
	t.Run("AnswerWithoutParticipation", func(t *testing.T) {
		s := newTestStore(t)
		ctx := asAdmin(t)
		r := newReferral(t, s)
		p, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"})
		if err != nil {
			t.Fatal(err)
		}
		putClaim(t, s, "answer:"+p.ID, abandonedAt(), true)
		_, err = s.participants.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: ParticipantAccepted}}}})
		if err != nil {
			t.Fatal(err)
		}
		before, err := s.changes.CountDocuments(ctx, bson.D{{Key: "referralId", Value: r.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare(ctx); err != nil { // a restart
			t.Fatal(err)
		}
		if list := storedParticipation(t, s, r.ID); len(list) != 1 || list[0].Status != ParticipantAccepted || list[0].OrgStatus != "o/Accepted" {
			t.Errorf("participation %+v, want o Accepted", list)
		}
		if after, _ := s.changes.CountDocuments(ctx, bson.D{{Key: "referralId", Value: r.ID}}); after != before+1 {
			t.Errorf("%d changes recorded for the finished answer, want 1", after-before)
		}
		if _, err := s.RespondToInvitation(ctx, p.ID, Reject); ErrorCodeOf(err) != CodeBadUserInput {
			t.Errorf("answering again: %v, want BAD_USER_INPUT (it is Accepted)", err)
		}
	})
}

package storage

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestStoreClock checks that every time the store writes or compares comes
// from its clock: created and updated times, invitation expiry (read and
// swept), claim lifetimes and change events.
func TestStoreClock(t *testing.T) {
	clock := &testClock{t: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
	s := newTestStoreAt(t, clock.Now)
	ctx := asAdmin(t)
	created := clock.Now()
	r, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
		Name: ptr("Clock Ltd"), Address: &Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.CreatedDateTime.Equal(created) || !r.UpdatedDateTime.Equal(created) {
		t.Errorf("created %v, updated %v; want both %v", r.CreatedDateTime, r.UpdatedDateTime, created)
	}

	clock.Advance(time.Minute)
	invited := clock.Now()
	p, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O"})
	if err != nil {
		t.Fatal(err)
	}
	if want := invited.Add(DefaultInvitationLifetime); !p.CreatedDateTime.Equal(invited) || !p.ExpirationDateTime.Equal(want) {
		t.Errorf("invitation created %v, expires %v; want %v and %v", p.CreatedDateTime, p.ExpirationDateTime, invited, want)
	}
	var claim struct {
		At        time.Time `bson:"at"`
		ExpiresAt time.Time `bson:"expiresAt"`
	}
	if err := s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: "referral:" + r.ID + ":v2"}}).Decode(&claim); err != nil {
		t.Fatal(err)
	}
	if !claim.At.Equal(invited) || !claim.ExpiresAt.Equal(invited.Add(versionClaimLifetime)) {
		t.Errorf("version claim at %v expiring %v; want %v and a day later", claim.At, claim.ExpiresAt, invited)
	}
	var change Change
	if err := s.changes.FindOne(ctx, bson.D{{Key: "referralId", Value: r.ID}, {Key: "type", Value: ChangeParticipant}}).Decode(&change); err != nil {
		t.Fatal(err)
	}
	if !change.At.Equal(invited) {
		t.Errorf("change recorded at %v, want %v", change.At, invited)
	}

	clock.Advance(DefaultInvitationLifetime - time.Millisecond)
	if st := p.EffectiveStatus(s.Now()); st != ParticipantInvited {
		t.Errorf("a millisecond before expiry the invitation reads %s", st)
	}
	if n, err := s.ExpireInvitations(ctx); n != 0 || err != nil {
		t.Errorf("a sweep a millisecond before expiry expired %d (%v), want 0", n, err)
	}
	clock.Advance(time.Millisecond)
	if st := p.EffectiveStatus(s.Now()); st != ParticipantExpired {
		t.Errorf("at its expiration the invitation reads %s", st)
	}
	if n, err := s.ExpireInvitations(ctx); n != 1 || err != nil {
		t.Errorf("the sweep at expiry expired %d (%v), want 1", n, err)
	}
	got, err := s.ReferralsByID(ctx, []string{r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if u := got[r.ID].UpdatedDateTime; !u.Equal(clock.Now()) {
		t.Errorf("updated %v by the sweep, want %v", u, clock.Now())
	}
}

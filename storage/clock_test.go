package storage

import (
	"maps"
	"slices"
	"testing"
	"time"

	"referrals/internal/testclock"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestStoreClock checks that every time the store writes or compares comes
// from its clock: created and updated times, invitation expiry (read and
// swept), claim lifetimes and change events.
func TestStoreClock(t *testing.T) {
	clock := testclock.At(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
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
	if want := invited.Add(defaultInvitationLifetime); !p.CreatedDateTime.Equal(invited) || !p.ExpirationDateTime.Equal(want) {
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

	clock.Advance(defaultInvitationLifetime - time.Millisecond)
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

// TestFiltersReadLapsedInvitationsAsExpired: an invitation past its
// expiration reads EXPIRED at once, before the sweep records it, and the
// referral filters agree: it matches status EXPIRED, not INVITED, with or
// without its organization and an expiration range, in pages, counts and
// statistics alike, before the sweep and after. Before, it matched INVITED
// until the sweep.
func TestFiltersReadLapsedInvitationsAsExpired(t *testing.T) {
	clock := testclock.At(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
	s := newTestStoreAt(t, clock.Now)
	ctx := asAdmin(t)
	create := func(name string) *Referral {
		r, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
			Name: ptr(name), Address: &Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	invite := func(r *Referral, org string, expires time.Time) {
		if _, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: org, OrganizationName: org, ExpirationDateTime: &expires}); err != nil {
			t.Fatal(err)
		}
	}
	soon, later := clock.Now().Add(time.Hour), clock.Now().Add(48*time.Hour)
	both, lapsing, open := create("Both"), create("Lapsing"), create("Open")
	invite(both, "o1", soon)
	invite(both, "o2", later)
	invite(lapsing, "o1", soon)
	invite(open, "o2", later)
	clock.Advance(time.Hour) // o1's invitations lapse; no sweep yet

	names := map[string]string{both.ID: "Both", lapsing.ID: "Lapsing", open.ID: "Open"}
	check := func(when string) {
		t.Helper()
		whole := &TimeRange{From: new(clock.Now().Add(-2 * time.Hour)), To: new(clock.Now().Add(72 * time.Hour))}
		for _, c := range []struct {
			org      string
			status   ParticipantStatus
			expiring bool
			want     []string
		}{
			{"", ParticipantInvited, false, []string{"Both", "Open"}},
			{"", ParticipantExpired, false, []string{"Both", "Lapsing"}},
			{"o1", ParticipantInvited, false, nil},
			{"o1", ParticipantExpired, false, []string{"Both", "Lapsing"}},
			{"o2", ParticipantInvited, false, []string{"Both", "Open"}},
			{"o2", ParticipantExpired, false, nil},
			{"", ParticipantInvited, true, []string{"Both", "Open"}},
			{"", ParticipantExpired, true, []string{"Both", "Lapsing"}},
			{"o1", ParticipantInvited, true, nil},
		} {
			m := &ParticipantMatch{Status: []ParticipantStatus{c.status}}
			if c.org != "" {
				m.OrganizationID = &c.org
			}
			if c.expiring {
				m.ExpirationDateTime = whole
			}
			f := &ReferralFilter{Participant: m}
			page, err := s.Referrals(ctx, f, nil, PageArgs{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range page.Edges {
				got = append(got, names[e.Node.ID])
			}
			slices.Sort(got)
			n, err := s.CountReferrals(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			stats, err := s.ReferralStats(ctx, StatsQuery{Filter: f})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) || n != len(c.want) || stats.Total.Count != len(c.want) {
				t.Errorf("%s, organization %q, status %s, expiration range %v: page %v, count %d, statistics %d; want %v",
					when, c.org, c.status, c.expiring, got, n, stats.Total.Count, c.want)
			}
		}
	}
	check("before the sweep")
	// Statistics grouped by participant status count them EXPIRED too:
	// they record them first, as the sweep would.
	stats, err := s.ReferralStats(ctx, StatsQuery{GroupBy: []StatsDimension{DimParticipantOrganization, DimParticipantStatus}})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]int{}
	for _, g := range stats.Groups {
		groups[*g.Key.ParticipantOrganizationID+"/"+string(*g.Key.ParticipantStatus)] = g.Measures.Count
	}
	if want := map[string]int{"o1/Expired": 2, "o2/Invited": 2}; !maps.Equal(groups, want) {
		t.Errorf("statistics by organization and status before the sweep: %v, want %v", groups, want)
	}
	if n, err := s.ExpireInvitations(ctx); n != 0 || err != nil {
		t.Fatalf("the sweep expired %d (%v) after the statistics recorded both, want 0", n, err)
	}
	check("after the sweep")
}

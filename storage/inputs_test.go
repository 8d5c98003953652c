package storage

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func validReferralInput() ReferralInput {
	return ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
		Name: ptr("Input Ltd"), Address: &Address{AddressLine1: "1 Road", City: "Oslo", Country: "NO"}}}
}

// wantBadInput fails unless err is CodeBadUserInput mentioning every one of mentions.
func wantBadInput(t *testing.T, err error, mentions ...string) {
	t.Helper()
	if ErrorCodeOf(err) != CodeBadUserInput {
		t.Fatalf("error %v, want BAD_USER_INPUT", err)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("message %q does not mention %q", err, m)
		}
	}
}

// TestWritesRefuseUnknownEnums passes the store enum values that are not
// one of the enum's names: every write refuses them as BAD_USER_INPUT and
// stores nothing, and encoding refuses them whatever the write.
func TestWritesRefuseUnknownEnums(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	r, err := s.CreateReferral(ctx, validReferralInput())
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "org-a", OrganizationName: "A"})
	if err != nil {
		t.Fatal(err)
	}
	for _, source := range []ReferralSource{"", "p2p", "WEB_DIRECT"} {
		in := validReferralInput()
		in.ReferralSource = source
		_, err := s.CreateReferral(ctx, in)
		wantBadInput(t, err, "referral.referralSource")
	}
	if n, err := s.CountReferrals(ctx, nil); err != nil || n != 1 {
		t.Errorf("%d referrals stored (%v), want the 1 valid one", n, err)
	}
	for _, status := range []ReferralStatus{"", "active", "ACTIVE"} {
		_, err := s.ChangeReferralStatus(ctx, r.ID, 2, status, nil)
		wantBadInput(t, err, "status")
	}
	for _, answer := range []InvitationResponse{"", "reject", "Accept"} {
		_, err := s.RespondToInvitation(ctx, p.ID, answer)
		wantBadInput(t, err, "response")
	}
	got, err := s.ReferralsByID(ctx, []string{r.ID})
	if err != nil || got[r.ID].Version != 2 || got[r.ID].Status != ReferralPending || got[r.ID].Participation[0].Status != ParticipantInvited {
		t.Errorf("after refused writes: %+v, %v; want version 2, PENDING, INVITED", got[r.ID], err)
	}

	t.Run("ErrEncoding", func(t *testing.T) {
		if err := s.InsertReferrals(ctx, []Referral{{ID: "bad", Status: "pending", ReferralSource: SourceP2P}}, nil); err == nil {
			t.Error("a referral with status \"pending\" was stored")
		}
		if _, err := s.participants.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: ParticipantStatus("")}}}}); err == nil {
			t.Error("an empty participant status was stored")
		}
		if _, err := s.referrals.UpdateOne(ctx, bson.D{{Key: "_id", Value: r.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "referralSource", Value: ReferralSource("web")}}}}); err == nil {
			t.Error("referral source \"web\" was stored")
		}
		if n, _ := s.CountReferrals(ctx, nil); n != 1 {
			t.Errorf("%d referrals, want 1", n)
		}
		if _, err := s.ReferralsByID(ctx, []string{r.ID}); err != nil {
			t.Errorf("the referral no longer reads: %v", err)
		}
	})
}

// TestFiltersRefuseUnknownEnums asks for enum values that are not names:
// BAD_USER_INPUT naming the argument, rather than matching nothing or
// sorting the other way.
func TestFiltersRefuseUnknownEnums(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	desc := OrderDirection("desc")
	category := TagCategory("products")
	tests := map[string]struct {
		run      func() error
		mentions []string
	}{
		"ErrStatus": {func() error {
			_, err := s.Referrals(ctx, &ReferralFilter{Status: []ReferralStatus{ReferralPending, "pending"}}, nil, PageArgs{})
			return err
		}, []string{"filter.status.1", "pending"}},
		"ErrStatusCount": {func() error {
			_, err := s.CountReferrals(ctx, &ReferralFilter{Status: []ReferralStatus{""}})
			return err
		}, []string{"filter.status.0"}},
		"ErrSource": {func() error {
			_, err := s.Referrals(ctx, &ReferralFilter{ReferralSource: []ReferralSource{"p2p"}}, nil, PageArgs{})
			return err
		}, []string{"filter.referralSource.0", "p2p"}},
		"ErrParticipantStatus": {func() error {
			_, err := s.Referrals(ctx, &ReferralFilter{Participant: &ParticipantMatch{Status: []ParticipantStatus{"accepted"}}}, nil, PageArgs{})
			return err
		}, []string{"filter.participant.status.0", "accepted"}},
		"ErrDirection": {func() error {
			_, err := s.Referrals(ctx, nil, &ReferralOrder{Field: OrderByDealValue, Direction: &desc}, PageArgs{})
			return err
		}, []string{"order.direction", "desc"}},
		"ErrOwnParticipantStatus": {func() error {
			_, err := s.Participants(ctx, &ParticipantFilter{Status: []ParticipantStatus{"invited"}}, PageArgs{})
			return err
		}, []string{"filter.status.0", "invited"}},
		"ErrOwnParticipantStatusCount": {func() error {
			_, err := s.CountParticipants(ctx, &ParticipantFilter{Status: []ParticipantStatus{""}})
			return err
		}, []string{"filter.status.0"}},
		"ErrCategory": {func() error {
			_, err := s.Tags(ctx, &category)
			return err
		}, []string{"category", "products"}},
		"ErrSubscriptionFilter": {func() error {
			return (&ReferralFilter{Status: []ReferralStatus{"won"}}).Validate()
		}, []string{"filter.status.0", "won"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) { wantBadInput(t, tt.run(), tt.mentions...) })
	}
}

// TestCountriesAndDates refuses country codes that ISO 3166-1 does not
// assign and dates the store cannot keep, and keeps the dates it accepts
// as it answered them.
func TestCountriesAndDates(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	r, err := s.CreateReferral(ctx, validReferralInput())
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	for _, c := range []string{"UK", "EU", "XK", "AN", "YU", "ZZ"} {
		in := validReferralInput()
		in.CustomerProfile.Address.Country = c
		_, err := s.CreateReferral(ctx, in)
		wantBadInput(t, err, "referral.customerProfile.address.country", c)
		_, err = s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{CustomerProfile: &CustomerProfileInput{Address: &Address{AddressLine1: "a", City: "b", Country: c}}})
		wantBadInput(t, err, "patch.customerProfile.address.country", c)
		_, err = s.Referrals(ctx, &ReferralFilter{CustomerCountry: []string{"GB", c}}, nil, PageArgs{})
		wantBadInput(t, err, "filter.customerCountry", c)
	}
	for _, c := range []string{"GB", "gb", "SS", "AX", "BQ", "CW", "SX", "TL", "ME", "RS"} {
		in := validReferralInput()
		in.CustomerProfile.Address.Country = c
		if _, err := s.CreateReferral(ctx, in); err != nil {
			t.Errorf("country %s: %v", c, err)
		}
	}
	for _, d := range []string{"0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "1899-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999-00:01", "9999-12-31T23:00:00-02:00"} {
		in := validReferralInput()
		in.Details = &DetailsInput{ClosingDate: at(d)}
		_, err := s.CreateReferral(ctx, in)
		wantBadInput(t, err, "referral.details.closingDate", "1900-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z")
		_, err = s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{Details: &DetailsInput{ClosingDate: at(d)}})
		wantBadInput(t, err, "patch.details.closingDate")
		_, err = s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O", ExpirationDateTime: at(d)})
		wantBadInput(t, err, "invitation.expirationDateTime")
	}
	if got, err := s.ReferralsByID(ctx, []string{r.ID}); err != nil || got[r.ID].Version != 1 || got[r.ID].Details.ClosingDate != nil {
		t.Errorf("after refused writes: %+v, %v", got[r.ID], err)
	}
	if n, _ := s.CountParticipants(ctx, nil); n != 0 {
		t.Errorf("%d participants stored by refused invitations", n)
	}

	for _, d := range []string{"1900-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2027-03-31T00:00:00.123456789+02:00"} {
		in := validReferralInput()
		in.Details = &DetailsInput{ClosingDate: at(d)}
		created, err := s.CreateReferral(ctx, in)
		if err != nil {
			t.Fatalf("closing date %s: %v", d, err)
		}
		read, err := s.ReferralsByID(ctx, []string{created.ID})
		if err != nil {
			t.Fatal(err)
		}
		want := at(d).UTC().Truncate(time.Millisecond)
		if got := read[created.ID].Details.ClosingDate; got == nil || !got.Equal(want) || !created.Details.ClosingDate.Equal(want) {
			t.Errorf("closing date %s: answered %v, read back %v, want %v", d, created.Details.ClosingDate, got, want)
		}
	}
}

// TestListsAreBounded: a referral carries at most 50 tags of each
// category (which bounds how many groups one referral makes in the
// statistics), 50 contacts, and an invitation at most 50 users; one more
// is refused naming the field, and nothing is stored.
func TestListsAreBounded(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	r, err := s.CreateReferral(ctx, validReferralInput())
	if err != nil {
		t.Fatal(err)
	}
	tags := make([]string, 51)
	for i := range tags {
		tags[i] = "Healthcare"
	}
	for _, c := range []struct {
		field string
		set   func(*Requirements)
	}{
		{"industryFocus", func(q *Requirements) { q.IndustryFocus = tags }},
		{"products", func(q *Requirements) { q.Products = tags }},
		{"serviceTypes", func(q *Requirements) { q.ServiceTypes = tags }},
		{"solutions", func(q *Requirements) { q.Solutions = tags }},
	} {
		in := validReferralInput()
		in.Details = &DetailsInput{Requirements: &Requirements{}}
		c.set(in.Details.Requirements)
		_, err := s.CreateReferral(ctx, in)
		wantBadInput(t, err, "referral.details.requirements."+c.field, "at most 50")
		_, err = s.UpdateReferral(ctx, r.ID, r.Version, ReferralPatch{Details: in.Details})
		wantBadInput(t, err, "patch.details.requirements."+c.field, "at most 50")
	}
	in := validReferralInput()
	in.CustomerProfile.Contacts = make([]Contact, 51)
	_, err = s.CreateReferral(ctx, in)
	wantBadInput(t, err, "contacts", "at most 50")
	_, err = s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "org-a", OrganizationName: "A", Users: make([]ParticipantUser, 51)})
	wantBadInput(t, err, "invitation.users", "at most 50")
	if n, err := s.CountReferrals(ctx, nil); err != nil || n != 1 {
		t.Errorf("%d referrals stored (%v), want the 1 valid one", n, err)
	}
	if got, err := s.ReferralsByID(ctx, []string{r.ID}); err != nil || got[r.ID].Version != r.Version || len(got[r.ID].Participation) != 0 {
		t.Errorf("the referral changed: %+v, %v", got, err)
	}
}

// TestAnAnswerRacingAnArchivingIsRefused: an answer checks the referral it
// is written over, not only the one it read first, so an archiving that
// lands between the two refuses it and it is taken back whole (an outside
// test archived and accepted concurrently: 18 of 20 accepts landed on
// archived referrals, showing the partner the customer's address).
func TestAnAnswerRacingAnArchivingIsRefused(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	r, err := s.CreateReferral(ctx, validReferralInput())
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "org-a", OrganizationName: "A"})
	if err != nil {
		t.Fatal(err)
	}
	// The answer read its referral open; the archiving lands now.
	archived, err := s.ChangeReferralStatus(ctx, r.ID, 2, ReferralArchived, nil)
	if err != nil {
		t.Fatal(err)
	}
	settled, err := s.settleInvitation(ctx, p, ParticipantAccepted)
	wantBadInput(t, err, "participantId", "ARCHIVED")
	if settled {
		t.Error("the answer was settled")
	}
	parts, err := s.ParticipantsByID(ctx, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := s.ReferralsByID(ctx, []string{r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := parts[p.ID].Status; got != ParticipantInvited {
		t.Errorf("the participant is %s after the refused answer, want Invited", got)
	}
	if got := refs[r.ID]; got.Version != archived.Version || got.Participation[0].Status != ParticipantInvited {
		t.Errorf("the referral is at version %d with %+v, want version %d unchanged", got.Version, got.Participation, archived.Version)
	}
}

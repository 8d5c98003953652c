package storage

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestValidationFieldPaths checks that validation errors locate the bad
// value with a path in the domain's terms, and that the message does not
// repeat it: the API edge names the argument, so no GraphQL argument name
// ("input", "orderBy") or path prefix appears here.
func TestValidationFieldPaths(t *testing.T) {
	s := newTestStore(t)
	ctx := asAdmin(t)
	address := func(country string) *Address {
		return &Address{AddressLine1: "1 Road", City: "Oslo", Country: country}
	}
	r, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
		Name: ptr("Paths Ltd"), Address: address("NO")}})
	if err != nil {
		t.Fatal(err)
	}
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	huge, negative := 1000, -1
	tests := []struct {
		name string
		run  func() error
		want []string
	}{
		{"CreateCountry", func() error {
			_, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
				Name: ptr("X"), Address: address("XX")}})
			return err
		}, []string{"referral", "customerProfile", "address", "country"}},
		{"CreateContactEmail", func() error {
			_, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
				Name: ptr("X"), Address: address("NO"), Contacts: []Contact{{FirstName: "A", LastName: "B"}, {FirstName: "C", LastName: "D", Email: "nope"}}}})
			return err
		}, []string{"referral", "customerProfile", "contacts", "1", "email"}},
		{"CreateUnknownTag", func() error {
			_, err := s.CreateReferral(ctx, ReferralInput{ReferralSource: SourceP2P, CustomerProfile: &CustomerProfileInput{
				Name: ptr("X"), Address: address("NO")}, Details: &DetailsInput{Requirements: &Requirements{Products: []string{"Notepad"}}}})
			return err
		}, []string{"referral", "details", "requirements", "products"}},
		{"PatchName", func() error {
			_, err := s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{CustomerProfile: &CustomerProfileInput{Name: ptr(" ")}})
			return err
		}, []string{"patch", "customerProfile", "name"}},
		{"EmptyPatch", func() error {
			_, err := s.UpdateReferral(ctx, r.ID, 1, ReferralPatch{})
			return err
		}, []string{"patch"}},
		{"StatusMove", func() error {
			_, err := s.ChangeReferralStatus(ctx, r.ID, 1, ReferralWon, nil)
			return err
		}, []string{"status"}},
		{"InvitationUserEmail", func() error {
			_, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O",
				Users: []ParticipantUser{{FirstName: "A", LastName: "B", Email: "nope"}}})
			return err
		}, []string{"invitation", "users", "0", "email"}},
		{"InvitationExpiry", func() error {
			_, err := s.InviteParticipant(ctx, r.ID, InviteInput{OrganizationID: "o", OrganizationName: "O", ExpirationDateTime: &past})
			return err
		}, []string{"invitation", "expirationDateTime"}},
		{"FilterDealValue", func() error {
			_, err := s.Referrals(ctx, &ReferralFilter{DealValue: &MoneyRange{}}, nil, PageArgs{})
			return err
		}, []string{"filter", "dealValue"}},
		{"FilterTagMatch", func() error {
			_, err := s.CountReferrals(ctx, &ReferralFilter{Requirements: &RequirementsFilter{Solutions: &TagMatch{}}})
			return err
		}, []string{"filter", "requirements", "solutions"}},
		{"OrderField", func() error {
			_, err := s.Referrals(ctx, nil, &ReferralOrder{Field: "nope"}, PageArgs{})
			return err
		}, []string{"order", "field"}},
		{"PageSize", func() error {
			_, err := s.Referrals(ctx, nil, nil, PageArgs{Last: &huge})
			return err
		}, []string{"last"}},
		{"ParticipantPageSize", func() error {
			_, err := s.Participants(ctx, nil, PageArgs{First: &negative})
			return err
		}, []string{"first"}},
		{"Cursor", func() error {
			_, err := s.Referrals(ctx, nil, nil, PageArgs{After: ptr("nope")})
			return err
		}, []string{"after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			e, ok := err.(*Error)
			if !ok || e.Code != CodeBadUserInput {
				t.Fatalf("got %v, want a BAD_USER_INPUT *Error", err)
			}
			if !slices.Equal(e.Field, tt.want) {
				t.Fatalf("field = %q, want %q (message %q)", e.Field, tt.want, e.Message)
			}
			for _, name := range []string{"input", "orderBy", "participantId"} {
				if slices.Contains(e.Field, name) {
					t.Errorf("field %q holds the GraphQL argument name %q", e.Field, name)
				}
			}
			if strings.HasPrefix(e.Message, e.Field[0]) {
				t.Errorf("message %q repeats the path", e.Message)
			}
		})
	}
}

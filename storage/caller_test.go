package storage

import (
	"slices"
	"testing"
)

// TestPartnerVisibility checks each rule of who sees what for a partner
// organization against the seeded data.
func TestPartnerVisibility(t *testing.T) {
	s := newTestStore(t)
	refs, parts := demoGenerate(11, 120, testAnchor)
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	org := refs[0].Participation[0].OrganizationID
	partner := WithCaller(t.Context(), Caller{Subject: "p", OrganizationID: org, Role: RolePartner})
	status := map[string]ParticipantStatus{} // referral id → the org's status on it
	var mine, others []string
	for _, r := range refs {
		if i := slices.IndexFunc(r.Participation, func(p Participation) bool { return p.OrganizationID == org }); i >= 0 {
			mine = append(mine, r.ID)
			status[r.ID] = r.Participation[i].Status
		} else {
			others = append(others, r.ID)
		}
	}
	if len(mine) == 0 || len(others) == 0 {
		t.Fatal("the seed gives the organization no or all referrals")
	}

	t.Run("ListsAndCountsOnlyItsReferrals", func(t *testing.T) {
		n, err := s.CountReferrals(partner, nil)
		if err != nil || n != len(mine) {
			t.Errorf("count = %d, %v; want %d", n, err, len(mine))
		}
		var got []string
		size := 7
		args := PageArgs{First: &size}
		for {
			p, err := s.Referrals(partner, nil, nil, args)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Nodes() {
				got = append(got, r.ID)
				hidden := r.CustomerProfile.Address == nil && r.CustomerProfile.Contacts == nil
				if accepted := status[r.ID] == ParticipantAccepted; hidden == accepted {
					t.Errorf("referral %s: the org is %s, address and contacts hidden = %v", r.ID, status[r.ID], hidden)
				}
			}
			if !p.PageInfo.HasNextPage {
				break
			}
			args.After = p.PageInfo.EndCursor
		}
		slices.Sort(got)
		want := slices.Clone(mine)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("paged %d referrals, want %d", len(got), len(want))
		}
	})
	t.Run("FiltersOnHiddenFieldsMatchOnlyWhereVisible", func(t *testing.T) {
		// The query agrees with matching the partner's view of each
		// referral, where the address is null until it accepts.
		countries := map[string]bool{}
		for _, r := range refs {
			countries[r.CustomerProfile.Address.Country] = true
		}
		for country := range countries {
			f := &ReferralFilter{CustomerCountry: []string{country}}
			var want []string
			for i := range refs {
				if view, ok := ViewFor(CallerFrom(partner), &refs[i]); ok && f.Matches(view) {
					want = append(want, refs[i].ID)
				}
			}
			var got []string
			p, err := s.Referrals(partner, f, nil, PageArgs{First: ptr(MaxPageSize)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Nodes() {
				got = append(got, r.ID)
				if status[r.ID] != ParticipantAccepted {
					t.Errorf("%s matched referral %s, whose address the partner cannot see", country, r.ID)
				}
			}
			n, err := s.CountReferrals(partner, f)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) || err != nil || n != len(want) {
				t.Errorf("%s: query selects %v (count %d, %v), the partner's view matches %v", country, got, n, err, want)
			}
		}
	})
	t.Run("OtherReferralsAreAbsent", func(t *testing.T) {
		found, err := s.ReferralsByID(partner, []string{others[0], mine[0]})
		if err != nil || found[others[0]] != nil || found[mine[0]] == nil {
			t.Errorf("got %v, %v; want only %s", found, err, mine[0])
		}
	})
	t.Run("OtherOrganizationsUsersAreHidden", func(t *testing.T) {
		byRef, err := s.ParticipantsByReferral(partner, []string{mine[0], others[0]})
		if err != nil {
			t.Fatal(err)
		}
		if len(byRef[others[0]]) != 0 {
			t.Errorf("participants of an invisible referral: %d", len(byRef[others[0]]))
		}
		for _, p := range byRef[mine[0]] {
			if own := p.OrganizationID == org; own != (len(p.Users) > 0) {
				t.Errorf("participant of %s: %d users shown", p.OrganizationID, len(p.Users))
			}
		}
	})
	t.Run("ParticipantsOfOtherReferralsAreAbsent", func(t *testing.T) {
		var theirs string
		for _, p := range parts {
			if p.ReferralID == others[0] {
				theirs = p.ID
			}
		}
		found, err := s.ParticipantsByID(partner, []string{theirs})
		if err != nil || len(found) != 0 {
			t.Errorf("got %v, %v; want nothing", found, err)
		}
	})
	t.Run("ParticipantListIsItsOwn", func(t *testing.T) {
		p, err := s.Participants(partner, nil, PageArgs{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range p.Nodes() {
			if n.OrganizationID != org {
				t.Errorf("listed a participant of %s", n.OrganizationID)
			}
		}
		if n, _ := s.CountParticipants(partner, nil); n != len(mine) {
			t.Errorf("count = %d, want %d", n, len(mine))
		}
	})
	t.Run("ErrWritesAreForAdmins", func(t *testing.T) {
		if _, err := s.CreateReferral(partner, ReferralInput{}); ErrorCodeOf(err) != CodeForbidden {
			t.Errorf("create: %v, want FORBIDDEN", err)
		}
		if _, err := s.ChangeReferralStatus(partner, mine[0], 1, ReferralWon, nil); ErrorCodeOf(err) != CodeForbidden {
			t.Errorf("status: %v, want FORBIDDEN", err)
		}
	})
	t.Run("ErrAnswersAreForTheInvited", func(t *testing.T) {
		var onMine, onOthers string
		for _, p := range parts {
			switch {
			case p.ReferralID == mine[0] && p.OrganizationID != org:
				onMine = p.ID
			case p.ReferralID == others[0]:
				onOthers = p.ID
			}
		}
		if onMine != "" {
			if _, err := s.RespondToInvitation(partner, onMine, Accept); ErrorCodeOf(err) != CodeForbidden {
				t.Errorf("another org's invitation on a visible referral: %v, want FORBIDDEN", err)
			}
		}
		if _, err := s.RespondToInvitation(partner, onOthers, Accept); ErrorCodeOf(err) != CodeNotFound {
			t.Errorf("an invitation on an invisible referral: %v, want NOT_FOUND", err)
		}
	})
	t.Run("NoCallerSeesNothing", func(t *testing.T) {
		if n, err := s.CountReferrals(t.Context(), nil); err != nil || n != 0 {
			t.Errorf("count without a caller = %d, %v; want 0", n, err)
		}
	})
}

// TestChangedFieldsFor: a partner is not told that the customer's address
// or contacts changed while it may not see them.
func TestChangedFieldsFor(t *testing.T) {
	r := &Referral{Participation: []Participation{{OrganizationID: "invited", Status: ParticipantInvited}, {OrganizationID: "accepted", Status: ParticipantAccepted}}}
	fields := []string{"customerProfile.name", "customerProfile.address", "customerProfile.contacts", "details.notes"}
	for name, tt := range map[string]struct {
		caller Caller
		want   []string
	}{
		"Admin":    {Caller{Role: RoleAdmin}, fields},
		"Accepted": {Caller{Role: RolePartner, OrganizationID: "accepted"}, fields},
		"Invited":  {Caller{Role: RolePartner, OrganizationID: "invited"}, []string{"customerProfile.name", "details.notes"}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := ChangedFieldsFor(tt.caller, r, fields); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if len(fields) != 4 {
		t.Errorf("the change's own fields were changed: %v", fields)
	}
}

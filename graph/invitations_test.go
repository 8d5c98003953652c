package graph

import (
	"strings"
	"sync"
	"testing"
	"time"

	"referrals/internal/testclock"
)

const inviteMutation = `mutation Invite($ref: ID!, $input: InviteParticipantInput!) {
  inviteParticipant(referralId: $ref, input: $input) {
    id status organizationId createdDateTime expirationDateTime users { id firstName } invitedBy { id } referral { id version }
  }
}`

const respondMutation = `mutation Respond($id: ID!, $r: InvitationResponse!) {
  respondToInvitation(participantId: $id, response: $r) { id status referral { version participants { id status } } }
}`

type invited struct {
	InviteParticipant struct {
		ID, Status, OrganizationID          string
		CreatedDateTime, ExpirationDateTime time.Time
		Users                               []struct{ ID, FirstName string }
		InvitedBy                           *struct{ ID string }
		Referral                            struct {
			ID      string
			Version int
		}
	}
}

func TestInvitations(t *testing.T) {
	clock := testclock.At(testAnchor)
	e := newEnvAt(t, 0, clock.Now)
	r := e.create(t)
	var first invited
	e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": map[string]any{
		"organizationId": "org-a", "organizationName": "Contoso",
		"users": []any{map[string]any{"firstName": "Ben", "lastName": "Hansen", "email": "ben@contoso.example"}},
	}}).mustData(t, &first)
	p := first.InviteParticipant
	lifetime := p.ExpirationDateTime.Sub(p.CreatedDateTime)
	if p.Status != "INVITED" || lifetime != 14*24*time.Hour || len(p.Users) != 1 || p.Users[0].ID == "" || p.Referral.Version != 2 {
		t.Errorf("invited %+v (lifetime %v)", p, lifetime)
	}

	t.Run("InvitedByAnotherParticipant", func(t *testing.T) {
		var d invited
		e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": map[string]any{
			"organizationId": "org-b", "organizationName": "Fabrikam", "invitedByParticipantId": p.ID,
			"expirationDateTime": clock.Now().Add(48 * time.Hour).Format(time.RFC3339),
		}}).mustData(t, &d)
		if d.InviteParticipant.InvitedBy == nil || d.InviteParticipant.InvitedBy.ID != p.ID || d.InviteParticipant.Referral.Version != 3 {
			t.Errorf("got %+v", d.InviteParticipant)
		}
	})

	bad := []struct {
		name, code, ref string
		input           map[string]any
		mention         string
	}{
		{"ErrSameOrganizationTwice", "CONFLICT", r.ID, map[string]any{"organizationId": "org-a", "organizationName": "Contoso"}, "org-a"},
		{"ErrUnknownReferral", "NOT_FOUND", "nope", map[string]any{"organizationId": "org-c", "organizationName": "C"}, "nope"},
		{"ErrInviterElsewhere", "BAD_USER_INPUT", r.ID, map[string]any{"organizationId": "org-c", "organizationName": "C", "invitedByParticipantId": "ghost"}, "input.invitedByParticipantId"},
		{"ErrExpiryInPast", "BAD_USER_INPUT", r.ID, map[string]any{"organizationId": "org-c", "organizationName": "C", "expirationDateTime": "2020-01-01T00:00:00Z"}, "input.expirationDateTime"},
		{"ErrBlankOrganization", "BAD_USER_INPUT", r.ID, map[string]any{"organizationId": " ", "organizationName": "C"}, "input.organizationId"},
		{"ErrUserEmail", "BAD_USER_INPUT", r.ID, map[string]any{"organizationId": "org-c", "organizationName": "C", "users": []any{map[string]any{"firstName": "A", "lastName": "B", "email": "nope"}}}, "input.users[0].email"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			wantUnchanged(t, e, func() {
				code, msg := e.post(t, inviteMutation, map[string]any{"ref": tt.ref, "input": tt.input}).code(t)
				if code != tt.code || !strings.Contains(msg, tt.mention) {
					t.Errorf("got %s %q, want %s mentioning %q", code, msg, tt.code, tt.mention)
				}
			})
		})
	}

	t.Run("ConcurrentInvitesOfOneOrganization", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := e.tryPost(inviteMutation, map[string]any{"ref": r.ID, "input": map[string]any{"organizationId": "org-race", "organizationName": "Race"}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case len(resp.Errors) == 0:
					ok++
				case resp.Errors[0].Extensions["code"] != "CONFLICT":
					t.Errorf("unexpected response: %s", resp.raw)
				}
			}()
		}
		wg.Wait()
		var d struct{ Participants struct{ TotalCount int } }
		e.post(t, `{ participants(filter: {organizationId: "org-race"}) { totalCount } }`, nil).mustData(t, &d)
		if ok != 1 || d.Participants.TotalCount != 1 {
			t.Errorf("%d invitations succeeded and %d stored, want 1 and 1", ok, d.Participants.TotalCount)
		}
	})

	t.Run("Accept", func(t *testing.T) {
		var d struct {
			RespondToInvitation struct {
				Status   string
				Referral struct {
					Participants []struct{ ID, Status string }
				}
			}
		}
		e.post(t, respondMutation, map[string]any{"id": p.ID, "r": "ACCEPT"}).mustData(t, &d)
		if d.RespondToInvitation.Status != "ACCEPTED" {
			t.Errorf("status %s, want ACCEPTED", d.RespondToInvitation.Status)
		}
		// The referral's participation follows, so filters see it.
		var f struct{ Referrals struct{ TotalCount int } }
		e.post(t, `{ referrals(filter: {participant: {organizationId: "org-a", status: [ACCEPTED]}}) { totalCount } }`, nil).mustData(t, &f)
		if f.Referrals.TotalCount != 1 {
			t.Errorf("filter by accepted participant finds %d referrals, want 1", f.Referrals.TotalCount)
		}
		wantUnchanged(t, e, func() {
			e.post(t, respondMutation, map[string]any{"id": p.ID, "r": "REJECT"}).wantBadInput(t, "only an INVITED participant", "ACCEPTED")
		})
	})

	t.Run("ErrExpired", func(t *testing.T) {
		var d invited
		expires := clock.Now().Add(time.Hour)
		e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": map[string]any{
			"organizationId": "org-late", "organizationName": "Late",
			"expirationDateTime": expires.UTC().Format(time.RFC3339Nano),
		}}).mustData(t, &d)
		var read struct{ Participant struct{ Status string } }
		e.post(t, `query($id: ID!) { participant(id: $id) { status } }`, map[string]any{"id": d.InviteParticipant.ID}).mustData(t, &read)
		if read.Participant.Status != "INVITED" {
			t.Errorf("before its expiration the invitation reads %s, want INVITED", read.Participant.Status)
		}
		clock.Advance(time.Hour) // the store's clock, not the wall's
		e.post(t, `query($id: ID!) { participant(id: $id) { status } }`, map[string]any{"id": d.InviteParticipant.ID}).mustData(t, &read)
		if read.Participant.Status != "EXPIRED" {
			t.Errorf("past its expiration the invitation reads %s, want EXPIRED", read.Participant.Status)
		}
		// Filters agree with what is read, before the sweep records it.
		for status, want := range map[string]bool{"EXPIRED": true, "INVITED": false} {
			var list struct {
				Participants struct {
					TotalCount int
					Nodes      []struct{ ID, Status string }
				}
			}
			e.post(t, `query($s: [ParticipantStatus!]) { participants(filter: {organizationId: "org-late", status: $s}) { totalCount nodes { id status } } }`,
				map[string]any{"s": []string{status}}).mustData(t, &list)
			if got := list.Participants.TotalCount == 1 && len(list.Participants.Nodes) == 1 && list.Participants.Nodes[0].ID == d.InviteParticipant.ID; got != want {
				t.Errorf("participants with status %s: %+v; want the expired invitation listed: %v", status, list.Participants, want)
			}
		}
		wantUnchanged(t, e, func() {
			e.post(t, respondMutation, map[string]any{"id": d.InviteParticipant.ID, "r": "ACCEPT"}).wantBadInput(t, "expired")
		})
	})

	t.Run("ErrUnknownParticipant", func(t *testing.T) {
		if code, _ := e.post(t, respondMutation, map[string]any{"id": "ghost", "r": "ACCEPT"}).code(t); code != "NOT_FOUND" {
			t.Errorf("code %s, want NOT_FOUND", code)
		}
	})
}

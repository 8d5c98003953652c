package graph

import (
	"slices"
	"testing"
	"time"

	"referrals/storage"
)

const participantsQuery = `query Parts($filter: ParticipantFilter, $first: Int, $after: String) {
  participants(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id organizationId status createdDateTime referral { id } }
  }
}`

func TestParticipantsQuery(t *testing.T) {
	e := newEnv(t, 80)
	org := e.parts[0].OrganizationID
	tests := []struct {
		name   string
		filter map[string]any
		keep   func(storage.Participant) bool
	}{
		{"All", nil, func(storage.Participant) bool { return true }},
		{"Organization", map[string]any{"organizationId": org}, func(p storage.Participant) bool { return p.OrganizationID == org }},
		{"OrganizationAndStatus", map[string]any{"organizationId": org, "status": []string{"ACCEPTED"}},
			func(p storage.Participant) bool {
				return p.OrganizationID == org && p.Status == storage.ParticipantAccepted
			}},
		{"Status", map[string]any{"status": []string{"INVITED", "EXPIRED"}},
			func(p storage.Participant) bool {
				return p.Status == storage.ParticipantInvited || p.Status == storage.ParticipantExpired
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Newest first, ties by id descending.
			var want []storage.Participant
			for _, p := range e.parts {
				if tt.keep(p) {
					want = append(want, p)
				}
			}
			slices.SortFunc(want, func(a, b storage.Participant) int {
				if c := b.CreatedDateTime.Compare(a.CreatedDateTime); c != 0 {
					return c
				}
				return -cmpString(a.ID, b.ID)
			})
			var got []string
			vars := map[string]any{"filter": tt.filter, "first": 25}
			for {
				var d struct {
					Participants struct {
						TotalCount int
						PageInfo   struct {
							HasNextPage bool
							EndCursor   string
						}
						Nodes []struct {
							ID, OrganizationID, Status string
							CreatedDateTime            time.Time
							Referral                   struct{ ID string }
						}
					}
				}
				e.post(t, participantsQuery, vars).mustData(t, &d)
				if d.Participants.TotalCount != len(want) {
					t.Fatalf("totalCount = %d, want %d", d.Participants.TotalCount, len(want))
				}
				for _, n := range d.Participants.Nodes {
					got = append(got, n.ID)
					i := slices.IndexFunc(e.parts, func(p storage.Participant) bool { return p.ID == n.ID })
					if i < 0 || e.parts[i].ReferralID != n.Referral.ID {
						t.Fatalf("participant %s: referral %q is not its own", n.ID, n.Referral.ID)
					}
				}
				if !d.Participants.PageInfo.HasNextPage {
					break
				}
				vars["after"] = d.Participants.PageInfo.EndCursor
			}
			wantIDs := make([]string, len(want))
			for i, p := range want {
				wantIDs[i] = p.ID
			}
			if len(want) == 0 {
				t.Fatal("the case selects no participant")
			}
			if !slices.Equal(got, wantIDs) {
				t.Errorf("got %v\nwant %v", got, wantIDs)
			}
		})
	}
	t.Run("ErrFirstTooLarge", func(t *testing.T) {
		e.post(t, participantsQuery, map[string]any{"first": 1000}).wantBadInput(t, "first")
	})
	t.Run("ErrCursorOfReferrals", func(t *testing.T) {
		var p pageData
		e.post(t, pageQuery, map[string]any{"first": 1}).mustData(t, &p)
		e.post(t, participantsQuery, map[string]any{"after": p.Referrals.Edges[0].Cursor}).wantBadInput(t, "after", "order")
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

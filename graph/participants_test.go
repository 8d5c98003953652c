package graph

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
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

// TestPartnerParticipantReadCommands counts the MongoDB commands of a
// partner's participant reads. A page of referrals with their participants
// costs what an admin's does, whatever its size: the page query carries the
// partner's scope and the participants read relies on it. A participant by
// id costs one scoped referral query and one participant query, and none of
// the second when the partner may not see it.
func TestPartnerParticipantReadCommands(t *testing.T) {
	e := newEnv(t, demoSize)
	h := securedHandler(t, e, transport.AuthOptions{}, transport.Options{})
	org := e.referrals[0].Participation[0].OrganizationID
	bearer := transporttest.HS(t, jwt.MapClaims{"sub": "p", "role": "partner", "org": org, "exp": transporttest.InAnHour()})
	seen := map[string]bool{} // referral ids the partner sees
	for _, r := range e.referrals {
		if slices.ContainsFunc(r.Participation, func(p storage.Participation) bool { return p.OrganizationID == org }) {
			seen[r.ID] = true
		}
	}
	var mine, hidden string // a participant the partner sees (of another organization), and one it does not
	for _, p := range e.parts {
		switch {
		case seen[p.ReferralID] && p.OrganizationID != org:
			mine = p.ID
		case !seen[p.ReferralID]:
			hidden = p.ID
		}
	}
	if mine == "" || hidden == "" || len(seen) < 10 {
		t.Fatalf("the seed lacks a case: %d referrals seen, participants %q and %q", len(seen), mine, hidden)
	}
	read := func(t *testing.T, query string, v any) []string {
		t.Helper()
		e.reads()
		postAs(t, h, bearer, query).mustData(t, v)
		return e.reads()
	}

	for _, n := range []int{1, 10, 100} {
		t.Run(fmt.Sprint("PageN", n), func(t *testing.T) {
			var d struct {
				Referrals struct {
					TotalCount int
					Nodes      []struct {
						ID           string
						Participants []struct {
							ID, OrganizationID string
							Users              []struct{ ID string }
						}
						Details struct {
							Requirements struct{ Products []struct{ Name string } }
						}
					}
				}
			}
			got := read(t, fmt.Sprintf(`{ referrals(first: %d) { totalCount nodes { id participants { id organizationId users { id } } details { requirements { products { name } } } } } }`, n), &d)
			if want := []string{"planned", "planned", "planned", "planned"}; !slices.Equal(got, want) {
				t.Errorf("commands = %v, want %v", got, want)
			}
			if d.Referrals.TotalCount != len(seen) || len(d.Referrals.Nodes) != min(n, len(seen)) {
				t.Fatalf("got %d referrals of %d, want %d of %d", len(d.Referrals.Nodes), d.Referrals.TotalCount, min(n, len(seen)), len(seen))
			}
			for _, node := range d.Referrals.Nodes {
				var want, got []string
				for _, p := range e.parts {
					if p.ReferralID == node.ID {
						want = append(want, p.ID)
					}
				}
				for _, p := range node.Participants {
					got = append(got, p.ID)
					if own := p.OrganizationID == org; own != (p.Users != nil) {
						t.Errorf("participant of %s: users shown = %v", p.OrganizationID, p.Users != nil)
					}
				}
				slices.Sort(want)
				slices.Sort(got)
				if !seen[node.ID] || !slices.Equal(got, want) {
					t.Errorf("referral %s (seen %v): participants %v, want %v", node.ID, seen[node.ID], got, want)
				}
			}
		})
	}
	t.Run("ParticipantByID", func(t *testing.T) {
		var d struct{ Participant *struct{ ID string } }
		got := read(t, `{ participant(id: "`+mine+`") { id } }`, &d)
		if want := []string{"planned", "planned"}; !slices.Equal(got, want) || d.Participant == nil {
			t.Errorf("commands = %v, participant %v; want %v and %s", got, d.Participant, want, mine)
		}
	})
	t.Run("InvisibleParticipantByID", func(t *testing.T) {
		var d struct{ Participant *struct{ ID string } }
		got := read(t, `{ participant(id: "`+hidden+`") { id } }`, &d)
		// Where the store indexes more than _id, the referrals the partner
		// sees answer in one query; where it indexes only _id, the read
		// planner selects the participant and then its referral by _id.
		want := []string{"find referrals"}
		if e.store.Pushdown() == storage.PushdownIDOnly {
			want = []string{"planned", "planned"}
		}
		if !slices.Equal(got, want) || d.Participant != nil {
			t.Errorf("commands = %v, participant %v; want %v and null", got, d.Participant, want)
		}
	})
}

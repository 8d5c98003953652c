package graph

import (
	"fmt"
	"testing"
)

// TestListingsSeeAcknowledgedWrites: on the embedded store, listings and
// counts are answered by the read planner's SQL beside FerretDB's own
// connections; each mutation answered is seen by the next listing, count
// and statistics, over the HTTP API.
func TestListingsSeeAcknowledgedWrites(t *testing.T) {
	e := newEnv(t, 40)
	for i := range 15 {
		name := fmt.Sprintf("Acknowledged %d GmbH", i)
		var created struct{ CreateReferral struct{ ID string } }
		e.post(t, `mutation C($name: String!) { createReferral(input: { referralSource: P2P,
			customerProfile: { name: $name, address: { addressLine1: "1 Road", city: "Berlin", postalCode: "10115", country: "DE" } } }) { id } }`,
			map[string]any{"name": name}).mustData(t, &created)
		id := created.CreateReferral.ID

		type page struct {
			Referrals struct {
				TotalCount int
				Nodes      []struct {
					ID           string
					Status       string
					Participants []struct{ OrganizationID string }
				}
			}
		}
		list := func() page {
			var p page
			e.post(t, `query L($name: String!) { referrals(filter: { customerName: $name, status: [ACTIVE] }) {
				totalCount nodes { id status participants { organizationId } } } }`, map[string]any{"name": name}).mustData(t, &p)
			return p
		}
		if p := list(); p.Referrals.TotalCount != 0 {
			t.Fatalf("a new referral is listed as ACTIVE: %+v", p)
		}
		var changed struct{ ChangeReferralStatus struct{ Version int } }
		e.post(t, `mutation S($id: ID!) { changeReferralStatus(id: $id, expectedVersion: 1, status: ACTIVE) { version } }`,
			map[string]any{"id": id}).mustData(t, &changed)
		var invited struct{ InviteParticipant struct{ ID string } }
		e.post(t, `mutation I($id: ID!, $org: ID!) { inviteParticipant(referralId: $id, input: { organizationId: $org, organizationName: "Seen" }) { id } }`,
			map[string]any{"id": id, "org": fmt.Sprint("seen-", i)}).mustData(t, &invited)
		p := list()
		if p.Referrals.TotalCount != 1 || len(p.Referrals.Nodes) != 1 || p.Referrals.Nodes[0].ID != id ||
			len(p.Referrals.Nodes[0].Participants) != 1 || p.Referrals.Nodes[0].Participants[0].OrganizationID != fmt.Sprint("seen-", i) {
			t.Fatalf("after its status change and invitation, %s lists as %+v", id, p)
		}
		var stats struct {
			ReferralStats struct{ Total struct{ Count int } }
		}
		e.post(t, `query N($name: String!) { referralStats(groupBy: [STATUS], filter: { customerName: $name, participant: { status: [INVITED] } }) { total { count } } }`,
			map[string]any{"name": name}).mustData(t, &stats)
		if stats.ReferralStats.Total.Count != 1 {
			t.Fatalf("statistics after the invitation count %d referrals, want 1", stats.ReferralStats.Total.Count)
		}
	}
}

package graph

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"referrals/storage"
)

// nestedFields is everything a referral page can show, nested types included.
const nestedFields = `
  id status referralSource createdDateTime updatedDateTime
  customerProfile {
    id name size
    address { addressLine1 addressLine2 city state postalCode country }
    contacts { firstName lastName email phoneNumber }
  }
  details {
    notes dealValue closingDate
    requirements {
      industryFocus { id category name }
      products { id category name }
      serviceTypes { id category name }
      solutions { id category name }
    }
  }
  participants {
    id createdDateTime expirationDateTime organizationId locationId organizationName
    status invitedByParticipantId referralView
    users { id firstName lastName email phoneNumber }
    invitedBy { id organizationName }
  }`

const nestedPageQuery = `query NestedPage($first: Int) {
  referrals(first: $first, orderBy: {field: CUSTOMER_NAME, direction: ASC}) {
    totalCount
    nodes {` + nestedFields + `}
  }
}`

// Shapes of the expected JSON.
type (
	tagJSON  struct{ ID, Category, Name string }
	userJSON struct {
		ID, FirstName, LastName, Email, PhoneNumber string
	}
	participantJSON struct {
		ID, CreatedDateTime, ExpirationDateTime, OrganizationID, LocationID, OrganizationName string
		Status                                                                                string
		InvitedByParticipantID                                                                *string
		ReferralView                                                                          string
		Users                                                                                 []userJSON
		InvitedBy                                                                             *struct{ ID, OrganizationName string }
	}
	referralJSON struct {
		ID, Status, ReferralSource, CreatedDateTime, UpdatedDateTime string
		CustomerProfile                                              struct {
			ID, Name, Size string
			Address        struct {
				AddressLine1 string
				AddressLine2 *string
				City         string
				State        *string
				PostalCode   string
				Country      string
			}
			Contacts []struct{ FirstName, LastName, Email, PhoneNumber string }
		}
		Details struct {
			Notes, DealValue, ClosingDate string
			Requirements                  struct{ IndustryFocus, Products, ServiceTypes, Solutions []tagJSON }
		}
		Participants []participantJSON
	}
)

// expectReferral writes what the API must show for r, from the seeded data.
func expectReferral(t *testing.T, r storage.Referral, parts []storage.Participant) referralJSON {
	t.Helper()
	ts := func(v time.Time) string { return v.UTC().Format(time.RFC3339) }
	names := map[string]string{}
	for _, tag := range storage.Catalog() {
		names[string(tag.Category)+"/"+tag.ID] = tag.Name
	}
	tags := func(c storage.TagCategory, gql string, ids []string) []tagJSON {
		out := []tagJSON{}
		for _, id := range ids {
			out = append(out, tagJSON{ID: id, Category: gql, Name: names[string(c)+"/"+id]})
		}
		return out
	}
	enum := map[string]string{
		"Pending": "PENDING", "Active": "ACTIVE", "Won": "WON", "Lost": "LOST", "Archived": "ARCHIVED",
		"WebDirect": "WEB_DIRECT", "PartnerLed": "PARTNER_LED", "AgentLed": "AGENT_LED", "P2P": "P2P",
		"Invited": "INVITED", "Accepted": "ACCEPTED", "Rejected": "REJECTED", "Expired": "EXPIRED", "Missed": "MISSED",
	}
	var w referralJSON
	w.ID, w.Status, w.ReferralSource = r.ID, enum[string(r.Status)], enum[string(r.ReferralSource)]
	w.CreatedDateTime, w.UpdatedDateTime = ts(r.CreatedDateTime), ts(r.UpdatedDateTime)
	cp := r.CustomerProfile
	w.CustomerProfile.ID, w.CustomerProfile.Name, w.CustomerProfile.Size = cp.ID, cp.Name, cp.Size
	a := cp.Address
	w.CustomerProfile.Address.AddressLine1, w.CustomerProfile.Address.AddressLine2 = a.AddressLine1, a.AddressLine2
	w.CustomerProfile.Address.City, w.CustomerProfile.Address.State = a.City, a.State
	w.CustomerProfile.Address.PostalCode, w.CustomerProfile.Address.Country = a.PostalCode, a.Country
	for _, c := range cp.Contacts {
		w.CustomerProfile.Contacts = append(w.CustomerProfile.Contacts, struct{ FirstName, LastName, Email, PhoneNumber string }{c.FirstName, c.LastName, c.Email, c.PhoneNumber})
	}
	d := r.Details
	w.Details.Notes, w.Details.DealValue, w.Details.ClosingDate = *d.Notes, d.DealValue.String(), ts(*d.ClosingDate)
	q := d.Requirements
	w.Details.Requirements.IndustryFocus = tags(storage.TagIndustryFocus, "INDUSTRY_FOCUS", q.IndustryFocus)
	w.Details.Requirements.Products = tags(storage.TagProducts, "PRODUCTS", q.Products)
	w.Details.Requirements.ServiceTypes = tags(storage.TagServiceTypes, "SERVICE_TYPES", q.ServiceTypes)
	w.Details.Requirements.Solutions = tags(storage.TagSolutions, "SOLUTIONS", q.Solutions)
	byID := map[string]storage.Participant{}
	for _, p := range parts {
		byID[p.ID] = p
	}
	for _, p := range parts {
		if p.ReferralID != r.ID {
			continue
		}
		pj := participantJSON{
			ID: p.ID, CreatedDateTime: ts(p.CreatedDateTime), ExpirationDateTime: ts(*p.ExpirationDateTime),
			OrganizationID: p.OrganizationID, LocationID: *p.LocationID, OrganizationName: p.OrganizationName,
			Status: enum[string(p.EffectiveStatus(time.Now()))], InvitedByParticipantID: p.InvitedByParticipantID, ReferralView: p.ReferralView,
		}
		for _, u := range p.Users {
			pj.Users = append(pj.Users, userJSON{u.ID, u.FirstName, u.LastName, u.Email, u.PhoneNumber})
		}
		if p.InvitedByParticipantID != nil {
			inviter := byID[*p.InvitedByParticipantID]
			pj.InvitedBy = &struct{ ID, OrganizationName string }{inviter.ID, inviter.OrganizationName}
		}
		w.Participants = append(w.Participants, pj)
	}
	return w
}

func TestNestedShape(t *testing.T) {
	e := newEnv(t, 50)
	// A referral with an invitation chain shows the most.
	i := slices.IndexFunc(e.referrals, func(r storage.Referral) bool { return len(r.Participation) >= 3 })
	r := e.referrals[i]
	var got struct{ Referral referralJSON }
	e.post(t, `query One($id: ID!) { referral(id: $id) {`+nestedFields+`} }`, map[string]any{"id": r.ID}).mustData(t, &got)
	want := expectReferral(t, r, e.parts)
	if !reflect.DeepEqual(got.Referral, want) {
		g, _ := json.MarshalIndent(got.Referral, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("referral differs\ngot  %s\nwant %s", g, w)
	}

	t.Run("UnknownIDIsNull", func(t *testing.T) {
		resp := e.post(t, `{ referral(id: "no-such-id") { id } participant(id: "nope") { id } }`, nil)
		var d struct{ Referral, Participant *struct{ ID string } }
		resp.mustData(t, &d)
		if d.Referral != nil || d.Participant != nil {
			t.Errorf("got %+v, want both null", d)
		}
	})

	t.Run("ParticipantBackReferences", func(t *testing.T) {
		p := e.parts[slices.IndexFunc(e.parts, func(p storage.Participant) bool { return p.InvitedByParticipantID != nil })]
		var d struct {
			Participant struct {
				Referral  struct{ ID string }
				InvitedBy struct{ ID string }
			}
		}
		e.post(t, `query P($id: ID!) { participant(id: $id) { referral { id } invitedBy { id } } }`, map[string]any{"id": p.ID}).mustData(t, &d)
		if d.Participant.Referral.ID != p.ReferralID || d.Participant.InvitedBy.ID != *p.InvitedByParticipantID {
			t.Errorf("got referral %s invitedBy %s, want %s and %s", d.Participant.Referral.ID, d.Participant.InvitedBy.ID, p.ReferralID, *p.InvitedByParticipantID)
		}
	})
}

// TestNestedPageCommandCount proves the batching: a page of N referrals
// with participants, users, invitedBy and all four tag lists costs the same
// few reads whatever N is. On the embedded store the planner answers the
// count, the page and the participants in SQL; the tags are one find.
func TestNestedPageCommandCount(t *testing.T) {
	e := newEnv(t, 120)
	want := []string{"planned", "planned", "planned", "planned"}
	for _, n := range []int{1, 10, 100} {
		t.Run(fmt.Sprint("N", n), func(t *testing.T) {
			e.reads()
			var d struct {
				Referrals struct {
					TotalCount int
					Nodes      []referralJSON
				}
			}
			e.post(t, nestedPageQuery, map[string]any{"first": n}).mustData(t, &d)
			got := e.reads()
			if len(d.Referrals.Nodes) != n || d.Referrals.TotalCount != 120 {
				t.Fatalf("got %d referrals of %d, want %d of 120", len(d.Referrals.Nodes), d.Referrals.TotalCount, n)
			}
			if !slices.Equal(got, want) {
				t.Errorf("commands = %v, want %v", got, want)
			}
			// The page is right, not just cheap: every referral as seeded.
			byID := map[string]storage.Referral{}
			for _, r := range e.referrals {
				byID[r.ID] = r
			}
			for _, node := range d.Referrals.Nodes {
				if w := expectReferral(t, byID[node.ID], e.parts); !reflect.DeepEqual(node, w) {
					t.Fatalf("referral %s differs from the seeded one", node.ID)
				}
			}
		})
	}
}

func TestTagCatalog(t *testing.T) {
	e := newEnv(t, 0)
	var all struct{ Tags []tagJSON }
	e.post(t, `{ tags { id category name } }`, nil).mustData(t, &all)
	counts := map[string]int{}
	for _, tag := range all.Tags {
		counts[tag.Category]++
		if tag.Name == "" {
			t.Errorf("tag %s has no name", tag.ID)
		}
	}
	want := map[string]int{"PRODUCTS": 20, "SERVICE_TYPES": 10, "INDUSTRY_FOCUS": 14, "SOLUTIONS": 48}
	if len(all.Tags) != 92 || !reflect.DeepEqual(counts, want) {
		t.Errorf("got %d tags %v, want 92 %v", len(all.Tags), counts, want)
	}
	for category, n := range want {
		var one struct{ Tags []tagJSON }
		e.post(t, `query T($c: TagCategory) { tags(category: $c) { id category } }`, map[string]any{"c": category}).mustData(t, &one)
		if len(one.Tags) != n {
			t.Errorf("tags(category: %s) returned %d, want %d", category, len(one.Tags), n)
		}
	}
	t.Run("PrepareIsIdempotent", func(t *testing.T) {
		if err := e.store.Prepare(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.post(t, `{ tags { id category name } }`, nil).mustData(t, &all)
		if len(all.Tags) != 92 {
			t.Errorf("after a second start: %d tags, want 92", len(all.Tags))
		}
	})
}

// TestPageReadsOnlyWhatIsSelected checks that the page prefetch follows the
// selection, through `nodes`, `edges { node }` and fragments.
func TestPageReadsOnlyWhatIsSelected(t *testing.T) {
	e := newEnv(t, 30)
	tests := []struct {
		name, query string
		want        []string
	}{
		{"IDsOnly", `{ referrals(first: 25) { nodes { id } } }`, []string{"planned"}},
		{"CountOnly", `{ referrals(first: 0) { totalCount } }`, []string{"planned", "planned"}},
		{"EdgesParticipants", `{ referrals(first: 25) { edges { node { participants { id invitedBy { id } } } } } }`,
			[]string{"planned", "planned"}},
		{"FragmentTags", `{ referrals(first: 25) { nodes { ...Req } } } fragment Req on Referral { details { requirements { solutions { name } } } }`,
			[]string{"planned", "planned"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.reads()
			var d map[string]any
			e.post(t, tt.query, nil).mustData(t, &d)
			got := e.reads()
			if !slices.Equal(got, tt.want) {
				t.Errorf("commands = %v, want %v", got, tt.want)
			}
		})
	}
}

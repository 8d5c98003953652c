package graph

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"referrals/internal/testclock"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// snapshot returns every document of the test's database, sorted by
// collection and _id, as raw BSON: two equal snapshots mean a byte-for-byte
// unchanged store.
func snapshot(t *testing.T, e *env) []byte {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(testURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	var out bytes.Buffer
	for _, coll := range []string{"referrals", "participants", "tags", "changes", "claims"} {
		cur, err := client.Database(e.db).Collection(coll).Find(t.Context(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(t.Context()) {
			out.Write(cur.Current)
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// wantUnchanged runs fn and checks the store is byte-for-byte as before.
func wantUnchanged(t *testing.T, e *env, fn func()) {
	t.Helper()
	before := snapshot(t, e)
	fn()
	if !bytes.Equal(before, snapshot(t, e)) {
		t.Error("a failed mutation changed the store")
	}
}

const createMutation = `mutation Create($input: CreateReferralInput!) {
  createReferral(input: $input) {
    id version status referralSource createdDateTime updatedDateTime
    customerProfile { name size address { addressLine1 city country } contacts { firstName email phoneNumber } }
    details { notes dealValue closingDate requirements { products { id name } solutions { id } } }
    participants { id }
  }
}`

func validInput() map[string]any {
	return map[string]any{
		"referralSource": "PARTNER_LED",
		"customerProfile": map[string]any{
			"name": "Fourth Coffee Ltd", "size": "50-249",
			"address":  map[string]any{"addressLine1": "1 Main Street", "city": "Leeds", "country": "gb"},
			"contacts": []any{map[string]any{"firstName": "Ana", "lastName": "Lopez", "email": "ana@fourthcoffee.example", "phoneNumber": "+44 113 496 0000"}},
		},
		"details": map[string]any{
			"notes": "Wants Teams rolled out", "dealValue": "12500.50", "closingDate": "2027-03-31T00:00:00Z",
			"requirements": map[string]any{"products": []string{"Teams", "Azure"}, "solutions": []string{"CloudVoice"}},
		},
	}
}

type mutatedReferral struct {
	ID              string
	Version         int
	Status          string
	CreatedDateTime time.Time
	UpdatedDateTime time.Time
	CustomerProfile struct {
		Name    string
		Address struct{ Country string }
	}
	Details struct {
		Notes, DealValue string
	}
}

func TestCreateReferral(t *testing.T) {
	e := newEnv(t, 0)
	var d struct{ CreateReferral mutatedReferral }
	e.post(t, createMutation, map[string]any{"input": validInput()}).mustData(t, &d)
	got := d.CreateReferral
	if got.ID == "" || got.Version != 1 || got.Status != "PENDING" || got.CustomerProfile.Address.Country != "GB" ||
		got.Details.DealValue != "12500.50" || !got.CreatedDateTime.Equal(got.UpdatedDateTime) || time.Since(got.CreatedDateTime) > time.Minute {
		t.Errorf("created %+v", got)
	}
	var read struct{ Referral mutatedReferral }
	e.post(t, `query($id: ID!) { referral(id: $id) { id version status createdDateTime updatedDateTime customerProfile { name address { country } } details { notes dealValue } } }`,
		map[string]any{"id": got.ID}).mustData(t, &read)
	if read.Referral != got {
		t.Errorf("read back %+v, want %+v", read.Referral, got)
	}

	set := func(path string, v any) map[string]any {
		in := validInput()
		m := in
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		if v == nil {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = v
		}
		return in
	}
	contact := func(field, value string) []any {
		c := map[string]any{"firstName": "Ana", "lastName": "Lopez"}
		c[field] = value
		return []any{c}
	}
	tests := []struct {
		name     string
		input    map[string]any
		mentions []string
	}{
		{"ErrNameMissing", set("customerProfile.name", nil), []string{"name"}},
		{"ErrNameBlank", set("customerProfile.name", "   "), []string{"input.customerProfile.name", "blank"}},
		{"ErrNameTooLong", set("customerProfile.name", strings.Repeat("x", 201)), []string{"input.customerProfile.name", "200"}},
		{"ErrCountryUnknown", set("customerProfile.address.country", "XX"), []string{"input.customerProfile.address.country", "XX"}},
		{"ErrCountryAlpha3", set("customerProfile.address.country", "USA"), []string{"input.customerProfile.address.country"}},
		{"ErrCityBlank", set("customerProfile.address.city", ""), []string{"input.customerProfile.address.city"}},
		{"ErrEmail", set("customerProfile.contacts", contact("email", "ana@")), []string{"input.customerProfile.contacts[0].email"}},
		{"ErrEmailDisplayName", set("customerProfile.contacts", contact("email", "Ana <ana@x.example>")), []string{"input.customerProfile.contacts[0].email"}},
		{"ErrPhoneLetters", set("customerProfile.contacts", contact("phoneNumber", "call me")), []string{"input.customerProfile.contacts[0].phoneNumber"}},
		{"ErrPhoneShort", set("customerProfile.contacts", contact("phoneNumber", "+1 23")), []string{"input.customerProfile.contacts[0].phoneNumber"}},
		{"ErrDealNegative", set("details.dealValue", "-1.00"), []string{"input.details.dealValue", "negative"}},
		{"ErrDealThreeDecimals", set("details.dealValue", "1.001"), []string{"input.details.dealValue", "2 decimal places"}},
		{"ErrClosingDate", set("details.closingDate", "31/03/2027"), []string{"input.details.closingDate", "RFC 3339"}},
		{"ErrUnknownTag", set("details.requirements", map[string]any{"products": []string{"Teams", "Notepad"}}), []string{"input.details.requirements.products", "Notepad"}},
		{"ErrTagOfOtherCategory", set("details.requirements", map[string]any{"solutions": []string{"Azure"}}), []string{"input.details.requirements.solutions", "Azure"}},
		{"ErrUnknownSource", set("referralSource", "EMAIL"), []string{"referralSource", "EMAIL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantUnchanged(t, e, func() {
				e.post(t, createMutation, map[string]any{"input": tt.input}).wantBadInput(t, tt.mentions...)
			})
		})
	}
}

const updateMutation = `mutation Update($id: ID!, $v: Int!, $patch: ReferralPatch!) {
  updateReferral(id: $id, expectedVersion: $v, patch: $patch) {
    id version updatedDateTime createdDateTime status customerProfile { name address { country } } details { notes dealValue }
  }
}`

func (e *env) create(t *testing.T) mutatedReferral {
	t.Helper()
	var d struct{ CreateReferral mutatedReferral }
	e.post(t, createMutation, map[string]any{"input": validInput()}).mustData(t, &d)
	return d.CreateReferral
}

func TestUpdateReferral(t *testing.T) {
	clock := testclock.At(testAnchor)
	e := newEnvAt(t, 0, clock.Now)
	r := e.create(t)
	clock.Advance(time.Second) // so updatedDateTime visibly moves
	var d struct{ UpdateReferral mutatedReferral }
	e.post(t, updateMutation, map[string]any{"id": r.ID, "v": 1, "patch": map[string]any{
		"customerProfile": map[string]any{"name": "Fourth Coffee Group"}, "details": map[string]any{"dealValue": 99},
	}}).mustData(t, &d)
	got := d.UpdateReferral
	if got.Version != 2 || got.CustomerProfile.Name != "Fourth Coffee Group" || got.Details.DealValue != "99.00" ||
		got.Details.Notes != r.Details.Notes || got.CustomerProfile.Address.Country != "GB" || !got.UpdatedDateTime.After(r.UpdatedDateTime) ||
		!got.CreatedDateTime.Equal(r.CreatedDateTime) {
		t.Errorf("after update: %+v (before %+v)", got, r)
	}

	tests := []struct {
		name, code string
		vars       map[string]any
		mentions   []string
	}{
		{"ErrStaleVersion", "CONFLICT", map[string]any{"id": r.ID, "v": 1, "patch": map[string]any{"details": map[string]any{"notes": "x"}}}, []string{"version 2, not 1"}},
		{"ErrUnknownID", "NOT_FOUND", map[string]any{"id": "nope", "v": 1, "patch": map[string]any{"details": map[string]any{"notes": "x"}}}, []string{"nope"}},
		{"ErrEmptyPatch", "BAD_USER_INPUT", map[string]any{"id": r.ID, "v": 2, "patch": map[string]any{}}, []string{"patch"}},
		{"ErrNothingGiven", "BAD_USER_INPUT", map[string]any{"id": r.ID, "v": 2, "patch": map[string]any{"details": map[string]any{}}}, []string{"patch"}},
		{"ErrBadCountry", "BAD_USER_INPUT", map[string]any{"id": r.ID, "v": 2, "patch": map[string]any{"customerProfile": map[string]any{"address": map[string]any{"addressLine1": "x", "city": "y", "country": "ZZ"}}}}, []string{"patch.customerProfile.address.country"}},
		{"ErrBlankName", "BAD_USER_INPUT", map[string]any{"id": r.ID, "v": 2, "patch": map[string]any{"customerProfile": map[string]any{"name": ""}}}, []string{"patch.customerProfile.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantUnchanged(t, e, func() {
				resp := e.post(t, updateMutation, tt.vars)
				code, msg := resp.code(t)
				if code != tt.code {
					t.Errorf("code %s (%s), want %s", code, msg, tt.code)
				}
				for _, m := range tt.mentions {
					if !strings.Contains(msg, m) {
						t.Errorf("message %q does not mention %q", msg, m)
					}
				}
			})
		})
	}
}

// TestConcurrentUpdates fires 50 updates expecting the same version at
// once, five rounds over: exactly one wins each round and the others get
// CONFLICT, so no update is lost to a read-modify-write race.
func TestConcurrentUpdates(t *testing.T) {
	e := newEnv(t, 0)
	r := e.create(t)
	for round := range 5 {
		version := 1 + round
		var mu sync.Mutex
		var winners []string
		conflicts := 0
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				notes := fmt.Sprintf("round %d writer %d", round, i)
				resp, err := e.tryPost(updateMutation, map[string]any{"id": r.ID, "v": version, "patch": map[string]any{"details": map[string]any{"notes": notes}}})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Error(err)
				} else if len(resp.Errors) == 0 {
					winners = append(winners, notes)
				} else if resp.Errors[0].Extensions["code"] == "CONFLICT" {
					conflicts++
				} else {
					t.Errorf("unexpected response: %s", resp.raw)
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 || conflicts != 49 {
			t.Fatalf("round %d: %d winners and %d conflicts, want 1 and 49", round, len(winners), conflicts)
		}
		var d struct{ Referral mutatedReferral }
		e.post(t, `query($id: ID!) { referral(id: $id) { version details { notes } } }`, map[string]any{"id": r.ID}).mustData(t, &d)
		if d.Referral.Version != version+1 || d.Referral.Details.Notes != winners[0] {
			t.Fatalf("round %d: stored version %d notes %q, want %d and the winner's %q", round, d.Referral.Version, d.Referral.Details.Notes, version+1, winners[0])
		}
	}
}

const statusMutation = `mutation Status($id: ID!, $v: Int!, $s: ReferralStatus!, $reason: String) {
  changeReferralStatus(id: $id, expectedVersion: $v, status: $s, reason: $reason) { version status statusReason }
}`

func TestChangeReferralStatus(t *testing.T) {
	e := newEnv(t, 0)
	allowed := map[string][]string{
		"PENDING": {"ACTIVE", "LOST", "ARCHIVED"}, "ACTIVE": {"WON", "LOST", "ARCHIVED"},
		"WON": {"ARCHIVED"}, "LOST": {"ARCHIVED"}, "ARCHIVED": {},
	}
	// The shortest way to each status from PENDING.
	paths := map[string][]string{"PENDING": {}, "ACTIVE": {"ACTIVE"}, "WON": {"ACTIVE", "WON"}, "LOST": {"LOST"}, "ARCHIVED": {"ARCHIVED"}}
	all := []string{"PENDING", "ACTIVE", "WON", "LOST", "ARCHIVED"}
	for _, from := range all {
		for _, to := range all {
			t.Run(from+"_to_"+to, func(t *testing.T) {
				r := e.create(t)
				v := 1
				for _, s := range paths[from] {
					e.post(t, statusMutation, map[string]any{"id": r.ID, "v": v, "s": s}).mustData(t, &struct{}{})
					v++
				}
				if slices.Contains(allowed[from], to) {
					var d struct {
						ChangeReferralStatus struct {
							Version              int
							Status, StatusReason string
						}
					}
					e.post(t, statusMutation, map[string]any{"id": r.ID, "v": v, "s": to, "reason": "customer call"}).mustData(t, &d)
					if got := d.ChangeReferralStatus; got.Version != v+1 || got.Status != to || got.StatusReason != "customer call" {
						t.Errorf("got %+v", got)
					}
					return
				}
				wantUnchanged(t, e, func() {
					e.post(t, statusMutation, map[string]any{"id": r.ID, "v": v, "s": to}).wantBadInput(t, "from "+from+" to "+to)
				})
			})
		}
	}
	t.Run("ErrStaleVersion", func(t *testing.T) {
		r := e.create(t)
		wantUnchanged(t, e, func() {
			code, _ := e.post(t, statusMutation, map[string]any{"id": r.ID, "v": 7, "s": "ACTIVE"}).code(t)
			if code != "CONFLICT" {
				t.Errorf("code %s, want CONFLICT", code)
			}
		})
	})
	t.Run("ErrUnknownID", func(t *testing.T) {
		if code, _ := e.post(t, statusMutation, map[string]any{"id": "nope", "v": 1, "s": "ACTIVE"}).code(t); code != "NOT_FOUND" {
			t.Errorf("code %s, want NOT_FOUND", code)
		}
	})
}

// TestArchivedReferralsAreReadOnly: an ARCHIVED referral takes no update
// and no invitation (BAD_USER_INPUT naming its status, nothing written),
// and still reads.
func TestArchivedReferralsAreReadOnly(t *testing.T) {
	e := newEnv(t, 0)
	r := e.create(t)
	var invited struct{ InviteParticipant struct{ ID string } }
	e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": map[string]any{"organizationId": "org-open", "organizationName": "Open"}}).mustData(t, &invited)
	e.post(t, statusMutation, map[string]any{"id": r.ID, "v": 2, "s": "ARCHIVED"}).mustData(t, &struct{}{})
	wantUnchanged(t, e, func() {
		// An invitation still open cannot be answered either: accepting
		// would show the partner the customer's address.
		e.post(t, respondMutation, map[string]any{"id": invited.InviteParticipant.ID, "r": "ACCEPT"}).
			wantBadInput(t, "participantId", "ARCHIVED", "read-only")
		e.post(t, updateMutation, map[string]any{"id": r.ID, "v": 3, "patch": map[string]any{"details": map[string]any{"notes": "later"}}}).
			wantBadInput(t, "ARCHIVED", "read-only")
		e.post(t, inviteMutation, map[string]any{"ref": r.ID, "input": map[string]any{"organizationId": "org-late", "organizationName": "Late"}}).
			wantBadInput(t, "referralId", "ARCHIVED", "read-only")
	})
	var d struct{ Referral struct{ Status string } }
	e.post(t, `query($id: ID!) { referral(id: $id) { status } }`, map[string]any{"id": r.ID}).mustData(t, &d)
	if d.Referral.Status != "ARCHIVED" {
		t.Errorf("reads %q, want ARCHIVED", d.Referral.Status)
	}
}

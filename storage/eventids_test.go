package storage

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// TestEventIDs: an id opens only for the audience it was handed to (one
// organization, or the admins), round-trips the position, is the same each
// time one event is handed to one audience, and says nothing a partner
// could read: not the position, nor the order of two ids. Ids that were
// forged (the earlier `change:N` form), altered or cut are refused with
// BAD_USER_INPUT naming the argument, like another audience's.
func TestEventIDs(t *testing.T) {
	s := newTestStore(t)
	ids := s.EventIDs()
	orgA := Caller{Subject: "a", OrganizationID: "org-a", Role: RolePartner}
	orgB := Caller{Subject: "b", OrganizationID: "org-b", Role: RolePartner}
	admin := Caller{Subject: "x", Role: RoleAdmin}
	for _, c := range []Caller{orgA, orgB, admin} {
		for _, seq := range []int64{1, 2, 1 << 40} {
			if got, err := ids.Decode(c, "after", ids.Encode(c, seq)); got != seq || err != nil {
				t.Errorf("%v: decode(encode(%d)) = %d, %v", c, seq, got, err)
			}
		}
	}
	id := ids.Encode(orgA, 7)
	if again := ids.Encode(orgA, 7); again != id {
		t.Errorf("one event to one audience: %s then %s, want one id", id, again)
	}
	if len(ids.Encode(orgA, 8)) != len(id) || len(ids.Encode(orgA, 1<<40)) != len(id) {
		t.Error("ids of other positions differ in length")
	}
	altered := []byte(id)
	altered[10] ^= 'A' ^ 'B'
	if altered[10] == id[10] {
		altered[10] = 'C'
	}
	for name, tc := range map[string]struct {
		c  Caller
		id string
	}{
		"ErrOtherOrganization": {orgB, id},
		"ErrPartnerToAdmin":    {admin, id},
		"ErrAdminToPartner":    {orgA, ids.Encode(admin, 7)},
		"ErrEarlierForm":       {orgA, base64.RawURLEncoding.EncodeToString([]byte("change:7"))},
		"ErrAltered":           {orgA, string(altered)},
		"ErrCut":               {orgA, id[:len(id)-1]},
		"ErrNotBase64":         {orgA, "not an id"},
		"ErrEmpty":             {orgA, ""},
	} {
		t.Run(name, func(t *testing.T) {
			seq, err := ids.Decode(tc.c, "after", tc.id)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadUserInput || strings.Join(e.Field, ".") != "after" {
				t.Errorf("got %d, %v; want BAD_USER_INPUT about after", seq, err)
			}
		})
	}
}

// TestEventIDsOutliveTheProcess: another process on the same database
// (and so a restart) opens the ids this one handed out; a store on another
// database does not.
func TestEventIDsOutliveTheProcess(t *testing.T) {
	s := newTestStore(t)
	c := Caller{Subject: "a", OrganizationID: "org-a", Role: RolePartner}
	id := s.EventIDs().Encode(c, 42)
	again := testStore.WithDatabase(s.db.Name())
	if err := again.Prepare(asAdmin(t)); err != nil {
		t.Fatal(err)
	}
	if seq, err := again.EventIDs().Decode(c, "after", id); seq != 42 || err != nil {
		t.Errorf("another process: %d, %v; want 42", seq, err)
	}
	other := newTestStore(t)
	if _, err := other.EventIDs().Decode(c, "after", id); ErrorCodeOf(err) != CodeBadUserInput {
		t.Errorf("another database: %v, want BAD_USER_INPUT", err)
	}
}

// BenchmarkEventIDEncode is the cost each delivered event adds: its id is
// made for each subscriber's audience as it is sent.
func BenchmarkEventIDEncode(b *testing.B) {
	ids, err := newEventIDs(make([]byte, eventIDSecretSize))
	if err != nil {
		b.Fatal(err)
	}
	c := Caller{Subject: "a", OrganizationID: "org-a", Role: RolePartner}
	b.ReportAllocs()
	for i := int64(1); b.Loop(); i++ {
		ids.Encode(c, i)
	}
}

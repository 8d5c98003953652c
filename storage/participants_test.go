package storage

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestParticipantFilterScope checks that a partner's participant filter
// ANDs its own organization with the one it asks for instead of writing
// organizationId twice into one document, whose meaning differs between
// stores: asking for another organization lists nothing.
func TestParticipantFilterScope(t *testing.T) {
	s := newTestStore(t)
	refs, parts := demoGenerate(11, 60, testAnchor)
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	org := refs[0].Participation[0].OrganizationID
	var other string
	own := 0
	for _, p := range parts {
		if p.OrganizationID == org {
			own++
		} else {
			other = p.OrganizationID
		}
	}
	partner := WithCaller(t.Context(), Caller{Subject: "p", OrganizationID: org, Role: RolePartner})

	q, err := (&ParticipantFilter{OrganizationID: &other}).query(partner, s.Now())
	if err != nil {
		t.Fatal(err)
	}
	if dup := repeatedKey(q); dup != "" {
		t.Errorf("query %v names %s twice in one document", q, dup)
	}
	for name, tt := range map[string]struct {
		org  string
		want int
	}{"Own": {org, own}, "Other": {other, 0}} {
		t.Run(name, func(t *testing.T) {
			f := &ParticipantFilter{OrganizationID: &tt.org}
			n, err := s.CountParticipants(partner, f)
			if err != nil || n != tt.want {
				t.Errorf("count = %d, %v; want %d", n, err, tt.want)
			}
			size := 100
			p, err := s.Participants(partner, f, PageArgs{First: &size})
			if err != nil || len(p.Edges) != tt.want {
				t.Errorf("page of %d, %v; want %d", len(p.Edges), err, tt.want)
			}
		})
	}
}

// repeatedKey returns a key that appears twice in one document of q, at
// any depth, or "".
func repeatedKey(q bson.D) string {
	seen := map[string]bool{}
	for _, e := range q {
		if seen[e.Key] {
			return e.Key
		}
		seen[e.Key] = true
		if dup := repeatedIn(e.Value); dup != "" {
			return dup
		}
	}
	return ""
}

func repeatedIn(v any) string {
	switch v := v.(type) {
	case bson.D:
		return repeatedKey(v)
	case bson.A:
		for _, x := range v {
			if dup := repeatedIn(x); dup != "" {
				return dup
			}
		}
	}
	return ""
}

// TestExpiringMatchCountsOnlyListableParticipants: a partner's referral
// filter on participant expirations selects only the participants it may
// list, so the bound on how many a range may select cannot be used to learn
// how many invitations other organizations hold.
func TestExpiringMatchCountsOnlyListableParticipants(t *testing.T) {
	s := newTestStore(t)
	refs, parts := demoGenerate(11, 60, testAnchor)
	if err := s.InsertReferrals(asAdmin(t), refs, parts); err != nil {
		t.Fatal(err)
	}
	org := refs[0].Participation[0].OrganizationID
	own, all := 0, 0
	wantRefs := map[string]bool{}
	for _, p := range parts {
		if p.ExpirationDateTime == nil {
			continue
		}
		all++
		if p.OrganizationID == org {
			own++
			wantRefs[p.ReferralID] = true
		}
	}
	if own == 0 || own == all {
		t.Fatalf("the seed gives the partner %d of %d participants with an expiration; the test needs some of both", own, all)
	}
	defer func(max int) { maxExpiringParticipants = max }(maxExpiringParticipants)
	maxExpiringParticipants = own

	partner := WithCaller(t.Context(), Caller{Subject: "p", OrganizationID: org, Role: RolePartner})
	from := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &ReferralFilter{Participant: &ParticipantMatch{ExpirationDateTime: &TimeRange{From: &from}}}
	n, err := s.CountReferrals(partner, f)
	if err != nil || n != len(wantRefs) {
		t.Errorf("count = %d, %v; want %d (the referrals of the partner's own %d invitations)", n, err, len(wantRefs), own)
	}
}

package storage

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestPagingOverMissingValues pages through referrals some of which lack
// the sort field: they come first ascending and last descending, each
// exactly once, whatever the page size.
func TestPagingOverMissingValues(t *testing.T) {
	s := newTestStore(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var refs []Referral
	var nullIDs, valueIDs []string
	for i := range 11 {
		r := Referral{ID: fmt.Sprintf("r%02d", i), CreatedDateTime: t0, UpdatedDateTime: t0, Status: ReferralActive, ReferralSource: SourceP2P, Details: &ReferralDetails{}}
		if i%3 != 0 { // every third has neither closing date nor value
			closing, value := t0.AddDate(0, 0, i%4), Money(i%4*100)
			r.Details.ClosingDate, r.Details.DealValue = &closing, &value
			valueIDs = append(valueIDs, r.ID)
		} else {
			nullIDs = append(nullIDs, r.ID)
		}
		refs = append(refs, r)
	}
	if err := s.InsertReferrals(asAdmin(t), refs, nil); err != nil {
		t.Fatal(err)
	}
	// Expected orders, by value then id.
	key := func(id string) int { var i int; fmt.Sscanf(id, "r%d", &i); return i % 4 }
	asc := slices.Clone(valueIDs)
	slices.SortStableFunc(asc, func(a, b string) int { return key(a) - key(b) })
	wantAsc := append(slices.Clone(nullIDs), asc...)
	wantDesc := slices.Clone(wantAsc)
	slices.Reverse(wantDesc)

	for _, field := range []ReferralOrderField{OrderByClosingDate, OrderByDealValue} {
		for _, dir := range []OrderDirection{Ascending, Descending} {
			want := wantAsc
			if dir == Descending {
				want = wantDesc
			}
			for _, size := range []int{1, 2, 5} {
				t.Run(fmt.Sprintf("%s_%s_%d", field, dir, size), func(t *testing.T) {
					order := &ReferralOrder{Field: field, Direction: &dir}
					if got := pageForward(t, s, nil, order, size); !slices.Equal(got, want) {
						t.Errorf("got  %v\nwant %v", got, want)
					}
					// And backward from the end.
					var back []string
					bargs := PageArgs{Last: &size}
					for range 20 {
						p, err := s.Referrals(asAdmin(t), nil, order, bargs)
						if err != nil {
							t.Fatal(err)
						}
						var ids []string
						for _, r := range p.Nodes() {
							ids = append(ids, r.ID)
						}
						back = append(ids, back...)
						if !p.PageInfo.HasPreviousPage {
							break
						}
						bargs.Before = p.PageInfo.StartCursor
					}
					if !slices.Equal(back, want) {
						t.Errorf("backward got %v\nwant %v", back, want)
					}
				})
			}
		}
	}
}

func TestDecodeCursorRejectsGarbage(t *testing.T) {
	scope := cursorScope("referrals", sortOrder{Field: "createdDateTime", Desc: true})
	good := encodeCursor(scope, time.Unix(100, 0), "x")
	if _, id, err := decodeCursor(scope, "after", good); err != nil || id != "x" {
		t.Fatalf("round trip: %q, %v", id, err)
	}
	for _, bad := range []string{"", "!!!", "e30", "eyJvIjoxfQ", good[:len(good)-3], good + "AAAA"} {
		if _, _, err := decodeCursor(scope, "after", bad); ErrorCodeOf(err) != CodeBadUserInput {
			t.Errorf("decodeCursor(%q) error = %v, want BAD_USER_INPUT", bad, err)
		}
	}
}

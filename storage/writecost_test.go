package storage

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWriteCost measures what the embedded read planner adds to a
// write: its expression indexes on referrals and participants, and the
// triggers that keep the side table of array elements. It times creates,
// versioned updates and invitations on a store of 2,000 demo referrals
// with the planner's schema (variant=planner) and on the same store after
// dropping it (variant=without), in one run:
//
//	go test ./storage -run '^$' -bench WriteCost -count 6
func BenchmarkWriteCost(b *testing.B) {
	for _, variant := range []string{"planner", "without"} {
		b.Run("variant="+variant, func(b *testing.B) {
			s := testStore.WithDatabase(fmt.Sprintf("test_%d", testDBSeq.Add(1)))
			b.Cleanup(func() { _ = s.Drop(context.Background()) })
			ctx := WithCaller(context.Background(), Caller{Subject: "bench", Role: RoleAdmin})
			if err := s.Prepare(ctx); err != nil {
				b.Fatal(err)
			}
			refs, parts := demoGenerate(3, 2000, testAnchor)
			if err := s.InsertReferrals(ctx, refs, parts); err != nil {
				b.Fatal(err)
			}
			if variant == "without" {
				dropPlannerSchema(b, s)
			}
			refs = slices.DeleteFunc(refs, func(r Referral) bool { return r.Status == ReferralArchived }) // read-only
			b.Run("op=create", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.CreateReferral(ctx, validReferralInput()); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("op=update", func(b *testing.B) {
				i := 0
				for b.Loop() {
					r := refs[i%len(refs)]
					i++
					got, err := s.ReferralsByID(ctx, []string{r.ID})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.UpdateReferral(ctx, r.ID, got[r.ID].Version, ReferralPatch{Details: &DetailsInput{Notes: ptr(time.Now().String())}}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("op=invite", func(b *testing.B) {
				for b.Loop() {
					i := writeCostOrgs.Add(1)
					if _, err := s.InviteParticipant(ctx, refs[int(i)%len(refs)].ID, InviteInput{OrganizationID: fmt.Sprint("w-", i), OrganizationName: "W"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// writeCostOrgs numbers the organizations BenchmarkWriteCost invites, so
// that each invitation is new across runs.
var writeCostOrgs atomic.Int64

// dropPlannerSchema drops the planner's indexes, triggers and side tables
// from s's SQLite file, leaving FerretDB's own and its _id lookups.
func dropPlannerSchema(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.dropPlanner(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

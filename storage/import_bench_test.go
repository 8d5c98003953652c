package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// BenchmarkImport measures imports into an empty store against inserting
// the same documents with the driver alone (op=raw: the referrals and
// their participants in batches, no validation, intents or changes), in
// one run, as referrals a second:
//
//	go test ./storage -run '^$' -bench Import -benchtime 3x
func BenchmarkImport(b *testing.B) {
	const n = 2000
	refs, parts := demoGenerate(7, n, testAnchor)
	byReferral := map[string][]Participant{}
	for _, p := range parts {
		byReferral[p.ReferralID] = append(byReferral[p.ReferralID], p)
	}
	records := func() []*ImportedReferral {
		out := make([]*ImportedReferral, len(refs))
		for i, r := range refs {
			rec := &ImportedReferral{Referral: r, Participants: append([]Participant(nil), byReferral[r.ID]...)}
			rec.Referral.Participation = nil
			for j := range rec.Participants {
				rec.Participants[j].ReferralID = ""
			}
			out[i] = rec
		}
		return out
	}
	ctx := WithCaller(context.Background(), Caller{Subject: "bench", Role: RoleAdmin})
	fresh := func(b *testing.B) *Store {
		s := testStore.WithDatabase(fmt.Sprintf("test_%d", testDBSeq.Add(1)))
		b.Cleanup(func() { _ = s.Drop(context.Background()) })
		if err := s.Prepare(ctx); err != nil {
			b.Fatal(err)
		}
		return s
	}
	rate := func(b *testing.B) {
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "referrals/s")
	}
	b.Run("op=raw", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			s := fresh(b)
			b.StartTimer()
			if err := s.InsertReferrals(ctx, refs, parts); err != nil {
				b.Fatal(err)
			}
		}
		rate(b)
	})
	for _, op := range []string{"create", "unchanged"} {
		b.Run("op="+op, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s := fresh(b)
				if op == "unchanged" {
					importAll(b, ctx, s, records())
				}
				b.StartTimer()
				importAll(b, ctx, s, records())
			}
			rate(b)
		})
	}
}

func importAll(b *testing.B, ctx context.Context, s *Store, recs []*ImportedReferral) {
	for batch := range slices.Chunk(recs, 100) {
		for _, res := range s.ImportReferrals(ctx, batch, ImportOptions{}) {
			if res.Err != nil {
				b.Fatal(res.Err)
			}
		}
	}
}

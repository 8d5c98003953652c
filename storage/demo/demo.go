// Package demo makes the demo data: realistic referrals and their
// participants (companies, people, places and deals that belong
// together), the same whatever the day they are made, with dates relative
// to it, and seeds an empty store with them. It imports storage only.
package demo

import (
	"context"
	"math/rand/v2"
	"time"

	"referrals/storage"
)

// Seed fills an empty store with Generate(seed, n), dated from the
// store's day. A store that already holds a referral is left untouched;
// it reports whether it wrote.
func Seed(ctx context.Context, s *storage.Store, seed uint64, n int) (bool, error) {
	if n <= 0 {
		return false, nil
	}
	empty, err := s.Empty(ctx)
	if err != nil || !empty {
		return false, err
	}
	refs, parts := Generate(seed, n, s.Now().Truncate(24*time.Hour))
	return s.LoadReferrals(ctx, refs, parts)
}

// Generate returns n realistic referrals and their participants,
// created during the year before anchor, oldest first and evenly spread
// over it, as a pipeline fills. The same seed gives the same referrals
// whatever the anchor (statuses, sources, amounts, names, tags,
// participants); only their dates move with it. Seed anchors at the
// seeding day, so recent invitations are still open whenever a store is
// seeded.
func Generate(seed uint64, n int, anchor time.Time) ([]storage.Referral, []storage.Participant) {
	g := demoGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), anchor: anchor.UTC()}
	var refs []storage.Referral
	var parts []storage.Participant
	year := 365 * 24 * time.Hour
	start := g.anchor.Add(-year)
	for i := range n {
		// The i-th of n equal slices of the year.
		from := start.Add(time.Duration(float64(year) * float64(i) / float64(n)))
		to := start.Add(time.Duration(float64(year) * float64(i+1) / float64(n)))
		r, ps := g.referral(g.between(from, to))
		refs = append(refs, r)
		parts = append(parts, ps...)
	}
	return refs, parts
}

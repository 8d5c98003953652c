package storage

import (
	"context"
	"time"
)

// Many of these tests run on the demo data. Package demo imports storage,
// so they cannot import it; the external test package (demo_link_test.go),
// compiled into the same test binary, hands them its functions before any
// test runs.
var (
	demoGenerate func(seed uint64, n int, anchor time.Time) ([]Referral, []Participant)
	demoSeed     func(ctx context.Context, s *Store, seed uint64, n int) (bool, error)
)

// SetDemo gives these tests demo.Generate and demo.Seed.
func SetDemo(generate func(uint64, int, time.Time) ([]Referral, []Participant), seed func(context.Context, *Store, uint64, int) (bool, error)) {
	demoGenerate, demoSeed = generate, seed
}

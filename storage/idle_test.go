package storage

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"referrals/storage/changelog"
)

// idleWindow is how long BenchmarkIdleCPU measures.
const idleWindow = 10 * time.Second

// BenchmarkIdleCPU measures what the change feed costs while nothing
// happens: the process's CPU time (user + system, getrusage) over 10 s
// while a follower runs with no changes coming, on the embedded store
// (which runs in this process) holding 0, 10,000 and 100,000 changes.
// Nothing else runs in the process meanwhile; a server without clients
// adds no work of its own but the minutely invitation-expiry sweep.
// It reports the share of one core.
//
// Under -short (CI runs every benchmark once that way) only 0 changes.
//
// Run: go test ./storage -run '^$' -bench IdleCPU -benchtime 1x
func BenchmarkIdleCPU(b *testing.B) {
	for _, n := range []int{0, 10_000, 100_000} {
		if testing.Short() && n > 0 {
			continue
		}
		b.Run(fmt.Sprintf("changes=%d", n), func(b *testing.B) { benchIdle(b, n) })
	}
}

func benchIdle(b *testing.B, n int) {
	s := testStore.WithDatabase(fmt.Sprintf("bench_%d", testDBSeq.Add(1)))
	ctx := WithCaller(context.Background(), Caller{Subject: "bench", Role: RoleAdmin})
	b.Cleanup(func() { _ = s.Drop(context.Background()) })
	if err := s.Prepare(ctx); err != nil {
		b.Fatal(err)
	}
	fillChanges(b, s, n)
	var shares []float64
	for b.Loop() {
		follower, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			after, err := s.LatestChange(follower)
			if err != nil {
				panic(err)
			}
			_ = s.FollowChanges(follower, after, func(Change) { panic("a change while idle") })
		}()
		time.Sleep(time.Second) // let the follower start and the store settle
		before := cpuTime()
		time.Sleep(idleWindow)
		shares = append(shares, float64(cpuTime()-before)/float64(idleWindow)*100)
		stop()
		<-done
	}
	var sum float64
	for _, v := range shares {
		sum += v
	}
	b.ReportMetric(sum/float64(len(shares)), "%core")
}

// fillChanges stores n changes with real referrals as their post-images,
// in bulk, and advances the heads past them.
func fillChanges(b *testing.B, s *Store, n int) {
	refs, _ := demoGenerate(1, 200, testAnchor)
	for from := 1; from <= n; from += 1000 {
		var docs []any
		for seq := from; seq < from+1000 && seq <= n; seq++ {
			r := refs[seq%len(refs)]
			docs = append(docs, Change{Header: changelog.Header{Seq: int64(seq), Key: changelog.Key(int64(seq)), Writer: bson.NewObjectID()},
				ReferralID: r.ID, Type: ChangeUpdated, Fields: []string{"details.notes"}, At: s.Now(), After: &r})
		}
		if _, err := s.changes.InsertMany(context.Background(), docs); err != nil {
			b.Fatal(err)
		}
	}
	if n > 0 {
		setHead(b, s, int64(n))
	}
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"referrals/webhooks"
	"referrals/webhooks/egress"
)

// BenchmarkWebhookLatency makes 1,000 changes (referral creates through
// the store, one after the other) with 10 webhooks whose loopback
// receivers answer 200, and reports the p50 and p99 of the time from
// each change's commit (its recorded time) to its first attempt reaching
// the receiver, over every delivery. With hanging=N, N of the ten
// receivers never answer (attempts time out after 10 s): the others'
// times are reported.
//
// Run: go test . -run '^$' -bench WebhookLatency -benchtime 1x
func BenchmarkWebhookLatency(b *testing.B) {
	changes := 1000
	if testing.Short() {
		changes = 50
	}
	for _, hanging := range []int{0, 1, 8} {
		b.Run(fmt.Sprintf("hanging=%d", hanging), func(b *testing.B) {
			stop := make(chan struct{})
			rig := newDeliveryRigAt(b, webhooks.Options{Egress: egress.Policy{AllowPrivate: true}}, time.Now)
			var healthy []*receiver
			for i := range 10 {
				if i < hanging {
					rc := newReceiver(b, func(int, hookRequest) int { <-stop; return http.StatusOK })
					rig.hook(b, rc.URL)
					continue
				}
				rc := newReceiver(b, nil)
				healthy = append(healthy, rc)
				rig.hook(b, rc.URL)
			}
			b.Cleanup(func() { close(stop) }) // before the receivers close, which waits for the hanging one
			for b.Loop() {
				type arrival struct {
					at   time.Time
					body []byte
				}
				arrivals := make(chan arrival, len(healthy)*changes)
				for _, rc := range healthy {
					go func() {
						for range changes {
							r := rc.next(b)
							arrivals <- arrival{time.Now(), r.body}
						}
					}()
				}
				for i := range changes {
					rig.create(b, fmt.Sprint("Latency ", i))
				}
				var lags []time.Duration
				for range len(healthy) * changes {
					a := <-arrivals
					var body struct{ Timestamp time.Time }
					if err := json.Unmarshal(a.body, &body); err != nil {
						b.Fatal(err)
					}
					lags = append(lags, a.at.Sub(body.Timestamp))
				}
				slices.Sort(lags)
				b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
			}
		})
	}
}

// BenchmarkWebhookIdleCPU reports the process's CPU time (user + system)
// over 10 s while 10 webhooks wait for changes that do not come, as a
// share of one core: the deliverer looks for due retries every 5 s.
//
// Run: go test . -run '^$' -bench WebhookIdleCPU -benchtime 1x
func BenchmarkWebhookIdleCPU(b *testing.B) {
	window := 10 * time.Second
	if testing.Short() {
		window = time.Second
	}
	rig := newDeliveryRigAt(b, webhooks.Options{Egress: egress.Policy{AllowPrivate: true}}, time.Now)
	for range 10 {
		rig.hook(b, newReceiver(b, nil).URL)
	}
	for b.Loop() {
		before := processCPU()
		time.Sleep(window) // idle is measured over a span of time
		b.ReportMetric(float64(processCPU()-before)/float64(window)*100, "%core")
	}
}

// processCPU is the process's user and system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

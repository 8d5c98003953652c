package webhooks

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count deliveries and time attempts for /metrics.
type metrics struct {
	made     prometheus.Counter
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
	disabled prometheus.Counter
}

// backlogTimeout bounds the count of open deliveries /metrics asks for.
const backlogTimeout = 5 * time.Second

func newMetrics(reg prometheus.Registerer, d *Deliverer) *metrics {
	m := &metrics{
		made: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webhook_deliveries_made_total",
			Help: "Webhook deliveries this process recorded (one per change and webhook that receives it, and per ping).",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_attempts_total",
			Help: "Webhook delivery attempts this process made, by outcome: succeeded, retrying (failed, another attempt is due) or failed (failed, no attempt left, or 410 Gone).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "webhook_attempt_duration_seconds",
			Help:    "Time from sending a webhook attempt to its response (or failure).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webhooks_disabled_total",
			Help: "Webhooks this process disabled (410 Gone, or failing for --webhook-disable-after).",
		}),
	}
	if reg == nil {
		return m
	}
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "webhook_backlog",
		Help: "Webhook deliveries not yet settled (pending or failing), over every webhook.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
		defer cancel()
		n, err := d.Backlog(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	reg.MustRegister(m.made, m.attempts, m.duration, m.disabled, backlog)
	return m
}

// Backlog counts the deliveries not yet settled, over every webhook.
func (d *Deliverer) Backlog(ctx context.Context) (int64, error) {
	hooks, err := d.store.AllWebhooks(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, w := range hooks {
		c, err := d.store.CountOpenDeliveries(ctx, w.ID)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

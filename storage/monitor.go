package storage

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/event"
)

// CommandMetrics returns a command monitor that counts every command the
// driver sends, by name, as mongodb_commands_total, and failures as
// mongodb_command_failures_total.
func CommandMetrics(reg prometheus.Registerer) *event.CommandMonitor {
	started := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mongodb_commands_total",
		Help: "MongoDB commands sent by the driver, by command name.",
	}, []string{"command"})
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mongodb_command_failures_total",
		Help: "MongoDB commands that failed, by command name.",
	}, []string{"command"})
	reg.MustRegister(started, failed)
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) { started.WithLabelValues(e.CommandName).Inc() },
		Failed:  func(_ context.Context, e *event.CommandFailedEvent) { failed.WithLabelValues(e.CommandName).Inc() },
	}
}

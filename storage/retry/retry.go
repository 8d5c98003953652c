// Package retry retries idempotent writes through transient failures.
package retry

import (
	"context"
	"time"
)

// delays are the pauses before the retries of an idempotent write: a
// transient failure (a dropped connection, a store too busy to take the
// write) must not leave a claim, a participant or a change record behind.
var delays = [...]time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond}

// Idempotent runs op until it succeeds, at most 1+len(delays)
// times. op must have the same effect however often it runs, including
// after a failure that happened after the store applied it. It runs
// without ctx's cancellation: a client that goes away must not stop the
// cleanup of its write halfway.
func Idempotent(ctx context.Context, op func(context.Context) error) error {
	ctx = context.WithoutCancel(ctx)
	for i := 0; ; i++ {
		err := op(ctx)
		if err == nil || i == len(delays) {
			return err
		}
		time.Sleep(delays[i])
	}
}

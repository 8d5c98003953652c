// Package testclock is a clock that moves only when a test moves it, for
// the stores and deliverers that take a clock. It is imported by tests
// only.
package testclock

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when told; its zero value stands at
// the zero time. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// At returns a clock standing at t.
func At(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

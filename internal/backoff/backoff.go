// Package backoff owns the gateway's one retry delay: a wait that doubles
// with each attempt from a minimum up to a cap, with optional jitter, and a
// wait that ends as soon as its context does. The runtime supervisor
// (restarting a workerd process), the cloudflare relay (reconnecting to the
// shim) and the Go client (retrying a 503) all wait through it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a doubling delay. The zero Policy waits not at all.
type Policy struct {
	// Min is the delay before the first retry (attempt 0); each attempt
	// after it doubles the delay, up to Max. A Max below Min means Min.
	Min, Max time.Duration
	// Jitter makes each delay d a random duration in [d/2, d), so that
	// callers that failed together do not all come back together.
	Jitter bool
	// After, when set, replaces the real clock in Sleep and Wait: it returns
	// a channel that delivers once d has passed. Tests set it to order a
	// wait against other events without sleeping.
	After func(d time.Duration) <-chan time.Time
}

// Delay returns the wait before retry number attempt (0 is the first).
func (p Policy) Delay(attempt int) time.Duration {
	ceiling := max(p.Max, p.Min)
	d := p.Min
	for i := 0; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	if p.Jitter && d >= 2 {
		d = d/2 + rand.N(d/2)
	}
	return d
}

// Wait waits Delay(attempt), or less if ctx ends first; see Sleep.
func (p Policy) Wait(ctx context.Context, attempt int) error {
	return p.Sleep(ctx, p.Delay(attempt))
}

// Sleep waits for d or until ctx ends. It returns nil when d has passed,
// and ctx's error when ctx ended first (or had ended already).
func (p Policy) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	var fired <-chan time.Time
	if p.After != nil {
		fired = p.After(d)
	} else {
		t := time.NewTimer(d)
		defer t.Stop()
		fired = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-fired:
		return nil
	}
}

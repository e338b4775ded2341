package cloudflare

import (
	"sync"
	"time"
)

// breaker turns a shim that keeps failing into fast refusals: after
// `failures` consecutive failures it opens for `cooldown`, then lets one
// trial through; a success closes it, a failure opens it again. A trial
// that ends with neither verdict (the runtime rejected the job, the caller
// hung up, its emit failed) is released, so the next call is the trial.
type breaker struct {
	failures int
	cooldown time.Duration

	mu        sync.Mutex
	count     int
	openUntil time.Time
	trial     uint64 // the ticket of the trial in flight while half-open; 0: none
	tickets   uint64
}

// enter reports whether a call may go ahead. While half-open it claims the
// trial: ticket is then non-zero, and the caller must release it when done.
func (b *breaker) enter(now time.Time) (ticket uint64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.count < b.failures {
		return 0, true
	}
	if now.Before(b.openUntil) || b.trial != 0 {
		return 0, false
	}
	b.tickets++
	b.trial = b.tickets
	return b.trial, true
}

// allows reports whether a call would go ahead now, claiming nothing.
func (b *breaker) allows(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count < b.failures || !now.Before(b.openUntil) && b.trial == 0
}

// release gives back the trial ticket if no verdict was recorded for it.
func (b *breaker) release(ticket uint64) {
	if ticket == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.trial == ticket {
		b.trial = 0
	}
}

// record gives the verdict of the call holding ticket (0: not a trial)
// that reached the shim (ok) or failed to (!ok). A success closes the
// breaker. A failure ends only its own trial: a call that started before
// the breaker opened and fails during a trial leaves the trial in flight,
// so no second one is let in beside it.
func (b *breaker) record(ticket uint64, ok bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.count, b.trial = 0, 0
		return
	}
	if ticket != 0 && ticket == b.trial {
		b.trial = 0
	}
	b.count++
	if b.count >= b.failures {
		b.openUntil = now.Add(b.cooldown)
	}
}

// reset closes the breaker: the shim answered a signed check.
func (b *breaker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count, b.trial = 0, 0
}

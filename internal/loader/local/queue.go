package local

import (
	"container/list"
	"context"
	"fmt"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// The wait queue of the pool's processes. Thousands of executions may wait
// at once, so each waits on a channel of its own and is handed its place
// by whoever frees one (dispatchLocked), oldest first, instead of every
// waiter waking to race for each place that frees. Executions running
// again after losing their process wait in a queue of their own, served
// first: they were admitted once, and are never refused for load.
type waitQueue struct {
	fresh  list.List // of *waiter: executions waiting for their first run
	reruns list.List // of *waiter: runs again, served before the others
	// starts holds when the last executions got their place, oldest first
	// (a ring): how fast the queue drains, for Retry-After.
	starts [64]time.Time
	next   int
}

// waiter is one execution waiting for a place.
type waiter struct {
	a        *attempt
	reuseKey string
	got      chan *process // its place, or nil when the pool stops taking executions
	elem     *list.Element
	list     *list.List
}

// len is the executions waiting.
func (q *waitQueue) len() int { return q.fresh.Len() + q.reruns.Len() }

// started records that an execution got its place at now.
func (q *waitQueue) started(now time.Time) {
	q.starts[q.next%len(q.starts)] = now
	q.next++
}

// drainTime estimates how long the executions waiting now take to get
// their places, at the rate places were given lately; 0 if unknown.
func (q *waitQueue) drainTime(now time.Time) time.Duration {
	n := min(q.next, len(q.starts))
	if n < 2 {
		return 0
	}
	oldest := q.starts[(q.next-n)%len(q.starts)]
	span := now.Sub(oldest)
	if span <= 0 {
		return 0
	}
	return time.Duration(float64(span) / float64(n) * float64(q.len()+1))
}

// acquireQueued reserves a place for attempt a on one of the pool's
// processes, waiting in the queue if none admits it now: up to
// Config.QueueTimeout (a run again: as long as its own timeout, and it
// goes first). A full queue refuses at once, saying when room is likely.
func (l *Pool) acquireQueued(ctx context.Context, a *attempt, reuseKey string) (*process, error) {
	wait := l.cfg.QueueTimeout
	if a.rerun && a.job != nil {
		wait = max(wait, a.job.Timeout)
	}
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return nil, execution.ErrUnavailable
	}
	// Nobody waiting ahead: take a place now if one admits it. A run again
	// goes before everyone who has not run yet.
	if q := &l.queue; q.reruns.Len() == 0 && (a.rerun || q.fresh.Len() == 0) {
		if p := l.pickLocked(reuseKey); p != nil {
			l.takeLocked(p, a, reuseKey)
			l.mu.Unlock()
			return p, nil
		}
	}
	if !a.rerun && l.queue.fresh.Len() >= l.cfg.QueueSize {
		retry := l.queue.drainTime(time.Now())
		l.mu.Unlock()
		return nil, &execution.BusyError{Reason: ErrQueueFull.Error(), RetryAfter: retry, Err: ErrQueueFull}
	}
	w := &waiter{a: a, reuseKey: reuseKey, got: make(chan *process, 1), list: &l.queue.fresh}
	if a.rerun {
		w.list = &l.queue.reruns
	}
	w.elem = w.list.PushBack(w)
	l.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case p := <-w.got:
		if p == nil {
			return nil, execution.ErrUnavailable
		}
		return p, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		l.mu.Lock()
		retry := l.queue.drainTime(time.Now())
		l.mu.Unlock()
		err = &execution.BusyError{Reason: fmt.Sprintf("%v: no runtime had room within %v", execution.ErrUnavailable, wait), RetryAfter: retry}
	}
	l.mu.Lock()
	if w.elem != nil {
		w.list.Remove(w.elem)
		w.elem = nil
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	// It was given a place as it gave up: give the place back.
	if p := <-w.got; p != nil {
		l.release(p, a)
	}
	return nil, err
}

// dispatchLocked hands the places that admission allows now to the
// waiting executions, runs again first, each list oldest first. It stops
// at the first that finds no place: any process that admits one admits
// any (a warm isolate is only a preference).
func (l *Pool) dispatchLocked() {
	if l.closing {
		for _, q := range []*list.List{&l.queue.reruns, &l.queue.fresh} {
			for q.Len() > 0 {
				w := q.Remove(q.Front()).(*waiter)
				w.elem = nil
				w.got <- nil
			}
		}
		return
	}
	for _, q := range []*list.List{&l.queue.reruns, &l.queue.fresh} {
		for q.Len() > 0 {
			w := q.Front().Value.(*waiter)
			p := l.pickLocked(w.reuseKey)
			if p == nil {
				return
			}
			q.Remove(w.elem)
			w.elem = nil
			l.takeLocked(p, w.a, w.reuseKey)
			w.got <- p
		}
	}
}

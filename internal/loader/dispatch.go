package loader

import (
	"context"
	"fmt"
	"time"
)

// ErrQueueFull means every runtime process is busy and the wait queue is full.
var ErrQueueFull = fmt.Errorf("%w: every runtime is busy and the wait queue is full", ErrUnavailable)

// acquire reserves a place for attempt a on a healthy process, waiting in
// the bounded queue if every process is at its concurrency bound. An
// execution that may reuse an isolate goes to a process that already has it
// warm if one has room; otherwise to the least-loaded process. An isolated
// attempt (quarantined code) reserves a process, waits for it to empty, and
// runs on it alone.
func (l *Local) acquire(ctx context.Context, a *attempt, reuseKey string) (*process, error) {
	var timeout <-chan time.Time
	var claimed *process // for an isolated attempt: the process reserved for it
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closing {
			unreserve(claimed)
			return nil, ErrUnavailable
		}
		var p *process
		if a.isolated {
			claimed = l.claimLocked(claimed)
			if claimed != nil && claimed.inflight == 0 && claimed.responsive {
				p = claimed
			}
		} else {
			p = l.pickLocked(reuseKey)
		}
		if p != nil {
			l.takeLocked(p, a, reuseKey)
			return p, nil
		}
		if l.waiting >= l.cfg.QueueSize {
			unreserve(claimed)
			return nil, ErrQueueFull
		}
		if timeout == nil {
			t := time.NewTimer(l.cfg.QueueTimeout)
			defer t.Stop()
			timeout = t.C
		}
		l.waiting++
		changed := l.changed
		l.mu.Unlock()
		var err error
		select {
		case <-changed:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timeout:
			err = fmt.Errorf("%w: no runtime was free within %v", ErrUnavailable, l.cfg.QueueTimeout)
		}
		l.mu.Lock()
		l.waiting--
		if err != nil {
			unreserve(claimed)
			return nil, err
		}
	}
}

func unreserve(p *process) {
	if p != nil {
		p.reserved = false
	}
}

// claimLocked keeps the process reserved for an isolated attempt while it
// can serve, or reserves the least-loaded healthy one if another healthy
// process stays unreserved for everything else (a pool of one is shared:
// its executions wait their turn). Else it returns nil: wait.
func (l *Local) claimLocked(c *process) *process {
	if c != nil && (c.draining || !c.running()) {
		c.reserved = false
		c = nil
	}
	if c != nil {
		return c
	}
	free := 0
	var best *process
	for _, s := range l.slots {
		p := s.proc
		if p == nil || p.reserved || !p.responsive || p.draining || !p.running() {
			continue
		}
		free++
		if best == nil || p.inflight < best.inflight {
			best = p
		}
	}
	if best == nil || (free < 2 && len(l.slots) > 1) {
		return nil
	}
	best.reserved = true
	l.notifyLocked()
	return best
}

// takeLocked gives attempt a its place on p.
func (l *Local) takeLocked(p *process, a *attempt, reuseKey string) {
	a.started = time.Now()
	if a.job != nil && a.job.Timeout > 0 {
		a.deadline = a.started.Add(a.job.Timeout)
	}
	p.inflight++
	p.served++
	trackLocked(p, a)
	if l.cfg.RecycleAfter > 0 && p.served == l.cfg.RecycleAfter {
		l.requestRecycleLocked(p, reasonRecycleCount)
	}
	if reuseKey != "" && !p.reuseKeys[reuseKey] {
		if p.reuseKeys == nil {
			p.reuseKeys = map[string]bool{}
		}
		p.reuseKeys[reuseKey] = true
		if len(p.reuseKeys) >= l.cfg.ReuseKeys {
			l.requestRecycleLocked(p, reasonRecycleReuse)
		}
	}
}

// pickLocked returns the process for the next execution: one holding
// reuseKey warm if any has room, else the healthy process with the fewest
// executions that has room, or nil. Reserved processes take nothing.
func (l *Local) pickLocked(reuseKey string) *process {
	var best, warm *process
	n := len(l.slots)
	for i := range n {
		s := l.slots[(l.next+i)%n]
		p := s.proc
		if p == nil || !p.responsive || p.draining || p.reserved || p.inflight >= l.cfg.MaxConcurrency || !p.running() {
			continue
		}
		if reuseKey != "" && p.reuseKeys[reuseKey] && (warm == nil || p.inflight < warm.inflight) {
			warm = p
		}
		if best == nil || p.inflight < best.inflight {
			best = p
		}
	}
	l.next = (l.next + 1) % n
	if warm != nil {
		return warm
	}
	return best
}

func (l *Local) requestRecycleLocked(p *process, reason string) {
	for _, s := range l.slots {
		if s.proc == p {
			select {
			case s.recycle <- reason:
			default:
			}
		}
	}
}

// startSample records p's resident memory as a's starting point, so that
// growth before a started is not counted as a's.
func (l *Local) startSample(p *process, a *attempt) {
	rss := p.rss()
	if rss <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a.base = max(a.base, rss)
}

// release gives back the place attempt a held on p.
func (l *Local) release(p *process, a *attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p.inflight--
	delete(p.attempts, a)
	if a.isolated {
		p.reserved = false
	}
	l.notifyLocked()
}

// markOverdue records that attempt a on p passed its deadline while p sent
// nothing, and has the slot's watcher probe p at once. It reports whether a
// is the first such attempt: the one blamed if p is killed.
func (l *Local) markOverdue(p *process, a *attempt) bool {
	l.mu.Lock()
	a.overdue = true
	first := p.firstOverdue == nil || p.firstOverdue == a
	if first {
		p.firstOverdue = a
	}
	l.mu.Unlock()
	select {
	case p.suspect <- struct{}{}:
	default:
	}
	return first
}

func (l *Local) inflightOf(p *process) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return p.inflight
}

func (l *Local) servedOf(p *process) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return p.served
}

package local

import (
	"context"
	"fmt"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// ErrQueueFull means every runtime process is busy and the wait queue is full.
var ErrQueueFull = fmt.Errorf("%w: every runtime is busy and the wait queue is full", execution.ErrUnavailable)

// acquire reserves a place for attempt a on a healthy process. An
// execution goes to one of the pool's processes that admits it
// (admission.go), waiting in the queue if none does (queue.go); one that
// may reuse an isolate goes to a process that already has it warm if one
// admits it. An isolated attempt goes to its isolation process, where
// executions run one at a time, and waits in a queue of its own: offenders
// wait for each other, never for, or in front of, anyone else.
func (l *Pool) acquire(ctx context.Context, a *attempt, reuseKey string) (*process, error) {
	if a.isolation == isolateNone {
		return l.acquireQueued(ctx, a, reuseKey)
	}
	p, cleared, err := l.acquireIsolated(ctx, a, reuseKey)
	if cleared {
		// Another of its cohort was blamed: it runs on the pool.
		a.isolation = isolateNone
		return l.acquireQueued(ctx, a, reuseKey)
	}
	return p, err
}

// acquireIsolated waits for attempt a's isolation process, or until a's
// cohort is cleared (then it reports cleared).
func (l *Pool) acquireIsolated(ctx context.Context, a *attempt, reuseKey string) (p *process, cleared bool, err error) {
	// Its own queue, which holds at least the executions one loss sends
	// to run alone even with no queue configured: the isolation processes
	// start when first needed, so their first executions always wait.
	waiting, limit, wait := &l.isoWait[a.isolation-1], max(l.cfg.QueueSize, aloneAtMost), l.cfg.QueueTimeout
	if a.isolation == isolateRerun {
		// A run again waits its turn for as long as its own timeout: its
		// caller waits for its result anyway, and each of the others
		// before it ends within theirs.
		if a.job != nil {
			wait = max(wait, a.job.Timeout)
		}
		l.mu.Lock()
		l.rerunQueue[a] = struct{}{}
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			delete(l.rerunQueue, a)
			l.mu.Unlock()
		}()
	}
	var timeout, turnOver <-chan time.Time
	if a.cohort != nil {
		// One of a cohort runs alone only while its turn comes soon: the
		// cause among them is likeliest the first to take a turn, and
		// many benign executions waiting behind each other for one
		// process would fail for load. Past aloneWait it runs on the
		// pool (were it the cause, it costs a process again, and is then
		// among fewer).
		t := time.NewTimer(aloneWait)
		defer t.Stop()
		turnOver = t.C
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closing {
			return nil, false, execution.ErrUnavailable
		}
		if a.cohort != nil && a.cohort.cleared {
			return nil, true, nil
		}
		if p := l.isolatedLocked(a); p != nil {
			l.takeLocked(p, a, reuseKey)
			return p, false, nil
		}
		if *waiting >= limit {
			return nil, false, ErrQueueFull
		}
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		*waiting++
		changed := l.changed
		l.mu.Unlock()
		var err error
		select {
		case <-changed:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timeout:
			err = fmt.Errorf("%w: no runtime was free within %v", execution.ErrUnavailable, wait)
		case <-turnOver:
			l.mu.Lock()
			*waiting--
			return nil, true, nil
		}
		l.mu.Lock()
		*waiting--
		if err != nil {
			return nil, false, err
		}
	}
}

// aloneWait is the longest one of a cohort waits for its turn to run
// alone before it runs on the pool instead.
const aloneWait = 15 * time.Second

// clear clears cohort c, if any: one of it was blamed.
func (l *Pool) clear(c *cohort) {
	if c == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.cleared {
		c.cleared = true
		l.notifyLocked()
	}
}

// isolatedLocked returns the isolation process for attempt a if it can
// take it now (it is up, answering and empty), else nil. Runs again take
// their turns by turn: oldest first (by when the execution first started),
// as after an unexplained loss the likeliest cause is the last to have
// started and the others run before it; newest first after a memory death
// among executions still starting (the cause is likeliest the last, and
// once it is blamed the others are cleared). The first call starts the slot: a pool whose guests
// never cost a process never runs it.
func (l *Pool) isolatedLocked(a *attempt) *process {
	i := a.isolation
	s := l.isolation[i-1]
	if s == nil {
		s = &slot{index: len(l.slots) + int(i) - 1, isolation: i, recycle: make(chan string, 1)}
		l.isolation[i-1] = s
		l.wg.Go(func() { l.supervise(l.ctx, s) })
		return nil
	}
	p := s.proc
	if p == nil || !p.responsive || p.draining || p.inflight > 0 || !p.running() {
		return nil
	}
	if i == isolateRerun {
		for b := range l.rerunQueue {
			if b != a && b.turn < a.turn {
				return nil
			}
		}
	}
	return p
}

// takeLocked gives attempt a its place on p. It is starting until the
// shim answers (answered).
func (l *Pool) takeLocked(p *process, a *attempt, reuseKey string) {
	a.started = time.Now()
	if a.job != nil && a.job.Timeout > 0 {
		a.deadline = a.started.Add(a.job.Timeout)
	}
	a.starting = true
	p.starting++
	p.startsSinceSample++
	p.inflight++
	p.peakInflight = max(p.peakInflight, p.inflight)
	p.served++
	l.inflight++
	l.peakInflight = max(l.peakInflight, l.inflight)
	if a.isolation == isolateNone {
		l.queue.started(a.started)
	}
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
// reuseKey warm if any admits it, else the healthy process with the fewest
// executions that admits it, or nil. The isolation process is not among
// them. Fewest executions, not most memory free: a process that blocks
// (a guest spinning) then holds as few of the others as can be.
func (l *Pool) pickLocked(reuseKey string) *process {
	var best, warm *process
	n := len(l.slots)
	for i := range n {
		s := l.slots[(l.next+i)%n]
		p := s.proc
		if p == nil || !p.responsive || p.draining || !p.running() || !l.admitsLocked(p) {
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

func (l *Pool) requestRecycleLocked(p *process, reason string) {
	for _, s := range l.allSlotsLocked() {
		if s.proc == p {
			select {
			case s.recycle <- reason:
			default:
			}
		}
	}
}

// startSample records p's resident memory as a's starting point, so that
// growth before a started is not counted as a's, and as admission's
// latest reading of p.
func (l *Pool) startSample(p *process, a *attempt) {
	rss := p.rss()
	if rss <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a.base = max(a.base, rss)
	l.readLocked(p, rss)
}

// answered records that the shim answered attempt a on p: it is no longer
// starting, and p may start another.
func (l *Pool) answered(p *process, a *attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.starting {
		a.starting = false
		p.starting--
		l.dispatchLocked()
	}
}

// release gives back the place attempt a held on p.
func (l *Pool) release(p *process, a *attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.starting {
		a.starting = false
		p.starting--
	}
	p.inflight--
	l.inflight--
	delete(p.attempts, a)
	l.notifyLocked()
}

// markOverdue records that attempt a on p passed its deadline while p sent
// nothing, and has the slot's watcher probe p at once. It reports whether a
// is the first such attempt: the one blamed if p is killed.
func (l *Pool) markOverdue(p *process, a *attempt) bool {
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

func (l *Pool) servedOf(p *process) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return p.served
}

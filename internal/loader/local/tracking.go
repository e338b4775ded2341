package local

import (
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// attempt is one run of an execution on a process, as the pool accounts
// for it: when it started, the resident-memory growth seen while it ran,
// and whether it passed its deadline with the process silent.
type attempt struct {
	job      *execution.Job
	started  time.Time // when it got its place on a process
	deadline time.Time // when its timeout ends
	rerun    bool      // this is a run again of the execution
	runs     int       // which run of the execution this is: 1 for its first
	// firstStarted is when the execution's first run got its place: the
	// order runs again take turns in.
	firstStarted time.Time
	isolation    isolation // where it runs when it must run alone
	base         int64     // the process's resident memory at the last sample
	growth       int64     // the sum of positive changes sampled while it ran
	overdue      bool
}

// isolation says whether an execution must run alone, and where.
type isolation int

const (
	isolateNone        isolation = iota
	isolateQuarantined           // its code cost a process before: on the quarantine process
	isolateRerun                 // it runs again after an unexplained loss: on the rerun process
)

func (i isolation) String() string {
	return [...]string{"none", "quarantine", "rerun"}[i]
}

// Why a process stopped, as the executions it held learn it.
const (
	causeCrash        = "crash"        // it exited and nothing says why
	causeSpin         = "spin"         // killed: blocked past an execution's deadline
	causeUnresponsive = "unresponsive" // killed: unresponsive for runtime.unresponsive_kill
	causeMemory       = "memory"       // killed by its memory bound, or a V8 heap out of memory
	causeShutdown     = "shutdown"     // stopped with the pool
)

// verdict is why a process stopped and which execution caused it, if any.
// The others that were on it may run again.
type verdict struct {
	cause   string
	suspect *attempt
}

// memoryTie is how close two executions' growth must be to count as equal:
// the larger of 16 MiB and an eighth of the largest.
func memoryTie(largest int64) int64 {
	return max(16<<20, largest/8)
}

// sampleLocked adds the change from each attempt's last sample to rss to
// its growth when positive. Every execution in flight shares a process's
// growth; what tells them apart is when each started.
func sampleLocked(p *process, rss int64) {
	if rss <= 0 {
		return
	}
	for a := range p.attempts {
		if rss > a.base {
			a.growth += rss - a.base
		}
		a.base = rss
	}
}

// memorySuspectLocked names the execution a process's memory death is
// blamed on, if the evidence names one: the execution whose growth is
// within memoryTie of the largest, when it is the only one. Growth accrues
// to every execution in flight, so one that was already running when a
// neighbour began to allocate has as much as the allocator, and a guest
// that fills memory between two samples leaves every execution on the
// process with the same growth. Then no one is blamed (nothing is
// quarantined on a guess) and each runs again alone: the allocator, alone,
// is then the only one.
func memorySuspectLocked(p *process) *attempt {
	var largest int64
	for a := range p.attempts {
		largest = max(largest, a.growth)
	}
	var suspect *attempt
	for a := range p.attempts {
		if a.growth < largest-memoryTie(largest) {
			continue
		}
		if suspect != nil {
			return nil
		}
		suspect = a
	}
	return suspect
}

// track registers a new attempt on p (the pool's mutex held).
func trackLocked(p *process, a *attempt) {
	if p.attempts == nil {
		p.attempts = map[*attempt]struct{}{}
	}
	a.base = p.lastRSS
	p.attempts[a] = struct{}{}
}

// pastDeadlineLocked returns the execution on p whose deadline passed
// first, if any has: on a process that does not answer, the one blamed,
// even before its own goroutine has noticed its timeout.
func pastDeadlineLocked(p *process, now time.Time) *attempt {
	var first *attempt
	for a := range p.attempts {
		if !a.deadline.IsZero() && !a.deadline.After(now) && (first == nil || a.deadline.Before(first.deadline)) {
			first = a
		}
	}
	return first
}

// setVerdictLocked records why p stops, once.
func setVerdictLocked(p *process, v verdict) {
	if p.verdict == nil {
		p.verdict = &v
	}
}

// verdictOf says why the exited process p stopped: what the watcher
// recorded when it killed p, else a memory death (cgroup OOM kill or V8
// heap out of memory, blamed by memorySuspectLocked), else a crash.
func (l *Pool) verdictOf(p *process) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.verdict == nil {
		v := verdict{cause: causeCrash}
		if p.oom.Load() || p.memKilled {
			sampleLocked(p, p.peak)
			v = verdict{cause: causeMemory, suspect: memorySuspectLocked(p)}
		}
		p.verdict = &v
		if v.suspect != nil {
			l.quarantine.add(quarantineKey(v.suspect.job))
		}
	}
	return *p.verdict
}

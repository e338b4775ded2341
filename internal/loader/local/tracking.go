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
	servedAt     int       // the executions its process had taken before it
	overdue      bool
	// starting: the shim has not answered it yet (its isolate is being
	// made, or its first turn runs).
	starting bool
	// cohort is the executions sent to run again alone with it, if it is
	// one; turn orders their runs on the rerun process, smallest first.
	cohort *cohort
	turn   int64
}

// cohort is the executions one loss sent to run again alone, one at a
// time, to find the cause among them. Once one of them is blamed the rest
// are cleared, and run again on the pool's processes instead of waiting
// their turns. Guarded by the pool's mutex.
type cohort struct {
	cleared bool
	// newestFirst: they take their turns newest first, not oldest first
	// (a guest that blocked its process from its first turn is likeliest
	// the last of them to have started).
	newestFirst bool
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
// The others that were on it may run again: those in alone each alone, on
// the rerun process, where the cause among them is then named; the rest
// spread over the pool.
type verdict struct {
	cause   string
	suspect *attempt
	alone   map[*attempt]bool
	cohort  *cohort // of those in alone
}

// runsAlone says whether a, lost with its process for v, runs again alone.
func (v verdict) runsAlone(a *attempt) bool { return v.suspect == nil && v.alone[a] }

// aloneAtMost is how many executions a loss that names nobody may send to
// run again alone, one at a time. Among more, running each alone would
// take longer than their callers wait, and their number says load, not
// one attack: they run again spread over the pool (were the cause among
// them, it costs a process again, and gives up at MaxRuns).
const aloneAtMost = 16

// noSuspectLocked is the verdict on p for cause with nobody named: each
// of its executions runs again alone if they are few, else all spread.
func noSuspectLocked(p *process, cause string) verdict {
	v := verdict{cause: cause}
	if len(p.attempts) <= aloneAtMost {
		v.alone, v.cohort = map[*attempt]bool{}, &cohort{}
		for a := range p.attempts {
			v.alone[a] = true
		}
	}
	return v
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
// blamed on, if its growth names one: the execution whose growth, less
// what the executions started since it account for (perExec each), is
// within memoryTie of the largest, when it is the only one. Growth accrues
// to every execution in flight, so one that was already running when a
// neighbour began to allocate has as much as the allocator, and a guest
// that fills memory between two samples leaves every execution on the
// process with the same growth. Then growth names no one (nothing is
// quarantined on a guess), and memoryVerdictLocked looks further.
func memorySuspectLocked(p *process, perExec float64) *attempt {
	excess := func(a *attempt) int64 {
		return a.growth - int64(perExec*float64(p.served-a.servedAt))
	}
	var largest int64
	for a := range p.attempts {
		largest = max(largest, excess(a))
	}
	var suspect *attempt
	for a := range p.attempts {
		if excess(a) < largest-memoryTie(largest) {
			continue
		}
		if suspect != nil {
			return nil
		}
		suspect = a
	}
	return suspect
}

// memoryVerdictLocked is the verdict on p, dead of memory (or killed for
// it) at time at with peak bytes; heapOOM says an isolate ran out of V8
// heap, which is never load. Growth may name the execution. If it does
// not and p's event loop had fallen silent before the end, a guest was
// allocating without yielding (executions that wait never keep the loop
// from running): it is among the executions the shim had not answered
// when the silence began (blockedFromStart), since such a guest never lets
// the shim answer, nor anyone else's line out. If it is the only one and p
// grew fast (more than the executions it took account for), it is blamed;
// else those few run again alone, and the rest spread over the pool,
// whatever else p was taking at the time. Otherwise nothing tells the
// executions apart: a few each run again alone; many were load, not an
// attack, and run again spread over the pool, with admission tightened
// (tightenLocked).
func (l *Pool) memoryVerdictLocked(p *process, peak int64, heapOOM bool, at time.Time) verdict {
	sampleLocked(p, peak)
	if s := memorySuspectLocked(p, l.adm.perExec); s != nil {
		return verdict{cause: causeMemory, suspect: s}
	}
	fast := heapOOM || l.unexplainedLocked(p, peak, at) > bombGrowth
	if blocked := blockedFromStart(p, at, l.cfg.ProbeInterval); len(blocked) > 0 && len(blocked) <= aloneAtMost {
		if len(blocked) == 1 && fast {
			return verdict{cause: causeMemory, suspect: blocked[0]}
		}
		v := verdict{cause: causeMemory, alone: map[*attempt]bool{}, cohort: &cohort{newestFirst: true}}
		for _, a := range blocked {
			v.alone[a] = true
		}
		return v
	}
	v := noSuspectLocked(p, causeMemory)
	if v.alone == nil && !heapOOM {
		l.tightenLocked(p, peak, len(p.attempts), at)
		l.log.Warn().Int("pid", p.pid()).Int("executions", len(p.attempts)).Int64("peak_mb", peak>>20).
			Int64("per_execution_kb", int64(l.adm.perExec)>>10).Float64("share", l.adm.share).
			Msg("runtime died of memory with no execution to blame: taken for load; its executions run again over the pool, and admission tightens")
	}
	return v
}

// bombGrowth is how much p must grow in about a second beyond what its new
// executions account for to have grown fast.
const bombGrowth = 64 << 20

// blockedFromStart lists the executions that may have blocked p's event
// loop from their first turn until at: none unless the loop was silent
// (no line on any execution's stream) for longer than the executions the
// shim had answered would leave it (each sends a line at least every
// probe interval while it waits) and at least minSilence; then those the
// shim had not answered that started before the silence began, or if
// none did, all it had not answered.
func blockedFromStart(p *process, at time.Time, every time.Duration) []*attempt {
	heard := time.Unix(0, p.heard.Load())
	answered := p.inflight - p.starting
	if at.Sub(heard) <= max(minSilence, every/time.Duration(max(1, answered))) {
		return nil
	}
	var before, all []*attempt
	for a := range p.attempts {
		if !a.starting {
			continue
		}
		all = append(all, a)
		if !a.started.After(heard) {
			before = append(before, a)
		}
	}
	if len(before) > 0 {
		return before
	}
	return all
}

// minSilence is the shortest gap in a process's lines that counts as its
// event loop blocked: longer than making an isolate takes.
const minSilence = 40 * time.Millisecond

// track registers a new attempt on p (the pool's mutex held).
func trackLocked(p *process, a *attempt) {
	if p.attempts == nil {
		p.attempts = map[*attempt]struct{}{}
	}
	a.servedAt = p.served
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
		v := noSuspectLocked(p, causeCrash)
		if p.oom.Load() || p.memKilled {
			peak := p.peak
			if peak <= 0 {
				peak = max(p.lastRSS, l.bound.limit)
			}
			v = l.memoryVerdictLocked(p, peak, p.oom.Load(), p.exitedAt)
		}
		p.verdict = &v
		if v.suspect != nil {
			l.quarantine.add(quarantineKey(v.suspect.job))
		}
	}
	return *p.verdict
}

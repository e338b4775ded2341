package local

import (
	"context"
	"slices"
	"time"

	"github.com/rs/zerolog"
)

// watch probes p until it exits, must be replaced, or ctx ends, and says why.
// A process that does not answer its probe is taken out of dispatch; it is
// killed if it also holds an execution past its deadline (a guest
// spinning), if it stays unresponsive for UnresponsiveKill whatever it
// holds, or if the watchdog finds it past the memory limit.
func (l *Pool) watch(ctx context.Context, s *slot, p *process) string {
	tick := time.NewTicker(l.cfg.ProbeInterval)
	defer tick.Stop()
	var since time.Time // when p stopped answering; zero while it answers
	for {
		select {
		case <-p.exited:
			return reasonExited
		case <-ctx.Done():
			return reasonShutdown
		case reason := <-s.recycle:
			return reason
		case <-p.suspect:
		case <-tick.C:
		}
		rss, cause := l.check(ctx, p, &since)
		switch {
		case ctx.Err() != nil:
			return reasonShutdown
		case cause != "":
			l.killFor(p, cause, s.index)
			return reasonKilled
		case since.IsZero() && l.cfg.RecycleRSS > 0 && l.heldBeyond(p, rss) > l.cfg.RecycleRSS:
			return reasonRecycleMemory
		}
	}
}

// check probes p once, samples its resident memory into the accounting of
// the executions on it, and says whether p must be killed and why (the
// verdict is recorded first, so its executions learn who caused it).
func (l *Pool) check(ctx context.Context, p *process, since *time.Time) (rss int64, cause string) {
	start := time.Now()
	probeCtx, cancel := context.WithTimeout(ctx, l.cfg.ProbeInterval)
	ok := p.healthy(probeCtx, l.client)
	cancel()
	if ctx.Err() != nil {
		return 0, ""
	}
	rss = p.rss()
	// A probe may miss on a loaded machine; a line sent on any execution's
	// stream since the probe began shows the event loop runs all the same.
	alive := ok || p.heard.Load() >= start.UnixNano()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setResponsiveLocked(p, ok)
	if rss > 0 {
		sampleLocked(p, rss)
		l.observeLocked(p, rss, now)
		l.dispatchLocked() // the sample may admit more
	}
	switch {
	case alive:
		*since = time.Time{}
		p.okRSS = rss
	case since.IsZero():
		*since = start
	}
	if !alive && p.firstOverdue == nil {
		p.firstOverdue = pastDeadlineLocked(p, time.Now())
	}
	var v verdict
	switch {
	case l.bound.kind == boundWatchdog && rss > l.bound.limit:
		v = l.memoryVerdictLocked(p, rss, false, now)
	case !alive && p.firstOverdue != nil && now.Sub(*since) >= spinGrace(l.cfg.ProbeInterval):
		v = verdict{cause: causeSpin, suspect: p.firstOverdue}
	case !alive && time.Since(*since) >= l.cfg.UnresponsiveKill && p.okRSS > 0 && rss-p.okRSS >= thrashGrowth:
		// Busy while its memory climbs: a guest filling the heap, with V8
		// collecting in vain, before any limit is reached.
		v = l.memoryVerdictLocked(p, rss, false, now)
	case !alive && time.Since(*since) >= l.cfg.UnresponsiveKill:
		v = verdict{cause: causeUnresponsive, suspect: aloneLocked(p)}
		if v.suspect == nil {
			v = noSuspectLocked(p, causeUnresponsive)
		}
	default:
		return rss, ""
	}
	setVerdictLocked(p, v)
	if v.suspect != nil {
		l.quarantine.add(quarantineKey(v.suspect.job))
	}
	return rss, v.cause
}

// spinGrace is how long a process must have been silent, with an
// execution past its deadline, to be killed for a spinning guest: a
// process with hundreds of executions waiting on a machine short of CPU
// misses a probe now and then, and one of them may pass its deadline
// meanwhile without any guest spinning. A spinner keeps it silent.
func spinGrace(probe time.Duration) time.Duration { return max(time.Second, 4*probe) }

// heldBeyond is what p holds beyond its executions' estimated share.
func (l *Pool) heldBeyond(p *process, rss int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heldBeyondLocked(p, rss)
}

// thrashGrowth is how much a process's resident memory must have grown
// since it last answered for its unresponsiveness to count as a memory death.
const thrashGrowth = 64 << 20

// aloneLocked names the execution blamed for a process that stopped
// answering with no execution past its deadline: none if the process was
// shared (the cause may be an execution that has ended; the others run
// again, each on a process of its own), else the one execution on a process
// reserved for it (quarantined, or running again after such a loss).
func aloneLocked(p *process) *attempt {
	if len(p.attempts) != 1 {
		return nil
	}
	for a := range p.attempts {
		if a.isolation != isolateNone {
			return a
		}
	}
	return nil
}

// killFor kills p (SIGKILL: nothing else stops a spinning guest) for cause.
func (l *Pool) killFor(p *process, cause string, slot int) {
	msg := map[string]string{
		causeSpin:         "runtime blocked past an execution's deadline; killing it",
		causeUnresponsive: "runtime unresponsive for too long; killing it",
		causeMemory:       "runtime past its memory limit; killing it",
	}[cause]
	l.log.Warn().Int("slot", slot).Int("pid", p.pid()).Str("cause", cause).Msg(msg)
	p.killed.Store(true)
	p.kill()
}

// retire waits for a replaced process to finish its executions, then stops
// it. It watches the process meanwhile as watch does, so a process that
// blocks while draining is killed as a serving one would be.
func (l *Pool) retire(ctx context.Context, p *process, log zerolog.Logger) {
	tick := time.NewTicker(l.cfg.ProbeInterval)
	defer tick.Stop()
	timeout := time.NewTimer(l.cfg.DrainTimeout)
	defer timeout.Stop()
	var since time.Time
	for {
		l.mu.Lock()
		busy, changed := p.inflight > 0, l.changed
		l.mu.Unlock()
		if !busy || !p.running() || ctx.Err() != nil {
			break
		}
		select {
		case <-p.exited:
		case <-ctx.Done():
		case <-timeout.C:
			log.Warn().Int("pid", p.pid()).Dur("drain_timeout", l.cfg.DrainTimeout).Msg("recycled runtime still busy; stopping it")
			l.stopRetired(p, log)
			return
		case <-changed: // an execution may have ended
			continue
		case <-p.suspect:
		case <-tick.C:
		}
		if !p.running() || ctx.Err() != nil {
			break
		}
		if _, cause := l.check(ctx, p, &since); cause != "" {
			l.killFor(p, cause, -1)
		}
	}
	l.stopRetired(p, log)
}

// stopRetired stops a replaced process and forgets it.
func (l *Pool) stopRetired(p *process, log zerolog.Logger) {
	p.stop(stopGrace)
	l.mu.Lock()
	l.retired = slices.DeleteFunc(l.retired, func(r *process) bool { return r == p })
	l.mu.Unlock()
	log.Info().Int("pid", p.pid()).Msg("recycled runtime stopped")
}

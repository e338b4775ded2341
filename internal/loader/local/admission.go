package local

import (
	"time"
)

// Admission by memory. An execution that waits on I/O holds an isolate (a
// megabyte or two) and no CPU, so how many one process runs at once is
// bounded by its memory, not by a count: a process takes a new execution
// while what it is projected to hold with one more stays under a share of
// its hard bound (admitShare of Config.MemoryLimit). What a process holds
// is measured (its resident memory, sampled at every probe) and projected
// between samples from a per-execution estimate the pool learns from what
// its processes actually grow per execution in flight. Two counts still
// apply: Config.MaxConcurrency, a high ceiling, and Config.MaxStarting, the
// executions a process is starting at once (making the isolate and running
// its first turn is CPU-bound work: bounding it keeps every process
// answering its probes during a burst, and spreads CPU-bound executions
// over the pool instead of stacking them on one process).
//
// A process that dies of memory with no one execution to blame was
// overloaded (admission.go's estimate was too low for what its guests
// came to hold): the pool learns the size they reached and takes a smaller
// share of the bound for a while (tighten), and the executions run again
// spread over the pool.

// Estimates of what one execution holds in its process, in bytes.
const (
	// isolatePrior is assumed until the pool has learned better: a waiting
	// fresh isolate measured about 1.7 MiB here.
	isolatePrior = 2 << 20
	// isolateFloor bounds the estimate below, so that a sample taken as
	// executions start (before their isolates are made) cannot open the
	// door wide.
	isolateFloor = 512 << 10
	// learnFrom is how many executions a process must hold for its sample
	// to teach the estimate anything.
	learnFrom = 8
)

// Shares of the memory bound a process takes new executions up to.
const (
	admitShare = 0.8 // normally: a process nearing its bound stops taking executions before it dies
	admitFloor = 0.5 // the least, after overload deaths
	// tightenStep is taken off the share at each overload death and given
	// back at each relaxAfter without one.
	tightenStep = 0.1
	relaxAfter  = 30 * time.Second
)

// admission is the pool's state of admission by memory, guarded by its mutex.
type admission struct {
	perExec float64   // bytes one execution is estimated to hold
	share   float64   // of the memory bound a process takes executions up to
	changed time.Time // when share last moved
}

func newAdmission() admission {
	return admission{perExec: isolatePrior, share: admitShare}
}

// rssSample is one sample of a process's resident memory.
type rssSample struct {
	at     time.Time
	rss    int64
	served int // executions the process had taken by then
}

// historyLen is how many samples a process keeps: with the default probe
// interval, two seconds.
const historyLen = 8

// admitsLocked reports whether p may take one more execution now.
func (l *Pool) admitsLocked(p *process) bool {
	if p.inflight >= l.cfg.MaxConcurrency || (l.cfg.MaxStarting > 0 && p.starting >= l.cfg.MaxStarting) {
		return false
	}
	if l.bound.limit <= 0 || p.inflight == 0 {
		// A process that holds nothing always takes one: else a process
		// whose memory stays high after a burst (the runtime keeps what
		// it freed) would leave the queue waiting forever.
		return true
	}
	l.relaxLocked(time.Now())
	return l.projectedLocked(p)+int64(l.adm.perExec) <= int64(l.adm.share*float64(l.bound.limit))
}

// projectedLocked is what p is estimated to hold now: the larger of its
// last sample plus the executions that may not show in it yet (those
// started since, and those the shim has not answered: their isolates may
// not be made), and its idle size plus every execution in flight.
func (l *Pool) projectedLocked(p *process) int64 {
	e := l.adm.perExec
	return max(p.lastRSS+int64(e*float64(p.startsSinceSample+p.starting)), p.idleRSS+int64(e*float64(p.inflight)))
}

// readLocked records rss, just read, as p's resident memory now: every
// execution's start reads it (startSample), so admission between two
// probes follows what p holds, not only the estimate.
func (l *Pool) readLocked(p *process, rss int64) {
	if rss > 0 {
		p.lastRSS = rss
		p.startsSinceSample = 0
	}
}

// observeLocked takes a probe's sample of p's resident memory into
// admission: it is p's idle size when nothing is in flight, else it
// teaches the estimate what each execution in flight holds. The estimate
// moves half the way up to a sample's, an eighth of the way down: one too
// low lets a process take more than it can hold before the next sample
// shows it, one too high only keeps executions queued a while longer (a
// sample taken as a burst ends, isolates released and their memory not
// yet given back, reads high).
func (l *Pool) observeLocked(p *process, rss int64, now time.Time) {
	if rss <= 0 {
		return
	}
	l.readLocked(p, rss)
	p.history[p.historyNext%historyLen] = rssSample{at: now, rss: rss, served: p.served}
	p.historyNext++
	if p.inflight == 0 {
		p.idleRSS, p.peakInflight = rss, 0
		return
	}
	if p.inflight < learnFrom || p.starting > p.inflight/2 {
		return
	}
	// Over the most it held since it was last idle, not over what it
	// holds now: the runtime keeps memory its ended executions freed, so
	// a sample taken as a burst winds down would read many times an
	// isolate's size, and admission would stall on the estimate.
	est := max(float64(rss-p.idleRSS)/float64(max(p.inflight, p.peakInflight)), isolateFloor)
	if est > l.adm.perExec {
		l.adm.perExec += (est - l.adm.perExec) / 2
	} else {
		l.adm.perExec += (est - l.adm.perExec) / 8
	}
}

// tightenLocked is admission's answer to a process that died of memory
// holding n executions, peak bytes at the end, with nobody to blame: the
// estimate rises to what each came to hold, and the share taken of the
// bound falls by a step.
func (l *Pool) tightenLocked(p *process, peak int64, n int, now time.Time) {
	if n > 0 && peak > p.idleRSS {
		l.adm.perExec = max(l.adm.perExec, float64(peak-p.idleRSS)/float64(n))
	}
	l.adm.share = max(admitFloor, l.adm.share-tightenStep)
	l.adm.changed = now
}

// relaxLocked gives back a step of the share for every relaxAfter without
// an overload death.
func (l *Pool) relaxLocked(now time.Time) {
	if l.adm.share >= admitShare || now.Sub(l.adm.changed) < relaxAfter {
		return
	}
	l.adm.share = min(admitShare, l.adm.share+tightenStep)
	l.adm.changed = now
}

// heldBeyondLocked is what p holds beyond its executions' estimated share:
// what recycling by memory (Config.RecycleRSS) measures, so that a process
// full of waiting executions is not taken for one that leaks.
func (l *Pool) heldBeyondLocked(p *process, rss int64) int64 {
	return rss - int64(l.adm.perExec*float64(p.inflight))
}

// unexplainedLocked is how much p grew over about its last second up to
// peak beyond what the executions it took meanwhile account for: large
// when something allocated fast (a bomb), small when p filled up by
// taking executions (load).
func (l *Pool) unexplainedLocked(p *process, peak int64, now time.Time) int64 {
	base := rssSample{rss: p.okRSS} // no sample yet: since it started
	for i := range min(p.historyNext, historyLen) {
		s := p.history[(p.historyNext-1-i)%historyLen]
		if i > 0 && now.Sub(s.at) > time.Second {
			break
		}
		base = s
	}
	return peak - base.rss - int64(l.adm.perExec*float64(p.served-base.served))
}

// Admitted is what admission allows now: the estimate of what one
// execution holds (bytes) and the share of each process's memory bound
// taken, for tests and the pool's metrics.
func (l *Pool) Admitted() (perExecution int64, share float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.adm.perExec), l.adm.share
}

// InFlight is how many executions the pool runs now, and the most it has
// run at once.
func (l *Pool) InFlight() (now, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight, l.peakInflight
}

package local

import (
	"context"
	"errors"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// Execute runs job on the least-loaded healthy runtime process. Code that
// blocked or blew up a process before (quarantined) runs on a process of
// its own. When the process is lost because of another execution on it,
// job runs again on a healthy process if that is safe: the guest has not
// touched the network, and the logs it sent, if any, are voided by a
// restart event first. It runs at most MaxRuns times: a benign execution
// can be unlucky twice while hostile code is still new (a spinner's
// process, then a bomb's). After a loss that named no execution to blame
// it runs again alone, on the rerun process, if it was one of a few (see
// noSuspectLocked); else it runs again spread over the pool, ahead of the
// executions waiting for their first run. The start event is sent once.
func (l *Pool) Execute(ctx context.Context, job *execution.Job, emit func(execution.Event) error) error {
	l.active.add(job.Secrets)
	defer l.active.remove(job.Secrets)
	st := &runState{emit: emit, timeout: job.Timeout}
	first := &attempt{job: job, runs: 1}
	if l.quarantine.holds(job) {
		first.isolation = isolateQuarantined
	}
	for a := first; ; {
		again, err := l.runOnce(ctx, a.job, st, a)
		if !again {
			return err
		}
		l.reruns.Add(1)
		if st.logs > 0 {
			if err := emit(execution.Event{Type: execution.EventRestart, Reason: string(execution.CodeRuntimeCrashed)}); err != nil {
				return err
			}
			st.logs = 0
		}
		// The run again has what is left of the execution's timeout: its
		// caller asked for a result within timeoutMs, whoever cost it the
		// earlier runs.
		left := job.Timeout - time.Since(first.started)
		if left <= 0 {
			return st.send(execution.Failure(execution.CodeTimeout, "execution exceeded its timeout of %v (its runtime was lost to another execution and there was no time left to run it again)", job.Timeout))
		}
		rest := *job
		rest.Timeout = left
		next := &attempt{job: &rest, rerun: true, runs: a.runs + 1, isolation: first.isolation, firstStarted: first.started}
		if st.alone != nil {
			next.isolation, next.cohort, next.turn = isolateRerun, st.alone, first.started.UnixNano()
			if st.alone.newestFirst {
				next.turn = -a.started.UnixNano()
			}
		}
		a = next
	}
}

// MaxRuns bounds how many times one execution runs when its runtime
// process is lost to others.
const MaxRuns = 3

// runState follows what an execution has sent its caller across its runs.
type runState struct {
	emit    func(execution.Event) error
	timeout time.Duration // the execution's timeout, as its caller set it
	started bool          // start was sent
	logs    int           // logs sent since the last (re)start
	// alone, if set, is the cohort with which the run again goes on the
	// rerun process, because nothing named an execution to blame for the
	// lost process and it was one of a few (if it was the cause, it is
	// then alone when it does it again, and blamed).
	alone *cohort
}

// send passes ev on, but start only once.
func (s *runState) send(ev execution.Event) error {
	switch ev.Type {
	case execution.EventStart:
		if s.started {
			return nil
		}
		s.started = true
	case execution.EventLog:
		s.logs++
	}
	return s.emit(ev)
}

// runOnce runs attempt a of job on a process. It reports whether the job
// should run again: its process was lost because of another execution and
// a run again is safe.
func (l *Pool) runOnce(ctx context.Context, job *execution.Job, st *runState, a *attempt) (bool, error) {
	p, err := l.acquire(ctx, a, job.ReuseKey)
	if err != nil {
		if a.rerun && st.started && ctx.Err() == nil {
			return false, st.send(execution.Failure(execution.CodeRuntimeCrashed, "the runtime was lost and none was free to run the execution again (%v); safe to retry", err))
		}
		return false, err
	}
	defer l.release(p, a)
	l.startSample(p, a)
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, job.Timeout, shim.ErrTimeout)
	defer cancel()
	call := &shim.Call{Client: l.client, Base: p.url, Secret: l.secret, Channels: p.channels, MaxEvent: l.cfg.MaxEventBytes, Heard: &p.heard,
		Answered: func() { l.answered(p, a) }}
	err = call.Run(ctx, job, st.send)
	var lost *shim.LostError
	if !errors.As(err, &lost) {
		return false, err
	}
	return l.lost(parent, ctx, p, a, call, job, st, lost.Err)
}

// lost decides what an attempt whose connection to the runtime failed
// before its result ends with, or whether it runs again.
func (l *Pool) lost(parent, ctx context.Context, p *process, a *attempt, call *shim.Call, job *execution.Job, st *runState, err error) (bool, error) {
	switch {
	case errors.Is(context.Cause(ctx), shim.ErrTimeout):
		// The shim sends a line at least every 100 ms while its process
		// runs; silence at the deadline means the process is blocked. The
		// first execution past its deadline on a blocked process is blamed;
		// a later one waits to learn whether the process is killed for it.
		if call.SilentFor() <= l.cfg.ProbeInterval || l.markOverdue(p, a) ||
			!p.hasExited(l.cfg.UnresponsiveKill+2*l.cfg.ProbeInterval) {
			return false, st.send(execution.Failure(execution.CodeTimeout, "execution exceeded its timeout of %v", st.timeout))
		}
	case parent.Err() != nil:
		return false, parent.Err()
	case !p.hasExited(time.Second):
		l.log.Warn().Str("id", job.ID).Err(err).Msg("lost connection to the runtime")
		return false, st.send(execution.Failure(execution.CodeRuntimeCrashed, "lost connection to the runtime; safe to retry"))
	}
	v := l.verdictOf(p)
	if v.suspect == a {
		l.clear(a.cohort)
		l.log.Warn().Str("id", job.ID).Int("pid", p.pid()).Str("cause", v.cause).Msg("an execution cost its runtime process")
		return false, st.send(l.suspectFailure(v, st.timeout))
	}
	if runsAgain(a, v, job, call.Net()) {
		st.alone = nil
		if v.runsAlone(a) {
			st.alone = v.cohort
		}
		l.log.Info().Str("id", job.ID).Int("pid", p.pid()).Str("cause", v.cause).Msg("runtime lost because of another execution; running it again")
		return true, nil
	}
	l.log.Warn().Str("id", job.ID).Int("pid", p.pid()).Str("cause", v.cause).Msg("runtime exited during an execution")
	return false, st.send(l.collateralFailure(v, p, call.Net()))
}

// runsAgain says whether attempt a, which lost its process for verdict v,
// runs again: not the suspect, not past MaxRuns, not when the pool is
// stopping, and as its retry policy allows: never; always; or (auto) only
// if its guest cannot have had a side effect, no outbound request or
// capability call attempted yet (net: the shim announces the first before
// it goes out). After a loss that named nobody it runs again alone
// (Execute), where, were it the cause, it would be named.
func runsAgain(a *attempt, v verdict, job *execution.Job, net bool) bool {
	if v.suspect == a || max(a.runs, 1) >= MaxRuns || v.cause == causeShutdown {
		return false
	}
	switch job.Retry {
	case execution.RetryNever:
		return false
	case execution.RetryAlways:
		return true
	}
	return !net
}

// suspectFailure is the result of the execution blamed for its process's end.
func (l *Pool) suspectFailure(v verdict, timeout time.Duration) execution.Event {
	switch v.cause {
	case causeMemory:
		return execution.Failure(execution.CodeMemoryLimit, "the execution ran out of memory (the runtime's limit is %d MiB; the V8 heap's %d MiB); its runtime process was replaced", l.cfg.MemoryLimit>>20, l.cfg.V8HeapMB)
	case causeUnresponsive:
		return execution.Failure(execution.CodeCPULimit, "the execution kept its runtime busy without yielding for longer than %v; its runtime process was replaced", l.cfg.UnresponsiveKill)
	}
	return execution.Failure(execution.CodeTimeout, "execution exceeded its timeout of %v", timeout)
}

// collateralFailure is the result of an execution that lost its process to
// something else and cannot run again. net says its guest had made an
// outbound request or capability call: then a retry is not safe blindly.
func (l *Pool) collateralFailure(v verdict, p *process, net bool) execution.Event {
	advice := "; safe to retry"
	if net {
		advice = "; it had made outbound requests or capability calls (see outbound), so it was not run again: retry only if they are safe to repeat"
	}
	switch v.cause {
	case causeSpin:
		return execution.Failure(execution.CodeRuntimeCrashed, "the runtime was replaced because another execution on it blocked past its deadline%s", advice)
	case causeUnresponsive:
		return execution.Failure(execution.CodeRuntimeCrashed, "the runtime was unresponsive for longer than %v and was replaced%s", l.cfg.UnresponsiveKill, advice)
	case causeMemory:
		return execution.Failure(execution.CodeRuntimeCrashed, "the runtime ran out of memory because of another execution on it%s", advice)
	case causeShutdown:
		return execution.Failure(execution.CodeRuntimeCrashed, "the runtime was stopped with the gateway%s", advice)
	}
	return execution.Failure(execution.CodeRuntimeCrashed, "%v (%v)%s", errProcessGone, p.err, advice)
}

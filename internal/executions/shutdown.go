package executions

import (
	"context"
	"errors"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// A gateway stops in three steps, so that a deploy loses nothing:
//
//  1. Shutdown: it takes no new work. New executions are refused
//     (runtime_unavailable, Retry-After), Ready says so (for the load
//     balancer), and its workers claim no more queued executions; what
//     runs goes on.
//  2. Handoff, when the caller's grace is over: the queued executions
//     still running that may run again (mayRunAgain) are stopped and go
//     back to the queue, for another gateway or the next start, with a
//     restart event, as after a crash; those that may not (they made an
//     outbound request or capability call, or their retry is never) finish
//     here first, within their own timeout. Then the runtime is stopped:
//     synchronous executions still running end as when a runtime is lost
//     (runtime_crashed, which says whether a retry is safe).
//  3. Close: callbacks, lease, writes (service.go).

// shutdownRetryAfter is the Retry-After of an execution refused because
// the gateway is stopping, in seconds: another gateway, or this one
// restarted, takes it.
const shutdownRetryAfter = 1

// handoffSlack is how long past its timeout an execution that must finish
// here is waited for: the runtime's own deadline has some lag.
const handoffSlack = 5 * time.Second

// errHandoff stops a queued execution that goes back to the queue.
var errHandoff = errors.New("the gateway is stopping: back to the queue")

// Shutdown begins the gateway's stop: new executions are refused, Ready
// fails, no queued execution is claimed; the ones running go on. Handoff
// and Close follow.
func (s *Service) Shutdown() {
	if s.stopping.CompareAndSwap(0, time.Now().UnixNano()) {
		s.Drain()
	}
}

// refuseStopping refuses an execution once Shutdown has been called.
func (s *Service) refuseStopping() error {
	if s.stopping.Load() == 0 {
		return nil
	}
	return execution.NewProblem(execution.ProblemRuntimeUnavailable,
		"the gateway is shutting down; retry after Retry-After seconds (another gateway takes it)").WithRetryAfter(shutdownRetryAfter)
}

// Idle reports whether no execution runs here, synchronous or queued.
func (s *Service) Idle() bool {
	return s.limiter.running() == 0 && !s.running.busy()
}

// Handoff ends what still runs here once the grace is over (Shutdown
// first): it waits for the queued executions that may not run again
// (until their deadline, MaxTimeout after Shutdown, or ctx's end), then
// stops the runtime; the queued executions stopped go back to the queue,
// and it waits (handoffSlack at most) until they have left. Then event
// streams end (their clients resume them elsewhere), so that they do not
// hold the HTTP server's shutdown.
func (s *Service) Handoff(ctx context.Context) {
	s.Shutdown()
	s.backend.Drain() // the runtime starts nothing more
	deadline := time.Unix(0, s.stopping.Load()).Add(s.opts.Limits.MaxTimeout + handoffSlack)
	pinned, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if !waitFor(pinned, func() bool { return !s.running.pinned() }) {
		s.log.Warn().Msg("shutdown: executions that made outbound or capability calls were still running at their deadline; they are stopped")
	}
	s.handingOff.Store(true)
	if err := s.backend.Close(); err != nil {
		s.log.Error().Err(err).Msg("shutdown: stopping the runtime failed")
	}
	s.running.cancelAll(errHandoff) // those that waited for a runtime
	stopped, cancel := context.WithTimeout(ctx, handoffSlack)
	defer cancel()
	waitFor(stopped, func() bool { return !s.running.busy() })
	s.leaveOnce.Do(func() { close(s.handedOff) })
}

// errLeaving ends an event stream when the gateway has handed over what
// it ran: its client resumes it on another gateway (Last-Event-ID).
var errLeaving = errors.New("the gateway is stopping: resume the stream on another gateway")

// waitFor polls done until it is true (true) or ctx ends (false).
func waitFor(ctx context.Context, done func() bool) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return done()
		case <-tick.C:
		}
	}
	return true
}

// handBack passes on the events of queued execution id's run to out, as it
// notes them in the registry; once Handoff has stopped the runtime, a
// result saying the runtime was lost is not passed on if the execution
// may run again: it goes back to the queue instead (errHandoff; *back is
// set).
func (s *Service) handBack(id string, out func(execution.Event) error, back *bool) func(execution.Event) error {
	return func(ev execution.Event) error {
		if ev.Type == execution.EventResult && s.handingOff.Load() && ev.Result != nil && ev.Result.Error != nil &&
			ev.Result.Error.Code == execution.CodeRuntimeCrashed && s.running.mayRunAgain(id) {
			*back = true
			return errHandoff
		}
		s.running.saw(id, ev.Type)
		return out(ev)
	}
}

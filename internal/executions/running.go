package executions

import (
	"context"
	"sync"

	"github.com/dynamic-workers/gateway/execution"
)

// running is the registry of the queued executions this gateway runs: to
// stop one (a cancel request, a lost lease, shutdown), to count a key's
// against its concurrency quota, and to know at shutdown which may go back
// to the queue.
type running struct {
	mu      sync.Mutex
	runs    map[string]*run // by execution id
	callers map[string]int  // how many, by key
}

// run is one queued execution running here: how to stop it, and what its
// run has done so far.
type run struct {
	cancel  context.CancelCauseFunc
	retry   string // its retry policy
	started bool   // the runtime has started it
	called  bool   // it announced an outbound request or capability call
}

// mayRunAgain reports whether r may be stopped and run again from the
// start elsewhere, as a lost run on a live gateway is: with retry always;
// with auto while it has made no outbound request or capability call; with
// never only if the runtime has not started it.
func (r *run) mayRunAgain() bool {
	switch r.retry {
	case execution.RetryAlways:
		return true
	case execution.RetryNever:
		return !r.started
	}
	return !r.called
}

func newRunning() *running {
	return &running{runs: map[string]*run{}, callers: map[string]int{}}
}

// add registers execution id of caller, with its retry policy and cancel
// function.
func (r *running) add(id, caller, retry string, cancel context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[id] = &run{cancel: cancel, retry: retry}
	r.callers[caller]++
}

func (r *running) remove(id, caller string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.runs, id)
	if r.callers[caller]--; r.callers[caller] <= 0 {
		delete(r.callers, caller)
	}
}

// saw notes an event of execution id's run.
func (r *running) saw(id, typ string) {
	if typ != execution.EventStart && typ != execution.EventOutbound {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.runs[id]; e != nil {
		e.started = true
		e.called = e.called || typ == execution.EventOutbound
	}
}

// mayRunAgain reports whether execution id may go back to the queue now
// (run.mayRunAgain); false if it does not run here.
func (r *running) mayRunAgain(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.runs[id]
	return e != nil && e.mayRunAgain()
}

// pinned reports whether any execution running here may not run again:
// it must finish here.
func (r *running) pinned() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.runs {
		if !e.mayRunAgain() {
			return true
		}
	}
	return false
}

// of counts caller's executions running here.
func (r *running) of(caller string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.callers[caller]
}

// busy reports whether any runs here.
func (r *running) busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs) > 0
}

// cancel stops execution id if it runs here.
func (r *running) cancel(id string, cause error) {
	r.mu.Lock()
	e := r.runs[id]
	r.mu.Unlock()
	if e != nil {
		e.cancel(cause)
	}
}

func (r *running) cancelAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.runs {
		e.cancel(cause)
	}
}

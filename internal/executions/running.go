package executions

import (
	"context"
	"sync"
)

// running is the registry of the queued executions this gateway runs: to
// stop one (a cancel request, a lost lease, shutdown) and to count a key's
// against its concurrency quota.
type running struct {
	mu      sync.Mutex
	cancels map[string]context.CancelCauseFunc // by execution id
	callers map[string]int                     // how many, by key
}

func newRunning() *running {
	return &running{cancels: map[string]context.CancelCauseFunc{}, callers: map[string]int{}}
}

// add registers execution id of caller and its cancel function.
func (r *running) add(id, caller string, cancel context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancels[id] = cancel
	r.callers[caller]++
}

func (r *running) remove(id, caller string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cancels, id)
	if r.callers[caller]--; r.callers[caller] <= 0 {
		delete(r.callers, caller)
	}
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
	return len(r.cancels) > 0
}

// cancel stops execution id if it runs here.
func (r *running) cancel(id string, cause error) {
	r.mu.Lock()
	cancel := r.cancels[id]
	r.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

func (r *running) cancelAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cancel := range r.cancels {
		cancel(cause)
	}
}

package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// holdingBackend runs executions on a real backend. The one after holdNext
// is held at its first event, keeping its place on the backend (a runtime
// slot, an API key's concurrency), until it is released: tests order
// requests with it instead of sleeping.
type holdingBackend struct {
	execution.Backend
	mu   sync.Mutex
	next *held
}

type held struct {
	reached, released chan struct{}
	once              sync.Once
}

// holdNext arms the backend: the next execution is held. It returns a
// channel closed once that execution has sent its first event (or ended
// without one), and the
// function releasing it (safe to call more than once; the test's cleanup
// calls it too).
func (b *holdingBackend) holdNext(t *testing.T) (<-chan struct{}, func()) {
	h := &held{reached: make(chan struct{}), released: make(chan struct{})}
	release := func() { h.once.Do(func() { close(h.released) }) }
	t.Cleanup(release)
	b.mu.Lock()
	b.next = h
	b.mu.Unlock()
	return h.reached, release
}

func (b *holdingBackend) Execute(ctx context.Context, job *execution.Job, emit func(execution.Event) error) error {
	b.mu.Lock()
	h := b.next
	b.next = nil
	b.mu.Unlock()
	if h == nil {
		return b.Backend.Execute(ctx, job, emit)
	}
	first := true
	err := b.Backend.Execute(ctx, job, func(ev execution.Event) error {
		if first {
			first = false
			close(h.reached)
			<-h.released
		}
		return emit(ev)
	})
	if first { // it ended without an event: do not leave the test waiting
		close(h.reached)
	}
	return err
}

// served counts the requests a handler has finished, so that a test can
// wait until the middleware around an execution has let go of it.
type served struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func newServed() *served { return &served{changed: make(chan struct{})} }

func (s *served) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		s.mu.Lock()
		s.n++
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	})
}

// wait waits until n requests have finished, failing the test after a
// minute (a bound for a hung handler, not a figure).
func (s *served) wait(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		s.mu.Lock()
		done, changed := s.n >= n, s.changed
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d requests finished within a minute, want %d", s.n, n)
		}
	}
}

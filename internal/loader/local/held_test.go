package local_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// Running executions in the background and ordering a test by their events
// (instead of by sleeping).

// outcome is how an execution run in the background ended.
type outcome struct {
	events []execution.Event
	err    error
}

// hold runs j on b in the background. It returns a channel closed once the
// first log event arrives, a release function, and a channel delivering the
// outcome. With block, the log event is held until release is called: the
// execution keeps its place on its process meanwhile, whatever its guest
// does. release may be called more than once.
func hold(t *testing.T, b execution.Backend, j *execution.Job, block bool) (<-chan struct{}, func(), <-chan outcome) {
	t.Helper()
	logged, released := make(chan struct{}), make(chan struct{})
	var logOnce, releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(released) }) }
	t.Cleanup(release)
	done := make(chan outcome, 1)
	go func() {
		var out outcome
		out.err = b.Execute(context.Background(), j, func(ev execution.Event) error {
			out.events = append(out.events, ev)
			if ev.Type == execution.EventLog {
				logOnce.Do(func() { close(logged) })
				if block {
					<-released
				}
			}
			return nil
		})
		logOnce.Do(func() { close(logged) })
		done <- out
	}()
	return logged, release, done
}

// runEmit runs j on b, telling onEvent of each event, and returns them.
func runEmit(t *testing.T, b execution.Backend, j *execution.Job, onEvent func(execution.Event)) ([]execution.Event, error) {
	var events []execution.Event
	err := b.Execute(t.Context(), j, func(ev execution.Event) error {
		events = append(events, ev)
		onEvent(ev)
		return nil
	})
	return events, err
}

// lastResult returns the result events end with, or a result saying there
// is none; unlike loadertest.LastResult it may be called from any goroutine.
func lastResult(events []execution.Event) *execution.Result {
	if len(events) == 0 || events[len(events)-1].Type != execution.EventResult {
		return &execution.Result{Error: &execution.Error{Code: "no_result", Message: fmt.Sprint(events)}}
	}
	return events[len(events)-1].Result
}

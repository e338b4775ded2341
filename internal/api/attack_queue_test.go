package api_test

import (
	"fmt"
	"testing"
	"time"
)

// TestAttackQueueFairness: queued executions were claimed strictly in the
// order they came, so a key that queued many long executions held every
// worker, and another key's execution waited behind its whole backlog.
// When a worker is free it must take the execution of the key with the
// fewest running, whatever the backlog: here bob fills both workers and
// queues more, alice queues one, and when one of bob's ends, alice's runs
// next. Backlogs of 1, 3 and 8 executions behind the running ones.
func TestAttackQueueFairness(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	for _, backlog := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("backlog %d", backlog), func(t *testing.T) {
			hold := func(name string) map[string]any {
				return map[string]any{"code": guest(`await env.reader.fetch("hold/` + name + `");`), "capabilities": []string{"reader"}}
			}
			var bobs []string
			for i := range attackWorkers + backlog {
				name := fmt.Sprintf("b%d-%d", backlog, i)
				bobs = append(bobs, name)
				f.submit(t, f.bob, hold(name))
			}
			for range attackWorkers {
				f.wantArrival(t, bobs[:attackWorkers]...)
			}
			alice := fmt.Sprintf("a%d", backlog)
			f.submit(t, f.alice, hold(alice))
			f.service.release(bobs[0])
			f.wantArrival(t, alice)
			for _, n := range append([]string{alice}, bobs...) {
				f.service.release(n)
			}
			for range backlog - 1 { // bob's backlog runs, minus the one running with alice's
				f.wantArrival(t, bobs[attackWorkers:]...)
			}
			f.wantArrival(t, bobs[attackWorkers:]...)
		})
	}
}

// wantArrival waits for the next held call and fails unless it is one of names.
func (f *attackFixture) wantArrival(t *testing.T, names ...string) {
	t.Helper()
	select {
	case got := <-f.service.arrived:
		for _, n := range names {
			if got == n {
				return
			}
		}
		t.Fatalf("next to run: %s, want one of %v", got, names)
	case <-time.After(60 * time.Second):
		t.Fatalf("nothing ran within 60 s, want one of %v", names)
	}
}

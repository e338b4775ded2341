package local_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// crowd runs n executions awaiting wait in the background; done delivers
// how many ended other than in success, by outcome, once all have ended.
func crowd(t *testing.T, l *local.Pool, name string, n int, wait time.Duration) (done <-chan map[string]int) {
	t.Helper()
	out := make(chan map[string]int, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := map[string]int{}
	for i := range n {
		wg.Go(func() {
			res := loadertest.Result(t, l, loadertest.Job(fmt.Sprint(name, i), waiter(wait), 2*time.Minute))
			if !res.Success {
				mu.Lock()
				failed[string(res.Error.Code)]++
				mu.Unlock()
			}
		})
	}
	go func() {
		wg.Wait()
		out <- failed
	}()
	return out
}

// waitInFlight waits until l runs at least n executions at once.
func waitInFlight(t *testing.T, l *local.Pool, n int) {
	t.Helper()
	// How many run signals nothing: poll, with a deadline wide enough for
	// a loaded machine to start them.
	if !testwait.Until(3*time.Minute, func() bool { now, _ := l.InFlight(); return now >= n }) {
		now, _ := l.InFlight()
		t.Fatalf("InFlight() = %d after 3 minutes, want %d", now, n)
	}
}

// TestBombAmongThousands: an ArrayBuffer bomb sent among hundreds of
// executions waiting on two processes (as many as their memory admits,
// the rest queued) is blamed when its process dies, ends memory_limit and
// is quarantined; every waiting execution succeeds, those on its process
// after running again. Sent again among others, it runs alone: nobody
// runs again. The waiting ones wait long (15 s) so that, however slowly a
// loaded machine starts them, many wait at once when the bomb comes. Not
// parallel: hundreds of isolates starting at once would starve the
// package's timing-sensitive tests of CPU.
func TestBombAmongThousands(t *testing.T) {
	logs := &loadertest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			for line := range strings.SplitSeq(logs.String(), "\n") {
				if strings.Contains(line, `"warn"`) || strings.Contains(line, `"error"`) {
					t.Log(line)
				}
			}
		}
	})
	l := loadertest.StartLocal(t, zerolog.New(logs), loadertest.Processes(2), func(c *local.Config) {
		c.MemoryLimit = 1 << 30
		c.QueueSize, c.QueueTimeout = 5000, 5*time.Minute
	})
	defer l.Close()
	benign := crowd(t, l, "benign", 300, 15*time.Second)
	waitInFlight(t, l, 100)
	res := loadertest.Result(t, l, loadertest.Job("bomb", bomb, time.Minute))
	if res.Error == nil || res.Error.Code != execution.CodeMemoryLimit {
		t.Errorf("bomb = %+v, want memory_limit", res.Error)
	}
	if failed := <-benign; len(failed) > 0 {
		t.Errorf("benign executions that failed, by code: %v", failed)
	}
	if l.Reruns() == 0 {
		t.Error("Reruns() = 0: the bomb's process held no waiting execution, the test proves nothing")
	}

	reruns := l.Reruns()
	benign = crowd(t, l, "again", 200, 10*time.Second)
	waitInFlight(t, l, 50)
	// Alone on the quarantine process, at the lowest CPU priority, on a
	// loaded machine it may be starved before it grows much: then it is
	// killed as a guest that never yields (cpu_limit), which it also is.
	if res := loadertest.Result(t, l, loadertest.Job("bomb2", bomb, time.Minute)); res.Error == nil || (res.Error.Code != execution.CodeMemoryLimit && res.Error.Code != execution.CodeCPULimit) {
		t.Errorf("bomb sent again = %+v, want memory_limit (or cpu_limit)", res.Error)
	}
	if failed := <-benign; len(failed) > 0 {
		t.Errorf("benign executions beside the quarantined bomb that failed, by code: %v", failed)
	}
	if n := l.Reruns() - reruns; n != 0 {
		t.Errorf("%d executions ran again beside the quarantined bomb, want 0", n)
	}
}

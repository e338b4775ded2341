package local_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

const spin = `export default { fetch() { console.log("spinning"); for (;;) {} } }`

func TestSpinningGuestTimesOutAndItsProcessIsReplaced(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	before := l.PIDs()[0]

	res, took := loadertest.Timed(t, l, loadertest.Job("spin", spin, time.Second))
	if res.Error == nil || res.Error.Code != execution.CodeTimeout {
		t.Fatalf("result = %+v, want timeout", res)
	}
	if took > 2*time.Second {
		t.Errorf("timeout came after %v, want within deadline + 1s", took)
	}

	// The only process was blocked; the next execution waits in the queue
	// for its replacement and succeeds.
	res, took = loadertest.Timed(t, l, loadertest.Job("next", loadertest.Hello, 10*time.Second))
	if !res.Success {
		t.Fatalf("next execution = %+v, want success", res)
	}
	if took > 3*time.Second {
		t.Errorf("next execution took %v, want the replacement within about a probe interval", took)
	}
	if pids := l.PIDs(); len(pids) != 1 || pids[0] == before {
		t.Errorf("PIDs = %v, want a new process instead of %d", pids, before)
	}
	if alive(before) {
		t.Errorf("the blocked process %d is still alive", before)
	}
}

func TestOthersKeepFlowingBesideASpinningGuest(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, 700 * time.Millisecond} {
		t.Run(fmt.Sprintf("benign after %v", delay), func(t *testing.T) {
			t.Parallel()
			l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(2))
			defer l.Close()
			var wg sync.WaitGroup
			wg.Go(func() {
				res, _ := loadertest.Timed(t, l, loadertest.Job("spin", spin, time.Second))
				if res.Error == nil || res.Error.Code != execution.CodeTimeout {
					t.Errorf("spinner result = %+v, want timeout", res)
				}
			})
			time.Sleep(delay)
			for i := range 10 {
				wg.Go(func() {
					res, took := loadertest.Timed(t, l, loadertest.Job(fmt.Sprint("benign", i), `export default { async fetch() {
						await new Promise((r) => setTimeout(r, 50));
						return new Response("ok");
					} }`, 10*time.Second))
					// One that shared the spinner's process runs again once
					// the process is replaced: later, but it succeeds.
					if took > 8*time.Second {
						t.Errorf("benign %d took %v, want at most 8s", i, took)
					}
					if !res.Success {
						t.Errorf("benign %d = %+v, want success", i, res.Error)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestNeverResolvingPromiseIsATimeout(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	res, took := loadertest.Timed(t, l, loadertest.Job("hang", `export default { async fetch() { await new Promise(() => {}); } }`, 2*time.Second))
	if res.Error == nil || res.Error.Code != execution.CodeTimeout {
		t.Fatalf("result = %+v, want timeout", res)
	}
	if took > 3*time.Second {
		t.Errorf("took %v, want within deadline + 1s", took)
	}
}

// TestMemoryBomb: a guest filling the V8 heap ends memory_limit (its process
// dies of it, or is killed thrashing); the execution beside it runs again.
func TestMemoryBomb(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.V8HeapMB = 128 })
	defer l.Close()
	neighbourStarted, neighbour := started(t, l, loadertest.Job("neighbour", waiter(1500*time.Millisecond), 30*time.Second))
	<-neighbourStarted
	res, _ := loadertest.Timed(t, l, loadertest.Job("bomb", `export default { fetch() {
		const hoard = [];
		for (;;) hoard.push(new Array(1e5).fill({ x: 1 }));
	} }`, 30*time.Second))
	if res.Error == nil || res.Error.Code != execution.CodeMemoryLimit {
		t.Fatalf("result = %+v, want memory_limit", res.Error)
	}
	if res := loadertest.LastResult(t, <-neighbour); !res.Success {
		t.Errorf("neighbour = %+v, want success after running again", res.Error)
	}
	res, _ = loadertest.Timed(t, l, loadertest.Job("after", loadertest.Hello, 10*time.Second))
	if !res.Success {
		t.Errorf("execution after the bomb = %+v, want success", res)
	}
}

func TestKillDuringLoadFailsOnlyItsExecutions(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(2))
	defer l.Close()
	victim := l.PIDs()[0]
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	stop := time.Now().Add(2 * time.Second)
	for w := range 6 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				res, _ := loadertest.Timed(t, l, loadertest.Job(fmt.Sprintf("w%d-%d", w, i), `export default { async fetch() {
					await new Promise((r) => setTimeout(r, 100));
					return new Response("ok");
				} }`, 10*time.Second))
				key := "success"
				if !res.Success {
					key = string(res.Error.Code)
				}
				mu.Lock()
				outcomes[key]++
				mu.Unlock()
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	recovered := time.Duration(0)
	for time.Since(killed) < 5*time.Second {
		if pids := l.PIDs(); len(pids) == 2 && !slices.Contains(pids, victim) {
			recovered = time.Since(killed)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("outcomes %v; replacement serving after %v", outcomes, recovered)
	if recovered == 0 || recovered > 2*time.Second {
		t.Errorf("replacement serving after %v, want under 2s", recovered)
	}
	// What ran on the killed process runs again on a healthy one: nothing
	// fails.
	if len(outcomes) != 1 || outcomes["success"] < 20 {
		t.Errorf("outcomes = %v, want only successes (at least 20)", outcomes)
	}
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.MaxConcurrency = 1
		c.QueueSize = 1
		c.QueueTimeout = 10 * time.Second
	})
	defer l.Close()
	slow := `export default { async fetch() { await new Promise((r) => setTimeout(r, 1500)); return new Response("ok"); } }`
	var wg sync.WaitGroup
	for i := range 2 { // one runs, one waits in the queue
		wg.Go(func() {
			if res, _ := loadertest.Timed(t, l, loadertest.Job(fmt.Sprint("slow", i), slow, 10*time.Second)); !res.Success {
				t.Errorf("slow %d = %+v, want success", i, res)
			}
		})
		time.Sleep(200 * time.Millisecond)
	}
	start := time.Now()
	_, err := loadertest.Run(t, l, loadertest.Job("third", loadertest.Hello, 10*time.Second))
	if !errors.Is(err, execution.ErrUnavailable) || !errors.Is(err, local.ErrQueueFull) {
		t.Errorf("third Execute = %v, want ErrQueueFull", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Errorf("refusal took %v, want it at once", time.Since(start))
	}
	wg.Wait()
}

func TestRecyclingKeepsServing(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.RecycleAfter = 4 })
	defer l.Close()
	// The old process keeps serving while its replacement starts, so a
	// process may serve a few more than 4; within 60 there must be 3.
	seen := []int{}
	for i := 0; i < 60 && len(seen) < 3; i++ {
		if err := l.Ready(context.Background()); err != nil {
			t.Fatalf("not ready before execution %d: %v", i, err)
		}
		res, _ := loadertest.Timed(t, l, loadertest.Job(fmt.Sprint("r", i), loadertest.Hello, 10*time.Second))
		if !res.Success {
			t.Fatalf("execution %d = %+v", i, res)
		}
		for _, pid := range l.PIDs() {
			if !slices.Contains(seen, pid) {
				seen = append(seen, pid)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(seen) < 3 {
		t.Errorf("processes seen = %v, want at least 3 within 60 executions with recycling every 4", seen)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range seen[:len(seen)-1] {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("recycled process %d still running", pid)
		}
	}
}

func TestRecyclingOnMemory(t *testing.T) {
	t.Parallel()
	// A threshold of one byte: every process is over it at its first probe.
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.RecycleRSS = 1
		c.ProbeInterval = 100 * time.Millisecond
	})
	defer l.Close()
	seen := []int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		if err := l.Ready(context.Background()); err != nil {
			t.Fatalf("not ready while recycling: %v", err)
		}
		if res, _ := loadertest.Timed(t, l, loadertest.Job("m", loadertest.Hello, 10*time.Second)); !res.Success {
			t.Fatalf("execution = %+v", res)
		}
		for _, pid := range l.PIDs() {
			if !slices.Contains(seen, pid) {
				seen = append(seen, pid)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(seen) < 3 {
		t.Errorf("processes seen = %v, want recycling on memory to replace them", seen)
	}
}

func TestReuseKeysAreBounded(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.ReuseKeys = 3 })
	defer l.Close()
	first := l.PIDs()[0]
	warmSeen := false
	for i, key := range []string{"r_a", "r_a", "r_b", "r_c"} { // the third distinct isolate reaches the bound
		j := loadertest.Job(fmt.Sprint("reuse", i), loadertest.Hello, 10*time.Second)
		j.ReuseKey = key
		res, _ := loadertest.Timed(t, l, j)
		if !res.Success {
			t.Fatalf("execution %d = %+v", i, res)
		}
		warmSeen = warmSeen || res.Warm
	}
	deadline := time.Now().Add(5 * time.Second)
	for slices.Contains(l.PIDs(), first) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if slices.Contains(l.PIDs(), first) {
		t.Errorf("PIDs = %v: the process holding 3 warm isolates was not replaced", l.PIDs())
	}
	if !warmSeen {
		t.Error("no execution ran warm")
	}
}

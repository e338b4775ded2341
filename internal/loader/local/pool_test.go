// Tests of the pool against the real workerd: spinning guests, queueing,
// kills under load, recycling. Over 400 lines because each case starts real
// processes and orders its events with held executions (held_test.go), which
// takes room; one behaviour per test.
package local_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

const spin = `export default { fetch() { console.log("spinning"); for (;;) {} } }`

func TestSpinningGuestTimesOutAndItsProcessIsReplaced(t *testing.T) {
	t.Parallel()
	// The next execution waits in the queue for the replacement: give it
	// the time a loaded machine may take to start workerd.
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.QueueTimeout = 30 * time.Second })
	defer l.Close()
	before := l.PIDs()[0]

	res := loadertest.Result(t, l, loadertest.Job("spin", spin, time.Second))
	if res.Error == nil || res.Error.Code != execution.CodeTimeout {
		t.Fatalf("result = %+v, want timeout", res)
	}

	// The only process was blocked; the next execution waits in the queue
	// for its replacement and succeeds.
	res = loadertest.Result(t, l, loadertest.Job("next", loadertest.Hello, 10*time.Second))
	if !res.Success {
		t.Fatalf("next execution = %+v, want success", res)
	}
	if pids := l.PIDs(); len(pids) != 1 || pids[0] == before {
		t.Errorf("PIDs = %v, want a new process instead of %d", pids, before)
	}
	if alive(before) {
		t.Errorf("the blocked process %d is still alive", before)
	}
}

// TestOthersKeepFlowingBesideASpinningGuest: benign executions sent with a
// spinning guest, or once it runs, all succeed, and some finish before the
// spinner's deadline: those on the other process never wait for it (those
// that shared its process run again once it is replaced).
func TestOthersKeepFlowingBesideASpinningGuest(t *testing.T) {
	t.Parallel()
	for _, whileSpinning := range []bool{false, true} {
		t.Run(fmt.Sprintf("benign while spinning %v", whileSpinning), func(t *testing.T) {
			t.Parallel()
			l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(2))
			defer l.Close()
			// The spinner's log reaches the test only if it yields before it
			// spins (500 ms later). A benign execution waits 1 s, so one on
			// the spinner's process is still waiting when the spin starts
			// (both started after the log) and is held up by it; one on the
			// other process ends well before the spinner's 3 s deadline.
			spinLogged, _, spinner := hold(t, l, loadertest.Job("spin", `export default { async fetch() {
				console.log("about to spin");
				await new Promise((r) => setTimeout(r, 500));
				for (;;) {}
			} }`, 3*time.Second), false)
			if whileSpinning {
				<-spinLogged
			}
			var wg sync.WaitGroup
			var early atomic.Int64 // benign executions ended before the spinner
			spinEnded := make(chan struct{})
			for i := range 10 {
				wg.Go(func() {
					res := loadertest.Result(t, l, loadertest.Job(fmt.Sprint("benign", i), `export default { async fetch() {
						await new Promise((r) => setTimeout(r, 1000));
						return new Response("ok");
					} }`, 30*time.Second))
					select {
					case <-spinEnded:
					default:
						early.Add(1)
					}
					if !res.Success {
						t.Errorf("benign %d = %+v, want success", i, res.Error)
					}
				})
			}
			out := <-spinner
			close(spinEnded)
			if res := loadertest.LastResult(t, out.events); res.Error == nil || res.Error.Code != execution.CodeTimeout {
				t.Errorf("spinner result = %+v, want timeout", res.Error)
			}
			wg.Wait()
			if early.Load() == 0 {
				t.Error("no benign execution ended before the spinner's deadline, want those on the other process to flow")
			}
		})
	}
}

func TestNeverResolvingPromiseIsATimeout(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	res := loadertest.Result(t, l, loadertest.Job("hang", `export default { async fetch() { await new Promise(() => {}); } }`, 2*time.Second))
	if res.Error == nil || res.Error.Code != execution.CodeTimeout {
		t.Fatalf("result = %+v, want timeout", res)
	}
}

// TestMemoryBomb: a guest filling the V8 heap ends memory_limit (its process
// dies of it, or is killed thrashing); the execution beside it runs again.
func TestMemoryBomb(t *testing.T) {
	t.Parallel()
	// The neighbour's run again may wait for a process to start: give it
	// the time a loaded machine may take.
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.V8HeapMB = 128
		c.QueueTimeout = 30 * time.Second
	})
	defer l.Close()
	neighbourStarted, neighbour := started(t, l, loadertest.Job("neighbour", waiter(1500*time.Millisecond), 30*time.Second))
	<-neighbourStarted
	res := loadertest.Result(t, l, loadertest.Job("bomb", `export default { fetch() {
		const hoard = [];
		for (;;) hoard.push(new Array(1e5).fill({ x: 1 }));
	} }`, 30*time.Second))
	if res.Error == nil || res.Error.Code != execution.CodeMemoryLimit {
		t.Fatalf("result = %+v, want memory_limit", res.Error)
	}
	if res := loadertest.LastResult(t, <-neighbour); !res.Success {
		t.Errorf("neighbour = %+v, want success after running again", res.Error)
	}
	res = loadertest.Result(t, l, loadertest.Job("after", loadertest.Hello, 10*time.Second))
	if !res.Success {
		t.Errorf("execution after the bomb = %+v, want success", res)
	}
}

// TestKillDuringLoadFailsOnlyItsExecutions: six callers keep two processes
// busy; one process is killed while each caller's first execution is on its
// way (three of them on the victim). Those run again (on the process for
// runs again, as nothing explains the loss), a replacement comes up, and no
// caller sees a failure.
func TestKillDuringLoadFailsOnlyItsExecutions(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(2), func(c *local.Config) { c.QueueTimeout = 30 * time.Second })
	defer l.Close()
	victim := l.PIDs()[0]
	const workers = 6
	var wg sync.WaitGroup
	callers := make([]caller, workers)
	running, stop := make(chan struct{}, workers), make(chan struct{})
	for w := range callers {
		wg.Go(func() { callers[w].keepCalling(t, l, w, running, stop) })
	}
	for range workers {
		<-running
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Poll (with a deadline) for states that send no event: the
	// replacement serving, then every caller past an execution sent after
	// its first one ended.
	var procs map[string]int
	if !testwait.Until(30*time.Second, func() bool {
		procs, _ = l.Stats()
		return procs["ready"] == 2 && !slices.Contains(l.PIDs(), victim)
	}) {
		t.Fatalf("processes %v, PIDs %v 30s after killing %d, want a replacement serving", procs, l.PIDs(), victim)
	}
	testwait.Until(30*time.Second, func() bool { // the outcomes below say what was missing
		for w := range callers {
			if callers[w].done.Load() < 2 {
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	for w := range callers {
		if got := callers[w].outcomes; len(got) != 1 || got["success"] < 2 {
			t.Errorf("caller %d outcomes = %v, want only successes, at least two", w, got)
		}
	}
	if n := l.Reruns(); n < 1 {
		t.Errorf("Reruns() = %d, want the executions on the killed process run again", n)
	}
}

// caller sends executions one after another and counts how they end.
type caller struct {
	done     atomic.Int64   // executions ended
	outcomes map[string]int // "success", a result code or an error; read after keepCalling returns
}

// keepCalling runs executions until stop is closed. The first says it runs
// (sending on running once its log arrives), then waits 2 s, so that it is
// still running when the test acts on that; the others wait 100 ms.
func (c *caller) keepCalling(t *testing.T, l *local.Pool, w int, running chan<- struct{}, stop <-chan struct{}) {
	c.outcomes = map[string]int{}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		wait := 100 * time.Millisecond
		if i == 0 {
			wait = 2 * time.Second
		}
		var once sync.Once
		events, err := runEmit(t, l, loadertest.Job(fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf(`export default { async fetch() {
			console.log("running");
			await new Promise((r) => setTimeout(r, %d));
			return new Response("ok");
		} }`, wait.Milliseconds()), 30*time.Second), func(ev execution.Event) {
			if i == 0 && ev.Type == execution.EventLog {
				once.Do(func() { running <- struct{}{} })
			}
		})
		key := "success"
		if res := lastResult(events); err != nil {
			key = err.Error()
		} else if !res.Success {
			key = string(res.Error.Code)
		}
		c.outcomes[key]++
		c.done.Add(1)
	}
}

// TestQueueFull: with the one place taken and the one queue place taken, a
// third execution is refused with ErrQueueFull, without waiting for the
// queue timeout; once the place frees, the queued one runs.
func TestQueueFull(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.MaxConcurrency = 1
		c.QueueSize = 1
		c.QueueTimeout = time.Hour // longer than the test: a wait is never a refusal
	})
	defer l.Close()
	// The first keeps its place while the test holds its log event.
	logged, release, first := hold(t, l, loadertest.Job("first", loadertest.Hello, time.Minute), true)
	defer release()
	<-logged
	queued := make(chan *execution.Result, 1)
	go func() {
		res := loadertest.Result(t, l, loadertest.Job("queued", loadertest.Hello, time.Minute))
		queued <- res
	}()
	// Nothing signals that an execution joined the queue: poll for it.
	if !testwait.Until(30*time.Second, func() bool { _, n := l.Stats(); return n == 1 }) {
		_, n := l.Stats()
		t.Fatalf("queued = %d after 30s, want 1", n)
	}
	// A third that waited (for the hour-long queue timeout) would be ended
	// by this context instead of refused.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := l.Execute(ctx, loadertest.Job("third", loadertest.Hello, time.Minute), func(execution.Event) error { return nil })
	if !errors.Is(err, execution.ErrUnavailable) || !errors.Is(err, local.ErrQueueFull) {
		t.Errorf("third Execute = %v, want ErrQueueFull", err)
	}
	if _, n := l.Stats(); n != 1 {
		t.Errorf("queued = %d after the refusal, want 1 (the refusal took no place)", n)
	}
	release()
	if out := <-first; out.err != nil || !lastResult(out.events).Success {
		t.Errorf("first = %v %+v, want success", out.err, lastResult(out.events))
	}
	if res := <-queued; !res.Success {
		t.Errorf("queued = %+v, want success once the place freed", res)
	}
}

// replacements records the pool's OnReplace reports, as "event/reason".
type replacements struct {
	mu   sync.Mutex
	seen []string
}

func (r *replacements) option(c *local.Config) {
	c.OnReplace = func(event, reason string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen = append(r.seen, event+"/"+reason)
	}
}

// only reports whether every replacement so far was want, and there was one.
func (r *replacements) only(want string) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s != want {
			return slices.Clone(r.seen), false
		}
	}
	return slices.Clone(r.seen), len(r.seen) > 0
}

// serveUntilReplaced runs executions on l, each of which must succeed with
// l ready before it, until three processes have served or the deadline
// passes (a new process signals nothing: this polls, pausing between
// executions). It returns the processes seen.
func serveUntilReplaced(t *testing.T, l *local.Pool, deadline time.Duration) []int {
	t.Helper()
	seen := []int{}
	i := 0
	testwait.Until(deadline, func() bool { // the caller checks how many were seen
		defer func() { i++ }()
		if err := l.Ready(context.Background()); err != nil {
			t.Fatalf("not ready before execution %d: %v", i, err)
		}
		if res := loadertest.Result(t, l, loadertest.Job(fmt.Sprint("r", i), loadertest.Hello, 10*time.Second)); !res.Success {
			t.Fatalf("execution %d = %+v", i, res)
		}
		for _, pid := range l.PIDs() {
			if !slices.Contains(seen, pid) {
				seen = append(seen, pid)
			}
		}
		return len(seen) >= 3
	})
	return seen
}

// TestRecyclingKeepsServing: a process is replaced after 4 executions while
// the pool stays ready and every execution succeeds; the replaced ones exit.
func TestRecyclingKeepsServing(t *testing.T) {
	t.Parallel()
	var rep replacements
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.RecycleAfter = 4 }, rep.option)
	defer l.Close()
	// The old process keeps serving while its replacement starts, so a
	// process may serve more than 4; the deadline only bounds a stuck pool.
	seen := serveUntilReplaced(t, l, time.Minute)
	if len(seen) < 3 {
		t.Errorf("processes seen = %v, want at least 3 with recycling every 4 executions", seen)
	}
	if got, ok := rep.only("recycle/executions"); !ok {
		t.Errorf("replacements = %v, want only recycle/executions", got)
	}
	// An exit signals nothing here: poll, with a deadline.
	for _, pid := range seen[:len(seen)-1] {
		if !testwait.Until(30*time.Second, func() bool { return !alive(pid) }) {
			t.Errorf("recycled process %d still running", pid)
		}
	}
}

// TestRecyclingOnMemory: a process over recycle_rss is replaced, and the
// pool keeps serving while it is.
func TestRecyclingOnMemory(t *testing.T) {
	t.Parallel()
	var rep replacements
	// A threshold of one byte: every process is over it at its first probe.
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.RecycleRSS = 1
		c.ProbeInterval = 100 * time.Millisecond
	}, rep.option)
	defer l.Close()
	if seen := serveUntilReplaced(t, l, time.Minute); len(seen) < 3 {
		t.Errorf("processes seen = %v, want recycling on memory to replace them", seen)
	}
	if got, ok := rep.only("recycle/memory"); !ok {
		t.Errorf("replacements = %v, want only recycle/memory", got)
	}
}

// TestReuseKeysAreBounded: the process that reaches the bound of warm
// isolates is replaced, and an execution with a key it holds runs warm.
func TestReuseKeysAreBounded(t *testing.T) {
	t.Parallel()
	var rep replacements
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.ReuseKeys = 3 }, rep.option)
	defer l.Close()
	first := l.PIDs()[0]
	warmSeen := false
	for i, key := range []string{"r_a", "r_a", "r_b", "r_c"} { // the third distinct isolate reaches the bound
		j := loadertest.Job(fmt.Sprint("reuse", i), loadertest.Hello, 10*time.Second)
		j.ReuseKey = key
		res := loadertest.Result(t, l, j)
		if !res.Success {
			t.Fatalf("execution %d = %+v", i, res)
		}
		warmSeen = warmSeen || res.Warm
	}
	// The replacement serving signals nothing here: poll, with a deadline
	// wide enough for workerd to start on a loaded machine.
	if !testwait.Until(30*time.Second, func() bool { return !slices.Contains(l.PIDs(), first) }) {
		t.Errorf("PIDs = %v: the process holding 3 warm isolates was not replaced", l.PIDs())
	}
	if got, ok := rep.only("recycle/reuse_keys"); !ok {
		t.Errorf("replacements = %v, want only recycle/reuse_keys", got)
	}
	if !warmSeen {
		t.Error("no execution ran warm")
	}
}

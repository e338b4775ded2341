package local_test

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestWedgedProcessIsReplaced: a process that stops answering with no
// execution past its deadline is killed after runtime.unresponsive_kill and
// replaced, whatever wedged it: the process itself (SIGSTOP), or a guest
// that goes on spinning after returning (in ctx.waitUntil, or writing a
// response stream it keeps open). The execution beside it runs again and
// succeeds; a wedging guest runs again alone, wedges again and so ends
// cpu_limit; the pool serves again.
func TestWedgedProcessIsReplaced(t *testing.T) {
	t.Parallel()
	const unresponsive = 500 * time.Millisecond
	wedges := []struct {
		name  string
		guest string // empty: SIGSTOP the process
	}{
		{"sigstop", ""},
		{"waitUntil spin", `export default { fetch(r, env, ctx) {
			ctx.waitUntil(new Promise(() => setTimeout(() => { for (;;) {} }, 200)));
			return new Response("ok");
		} }`},
		{"open stream spin", `export default { fetch() {
			const { readable, writable } = new TransformStream();
			writable.getWriter().write(new TextEncoder().encode("x"));
			setTimeout(() => { for (;;) {} }, 200);
			return new Response(readable);
		} }`},
	}
	for _, w := range wedges {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
				c.ProbeInterval = 100 * time.Millisecond
				c.UnresponsiveKill = unresponsive
			})
			defer l.Close()
			pid := l.PIDs()[0]
			heldStarted, held := started(t, l, loadertest.Job("held", waiter(400*time.Millisecond), 30*time.Second))
			<-heldStarted
			var wedger <-chan []execution.Event
			if w.guest == "" {
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			} else {
				_, wedger = started(t, l, loadertest.Job("wedger", w.guest, 30*time.Second))
			}
			// A kill signals nothing the test can wait on: poll the pool's
			// processes. A wedging guest costs two of them (its own run
			// again wedges one more).
			if !testwait.Until(time.Minute, func() bool { return !slices.Contains(l.PIDs(), pid) }) {
				t.Fatalf("wedged process %d still serving after a minute", pid)
			}
			if res := loadertest.Result(t, l, loadertest.Job("after", loadertest.Hello, 20*time.Second)); !res.Success {
				t.Fatalf("execution after the wedge = %+v, want success", res.Error)
			}
			if alive(pid) {
				t.Errorf("wedged process %d still exists", pid)
			}
			if res := loadertest.LastResult(t, <-held); !res.Success {
				t.Errorf("execution held by the wedged process = %+v, want success after running again", res.Error)
			}
			if wedger != nil {
				if res := loadertest.LastResult(t, <-wedger); res.Error == nil || res.Error.Code != execution.CodeCPULimit {
					t.Errorf("wedging guest = %+v, want cpu_limit", res.Error)
				}
			}
		})
	}
}

// bomb fills memory outside the V8 heap, where v8_heap_mb does not reach.
const bomb = `export default { fetch() {
	const a = [];
	for (;;) a.push(new Uint8Array(64 << 20).fill(1));
} }`

// TestArrayBufferBomb: a guest holding ArrayBuffers past the process's hard
// memory bound ends memory_limit, the execution beside it on the same
// process runs again and succeeds, and the pool keeps serving; the bound's
// cgroups are gone after Close. Sent again, the bomb runs alone. It runs with the machine's bound (cgroup v1
// here) and with the resident-memory watchdog.
func TestArrayBufferBomb(t *testing.T) {
	t.Parallel()
	for _, bound := range []string{"system", "watchdog"} {
		t.Run(bound, func(t *testing.T) {
			t.Parallel()
			cfg := local.Config{
				Workerd: loadertest.Workerd(t), Processes: 1, MemoryLimit: 512 << 20,
				ProbeInterval: 100 * time.Millisecond, UnresponsiveKill: 10 * time.Second, StartTimeout: 30 * time.Second,
				// A queue, as the gateway has, so an execution sent while the
				// process the bomb cost is being replaced waits for it.
				QueueSize: 64, QueueTimeout: 30 * time.Second,
			}
			var l *local.Pool
			var err error
			if bound == "system" {
				l, err = local.New(cfg, zerolog.Nop())
			} else {
				l, err = local.NewWithoutCgroups(cfg, zerolog.Nop(), t.TempDir())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			loadertest.WaitReady(t, l, 30*time.Second)
			t.Logf("memory bound: %s", l.MemoryBound())
			if bound == "watchdog" && l.MemoryBound() != "watchdog" {
				t.Fatalf("MemoryBound() = %s, want watchdog", l.MemoryBound())
			}
			if strings.HasPrefix(l.MemoryBound(), "cgroup") && len(l.Cgroups()) != 1 {
				t.Errorf("Cgroups() = %v, want the process's group", l.Cgroups())
			}
			neighbourStarted, neighbour := started(t, l, loadertest.Job("neighbour", waiter(1500*time.Millisecond), 30*time.Second))
			<-neighbourStarted
			res := loadertest.Result(t, l, loadertest.Job("bomb", bomb, 30*time.Second))
			if res.Error == nil || res.Error.Code != execution.CodeMemoryLimit {
				t.Fatalf("bomb = %+v, want memory_limit", res.Error)
			}
			if res := loadertest.LastResult(t, <-neighbour); !res.Success {
				t.Errorf("neighbour = %+v, want success after running again", res.Error)
			}
			if res := loadertest.Result(t, l, loadertest.Job("after", loadertest.Hello, 10*time.Second)); !res.Success {
				t.Errorf("execution after the bomb = %+v, want success", res.Error)
			}
			// Sent again, the bomb is quarantined: it waits for the process
			// to empty and runs alone, so its neighbour never runs again.
			reruns := l.Reruns()
			neighbourStarted, neighbour = started(t, l, loadertest.Job("neighbour2", waiter(500*time.Millisecond), 30*time.Second))
			<-neighbourStarted
			if res := loadertest.Result(t, l, loadertest.Job("bomb2", bomb, 30*time.Second)); res.Error == nil || res.Error.Code != execution.CodeMemoryLimit {
				t.Errorf("bomb sent again = %+v, want memory_limit", res.Error)
			}
			if res := loadertest.LastResult(t, <-neighbour); !res.Success {
				t.Errorf("second neighbour = %+v, want success", res.Error)
			}
			if n := l.Reruns() - reruns; n != 0 {
				t.Errorf("%d executions ran again beside the quarantined bomb, want 0", n)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if left := l.Cgroups(); len(left) > 0 {
				t.Errorf("cgroups left after Close: %v", left)
			}
		})
	}
}

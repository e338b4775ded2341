package local_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// holder takes mib MiB outside the V8 heap, then waits 2 s holding it.
func holder(mib int) string {
	return fmt.Sprintf(`export default { async fetch() {
		const held = new Uint8Array(%d << 20).fill(1);
		await new Promise((r) => setTimeout(r, 2000));
		return new Response(String(held.length));
	} }`, mib)
}

// TestAdmissionFollowsMemory: a process takes executions while its memory
// allows and queues the rest, so 100 executions of 8 MiB each, sent at
// once to one process bounded at 384 MiB, all succeed and it never dies of
// them (taken at once, they would need twice its bound). Not parallel, as
// TestBombAmongThousands.
func TestAdmissionFollowsMemory(t *testing.T) {
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.MemoryLimit = 384 << 20
		c.MaxStarting = 4 // few isolates not yet showing in its memory at any time
		c.QueueSize, c.QueueTimeout = 1000, 5*time.Minute
	})
	defer l.Close()
	pid := l.PIDs()[0]
	const n = 100
	var wg sync.WaitGroup
	outcomes := make([]string, n)
	for i := range n {
		wg.Go(func() {
			res := loadertest.Result(t, l, loadertest.Job(fmt.Sprint("holder", i), holder(8), time.Minute))
			outcomes[i] = "success"
			if !res.Success {
				outcomes[i] = string(res.Error.Code)
			}
		})
	}
	wg.Wait()
	failed := slices.DeleteFunc(slices.Clone(outcomes), func(s string) bool { return s == "success" })
	if len(failed) > 0 {
		t.Errorf("%d of %d executions failed: %v", len(failed), n, failed)
	}
	if got := l.PIDs(); len(got) != 1 || got[0] != pid || l.Reruns() != 0 {
		t.Errorf("PIDs() = %v (was %d), %d runs again: the process died of its load", got, pid, l.Reruns())
	}
	// What it held at most is bounded by its memory: 384 MiB over at least
	// 8 MiB each.
	if _, peak := l.InFlight(); peak > 384/8 {
		t.Errorf("peak InFlight() = %d, want at most %d (8 MiB each in 384 MiB)", peak, 384/8)
	}
	if per, _ := l.Admitted(); per < 8<<20 {
		t.Errorf("Admitted() estimate = %d bytes per execution, want at least the 8 MiB each holds", per)
	}
}

// TestThousandsWaitOnOneProcess: waiting executions are bounded by memory,
// not by a count: 400 executions awaiting a 10 s timer, sent at once to
// one process, all succeed, and it runs far more than 16 at once (the
// start of each is CPU-bound, so how many overlap depends on the machine:
// even at 10 starts a second, 100). Not parallel, as TestBombAmongThousands.
func TestThousandsWaitOnOneProcess(t *testing.T) {
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.MemoryLimit = 2 << 30
		c.QueueSize, c.QueueTimeout = 1000, 5*time.Minute
	})
	defer l.Close()
	pid := l.PIDs()[0]
	const n = 400
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := map[string]int{}
	for i := range n {
		wg.Go(func() {
			res := loadertest.Result(t, l, loadertest.Job(fmt.Sprint("wait", i), waiter(10*time.Second), time.Minute))
			if !res.Success {
				mu.Lock()
				failed[string(res.Error.Code)+": "+res.Error.Message]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("failed executions: %v", failed)
	}
	if got := l.PIDs(); len(got) != 1 || got[0] != pid || l.Reruns() != 0 {
		t.Errorf("PIDs() = %v (was %d), %d runs again: the process was lost under load", got, pid, l.Reruns())
	}
	_, peak := l.InFlight()
	per, share := l.Admitted()
	t.Logf("at most %d at once; estimate %d KiB per execution, share %.2f", peak, per>>10, share)
	if peak <= 64 {
		t.Errorf("peak InFlight() = %d, want more than 64 waiting at once", peak)
	}
}

package local_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
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

// waiter logs one line, then waits d before answering "ok".
func waiter(d time.Duration) string {
	return fmt.Sprintf(`export default { async fetch() {
		console.log("waiting");
		await new Promise((r) => setTimeout(r, %d));
		return new Response("ok");
	} }`, d.Milliseconds())
}

// started runs j in the background and returns a channel closed once its
// start event has arrived, and one that delivers its events at the end.
func started(t *testing.T, b execution.Backend, j *execution.Job) (<-chan struct{}, <-chan []execution.Event) {
	t.Helper()
	start := make(chan struct{})
	done := make(chan []execution.Event, 1)
	go func() {
		var events []execution.Event
		var once sync.Once
		err := b.Execute(t.Context(), j, func(ev execution.Event) error {
			events = append(events, ev)
			if ev.Type == execution.EventStart || ev.Type == execution.EventLog {
				once.Do(func() { close(start) })
			}
			return nil
		})
		if err != nil {
			t.Errorf("Execute(%s) = %v", j.ID, err)
		}
		once.Do(func() { close(start) })
		done <- events
	}()
	return start, done
}

// eventTypes lists the types of events, comma-separated.
func eventTypes(events []execution.Event) string {
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	return strings.Join(types, ",")
}

// TestSpinnersNeighbourRunsAgain: an execution that shared a process with a
// spinning guest runs again once the process is killed: its caller sees one
// start, a restart voiding the log it had, and success. The spinner alone
// gets timeout.
func TestSpinnersNeighbourRunsAgain(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	neighbourStarted, neighbour := started(t, l, loadertest.Job("neighbour", waiter(1500*time.Millisecond), 20*time.Second))
	<-neighbourStarted
	res := loadertest.Result(t, l, loadertest.Job("spin", spin, time.Second))
	if res.Error == nil || res.Error.Code != execution.CodeTimeout {
		t.Fatalf("spinner = %+v, want timeout", res.Error)
	}
	events := <-neighbour
	if got := loadertest.LastResult(t, events); !got.Success || got.Response.Body != "ok" {
		t.Fatalf("neighbour = %+v, want success", got.Error)
	}
	if got := eventTypes(events); got != "start,log,restart,log,result" {
		t.Errorf("neighbour events = %s, want start,log,restart,log,result", got)
	}
	for _, ev := range events {
		if ev.Type == execution.EventRestart && ev.Reason != string(execution.CodeRuntimeCrashed) {
			t.Errorf("restart reason = %q, want runtime_crashed", ev.Reason)
		}
	}
	if n := l.Reruns(); n != 1 {
		t.Errorf("Reruns() = %d, want 1 (the neighbour, never the spinner)", n)
	}
}

// TestNeighbourLostTwiceRunsAgain: an execution that loses its process to
// a spinner, and its run again to a second spinner (other code, so not
// quarantined yet), runs a third time and succeeds: while hostile code is
// new, a benign execution can be unlucky twice. Its caller sees one start,
// a restart before each run again, and success.
func TestNeighbourLostTwiceRunsAgain(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	logs := make(chan struct{}, 4) // one per "waiting" the neighbour prints
	done := make(chan []execution.Event, 1)
	go func() {
		var events []execution.Event
		err := l.Execute(t.Context(), loadertest.Job("neighbour", waiter(1500*time.Millisecond), 30*time.Second), func(ev execution.Event) error {
			events = append(events, ev)
			if ev.Type == execution.EventLog {
				logs <- struct{}{}
			}
			return nil
		})
		if err != nil {
			t.Errorf("Execute(neighbour) = %v", err)
		}
		done <- events
	}()
	for i, code := range []string{spin, "// another\n" + spin} {
		<-logs // the neighbour runs (again)
		if res := loadertest.Result(t, l, loadertest.Job(fmt.Sprintf("spin%d", i), code, time.Second)); res.Error == nil || res.Error.Code != execution.CodeTimeout {
			t.Fatalf("spinner %d = %+v, want timeout", i, res.Error)
		}
	}
	events := <-done
	if got := loadertest.LastResult(t, events); !got.Success || got.Response.Body != "ok" {
		t.Fatalf("neighbour = %+v, want success", got.Error)
	}
	if got := eventTypes(events); got != "start,log,restart,log,restart,log,result" {
		t.Errorf("neighbour events = %s, want start,log,restart,log,restart,log,result", got)
	}
	if n := l.Reruns(); n != 2 {
		t.Errorf("Reruns() = %d, want 2 (the neighbour twice, never a spinner)", n)
	}
}

// TestSpareTakesOver: with a spare, the process killed for a spinner is
// replaced by the spare, already started before the kill, and a new spare
// starts; the pool serves on. (How much sooner is in docs/performance.md:
// no timing here.)
func TestSpareTakesOver(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) { c.Spare = true })
	defer l.Close()
	var spare int
	if !testwait.Until(30*time.Second, func() bool { spare = l.SparePID(); return spare != 0 }) {
		t.Fatal("no spare process after 30s")
	}
	before := l.PIDs()[0]
	if res := loadertest.Result(t, l, loadertest.Job("spin", spin, time.Second)); res.Error == nil || res.Error.Code != execution.CodeTimeout {
		t.Fatalf("spinner = %+v, want timeout", res.Error)
	}
	if !testwait.Until(30*time.Second, func() bool { pids := l.PIDs(); return len(pids) > 0 && pids[0] != before }) {
		t.Fatalf("the spinner's process %d still serves after 30s", before)
	}
	if got := l.PIDs()[0]; got != spare {
		t.Errorf("the slot's new process = %d, want the spare %d", got, spare)
	}
	if !testwait.Until(30*time.Second, func() bool { s := l.SparePID(); return s != 0 && s != spare }) {
		t.Error("no new spare after 30s")
	}
	if res := loadertest.Result(t, l, loadertest.Job("after", loadertest.Hello, 10*time.Second)); !res.Success {
		t.Errorf("execution after the takeover = %+v, want success", res.Error)
	}
}

// TestRunAgainKeepsTheTimeout: an execution run again has only what is left
// of its timeout, not a new one. The neighbour needs 3 s of its 4 s; it
// loses 1 s or more to the spinner's deadline, so its run again cannot
// finish and ends timeout, by its caller's 4 s, where a fresh timeout would
// have let it succeed after 4 s or more.
func TestRunAgainKeepsTheTimeout(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	neighbourStarted, neighbour := started(t, l, loadertest.Job("neighbour", waiter(3*time.Second), 4*time.Second))
	<-neighbourStarted
	if res := loadertest.Result(t, l, loadertest.Job("spin", spin, time.Second)); res.Error == nil || res.Error.Code != execution.CodeTimeout {
		t.Fatalf("spinner = %+v, want timeout", res.Error)
	}
	events := <-neighbour
	res := loadertest.LastResult(t, events)
	if res.Success || res.Error.Code != execution.CodeTimeout || !strings.Contains(res.Error.Message, "4s") ||
		!strings.Contains(eventTypes(events), "restart") {
		t.Errorf("neighbour = %+v, events %s; want it run again, then timeout naming its 4s", res.Error, eventTypes(events))
	}
}

// TestQuarantinedCodeRunsAlone: once a spinner has cost a process, the same
// code sent again runs on a process of its own, so benign executions sent
// alongside never share it (none has to run again) and all succeed.
func TestQuarantinedCodeRunsAlone(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(2))
	defer l.Close()
	// It says it started, then spins, so that the benign executions are on
	// their way while it does.
	const spinner = `export default { async fetch() {
		console.log("about to spin");
		await new Promise((r) => setTimeout(r, 50));
		for (;;) {}
	} }`
	round := func(name string) {
		spinStarted, spinner := started(t, l, loadertest.Job(name+"-spin", spinner, time.Second))
		<-spinStarted
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				res := loadertest.Result(t, l, loadertest.Job(fmt.Sprintf("%s-benign%d", name, i), waiter(200*time.Millisecond), 20*time.Second))
				if !res.Success {
					t.Errorf("%s benign %d = %+v, want success", name, i, res.Error)
				}
			})
		}
		wg.Wait()
		if res := loadertest.LastResult(t, <-spinner); res.Error == nil || res.Error.Code != execution.CodeTimeout {
			t.Errorf("%s spinner = %+v, want timeout", name, res.Error)
		}
	}
	// Before the quarantine, benign executions share the spinner's process
	// and have to run again: the case the quarantine exists for.
	round("first")
	before := l.Reruns()
	if before == 0 {
		t.Fatal("no benign execution shared the first spinner's process; the test proves nothing")
	}
	loadertest.WaitReady(t, l, 10*time.Second)
	round("again")
	if n := l.Reruns() - before; n != 0 {
		t.Errorf("%d benign executions ran again beside the quarantined spinner, want 0", n)
	}
	// It ran on the isolation process, a third one, at a lower CPU priority.
	pids := l.PIDs()
	if len(pids) != 3 {
		t.Fatalf("PIDs() = %v, want the pool's two and the isolation process", pids)
	}
	if n := niceOf(t, pids[2]); n != 10 {
		t.Errorf("nice of the isolation process = %d, want 10", n)
	}
	if n := niceOf(t, pids[0]); n != 0 {
		t.Errorf("nice of a pool process = %d, want 0", n)
	}
	if res := loadertest.Result(t, l, loadertest.Job("after", loadertest.Hello, 10*time.Second)); !res.Success {
		t.Errorf("execution after the rounds = %+v, want success", res.Error)
	}
}

// niceOf reads the nice value of process pid from /proc.
func niceOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which ends with the last ')':
	// state is field 3, nice field 19.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	n, err := strconv.Atoi(fields[16])
	if err != nil {
		t.Fatalf("nice in /proc/%d/stat: %v", pid, err)
	}
	return n
}

// TestNeighbourThatReachedTheNetworkIsNotRunAgain: an execution whose guest
// attempted an outbound request before its process was killed is never run
// again behind its caller's back, however the attempt went (denied by the
// policy, failed, a Request object); one that may use the network but has
// not tried yet still is. (A fetch still inside the guest's isolate when
// the process dies, not yet received by the shim, left nothing: it may run
// again. Which of the two a fetch not awaited is depends on the event loop,
// so it is not a case here: it made this test flaky.)
func TestNeighbourThatReachedTheNetworkIsNotRunAgain(t *testing.T) {
	t.Parallel()
	attempts := []struct {
		name, code string
		rerun      bool
	}{
		{"denied by policy", `try { await fetch("https://not-on-the-list.example.org/"); } catch {}`, false},
		{"failed to resolve", `try { await fetch("http://does-not-resolve.invalid/"); } catch {}`, false},
		{"request object", `try { await fetch(new Request("https://not-on-the-list.example.org/", { method: "POST", body: "x" })); } catch {}`, false},
		{"none yet", ``, true},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
			defer l.Close()
			code := fmt.Sprintf(`export default { async fetch() {
				%s
				console.log("waiting");
				await new Promise((r) => setTimeout(r, 1500));
				return new Response("ok");
			} }`, a.code)
			j := loadertest.Job("net-"+strings.ReplaceAll(a.name, " ", "-"), code, 20*time.Second)
			j.Egress = &execution.EgressPolicy{Hosts: []string{"does-not-resolve.invalid"}}
			neighbourStarted, neighbour := started(t, l, j)
			<-neighbourStarted
			if res := loadertest.Result(t, l, loadertest.Job("spin-"+j.ID, spin, time.Second)); res.Error == nil || res.Error.Code != execution.CodeTimeout {
				t.Fatalf("spinner = %+v, want timeout", res.Error)
			}
			events := <-neighbour
			res := loadertest.LastResult(t, events)
			if a.rerun {
				if !res.Success || l.Reruns() != 1 {
					t.Errorf("neighbour = %+v after %d re-runs, want success after 1", res.Error, l.Reruns())
				}
				return
			}
			if res.Success || res.Error.Code != execution.CodeRuntimeCrashed || strings.Contains(eventTypes(events), "restart") {
				t.Errorf("neighbour = %+v, events %s; want runtime_crashed with no restart", res.Error, eventTypes(events))
			}
			if n := l.Reruns(); n != 0 {
				t.Errorf("Reruns() = %d, want 0", n)
			}
		})
	}
}

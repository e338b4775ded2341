package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func TestRecoversWhenWorkerdIsKilled(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()

	// An execution in flight when the process dies (of no execution's
	// doing) runs again on the replacement: its caller gets one start, a
	// restart voiding the log it had seen, the log again and the result.
	// It waits 3 s after its log: it is still waiting when the kill comes
	// right after the log arrives.
	logged, _, done := hold(t, l, loadertest.Job("slow", `export default { async fetch() {
		console.log("started");
		await new Promise((r) => setTimeout(r, 3000));
		return new Response("late");
	} }`, 30*time.Second), false)
	pid := l.PIDs()[0]
	<-logged
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill workerd %d: %v", pid, err)
	}
	out := <-done
	inflight, inflightErr := out.events, out.err
	if inflightErr != nil {
		t.Fatalf("in-flight Execute = %v, want a result event", inflightErr)
	}
	res := loadertest.LastResult(t, inflight)
	if !res.Success || res.Response.Body != "late" {
		t.Fatalf("in-flight result = %+v, want success after running again", res)
	}
	var types []string
	for _, ev := range inflight {
		types = append(types, ev.Type)
	}
	if got := strings.Join(types, ","); got != "start,log,restart,log,result" {
		t.Errorf("in-flight events = %s, want start,log,restart,log,result", got)
	}

	// A new process comes up on its own and serves executions (its start
	// signals nothing here: poll, with a deadline).
	if !testwait.Until(30*time.Second, func() bool { pids := l.PIDs(); return len(pids) > 0 && pids[0] != pid }) {
		t.Fatal("no new runtime process within 30s of the kill")
	}
	loadertest.WaitReady(t, l, 10*time.Second)
	events, err := loadertest.Run(t, l, loadertest.Job("after", loadertest.Hello, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if res := loadertest.LastResult(t, events); !res.Success || res.Response.Body != "ok" {
		t.Errorf("after restart: result = %+v, want success", res)
	}
	if alive(pid) {
		t.Errorf("killed process %d still exists", pid)
	}
}

func TestCloseStopsWorkerd(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(2))
	pids := l.PIDs()
	if len(pids) != 2 || !alive(pids[0]) || !alive(pids[1]) {
		t.Fatalf("PIDs() = %v, want two running processes", pids)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("workerd %d still running after Close", pid)
		}
	}
	if err := l.Ready(t.Context()); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Ready after Close = %v, want execution.ErrUnavailable", err)
	}
	if _, err := loadertest.Run(t, l, loadertest.Job("closed", loadertest.Hello, time.Second)); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Execute after Close = %v, want execution.ErrUnavailable", err)
	}
}

// TestBrokenRuntimeIsRetriedNotFatal: a workerd that fails at once does not
// fail New; the pool reports unavailable, starts it again and again, and
// serves as soon as it works (here: once a file appears), without a restart
// of the gateway. Close returns promptly throughout.
func TestBrokenRuntimeIsRetriedNotFatal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	starts, fixed := filepath.Join(dir, "starts"), filepath.Join(dir, "fixed")
	bin := filepath.Join(dir, "workerd")
	script := fmt.Sprintf("#!/bin/sh\necho start >> %q\nif [ -e %q ]; then exec %q \"$@\"; fi\necho broken runtime >&2\nexit 3\n",
		starts, fixed, loadertest.Workerd(t))
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// A start timeout of an hour: a runtime that exits at once must fail its
	// start at once (nothing listens once it is gone), not hold its slot
	// until the timeout, so the retries below happen within the test's 30s.
	l, err := local.New(local.Config{Workerd: bin, Processes: 1, StartTimeout: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatalf("New with a broken runtime = %v, want no error", err)
	}
	defer closeWithin(t, l, 30*time.Second)
	if err := l.Ready(t.Context()); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Ready = %v, want execution.ErrUnavailable", err)
	}
	if _, err := loadertest.Run(t, l, loadertest.Job("x", loadertest.Hello, time.Second)); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Execute = %v, want execution.ErrUnavailable", err)
	}
	// A start signals nothing: poll the file the script appends to, with a
	// deadline, until the runtime was started again after failing.
	if !testwait.Until(30*time.Second, func() bool { return countLines(starts) >= 3 }) {
		t.Fatalf("the broken runtime was started %d times in 30s, want it retried", countLines(starts))
	}
	if err := os.WriteFile(fixed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	loadertest.WaitReady(t, l, 30*time.Second)
	if res := loadertest.Result(t, l, loadertest.Job("fixed", loadertest.Hello, 10*time.Second)); !res.Success {
		t.Errorf("Execute once the runtime works = %+v, want success", res)
	}
}

// countLines counts the lines of the file at path (0 if it is missing).
func countLines(path string) int {
	data, _ := os.ReadFile(path)
	return strings.Count(string(data), "\n")
}

// closeWithin closes l, failing the test if Close errs or takes longer than
// limit (a wide bound: a hung Close is the failure, not a slow one).
func closeWithin(t *testing.T, l *local.Pool, limit time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(limit):
		t.Errorf("Close did not return within %v", limit)
	}
}

// TestEmitErrorCancelsExecution: an emit that fails (the client is gone)
// ends the execution: Execute returns its error, and the shim lets go of
// the guest, which would otherwise wait ten minutes.
func TestEmitErrorCancelsExecution(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	stop := errors.New("client gone")
	err := l.Execute(context.Background(), loadertest.Job("emit", `export default { async fetch() {
		console.log("first");
		await new Promise((r) => setTimeout(r, 600000));
		console.log("second");
		return new Response("ok");
	} }`, 15*time.Minute), func(ev execution.Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("Execute = %v, want the emit error", err)
	}
	// The shim notices the hang-up at its next ping and signals nothing:
	// poll what it holds.
	if !testwait.Until(30*time.Second, func() bool { return loadertest.ShimExecutions(t, l) == 0 }) {
		t.Errorf("the shim holds %d executions after Execute returned, want the guest let go", loadertest.ShimExecutions(t, l))
	}
}

package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
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
	var wg sync.WaitGroup
	var inflight []execution.Event
	var inflightErr error
	wg.Go(func() {
		inflight, inflightErr = loadertest.Run(t, l, loadertest.Job("slow", `export default { async fetch() {
			console.log("started");
			await new Promise((r) => setTimeout(r, 1500));
			return new Response("late");
		} }`, 30*time.Second))
	})
	deadline := time.Now().Add(10 * time.Second)
	pid := l.PIDs()[0]
	time.Sleep(300 * time.Millisecond) // let the execution reach its timer
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill workerd %d: %v", pid, err)
	}
	wg.Wait()
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

	// A new process comes up on its own and serves executions.
	for pids := l.PIDs(); len(pids) == 0 || pids[0] == pid; pids = l.PIDs() {
		if time.Now().After(deadline) {
			t.Fatal("no new runtime process within 10s of the kill")
		}
		time.Sleep(10 * time.Millisecond)
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

func TestBrokenRuntimeIsRetriedNotFatal(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "workerd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho broken runtime >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := local.New(local.Config{Workerd: bin, StartTimeout: time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := l.Ready(t.Context()); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Ready = %v, want execution.ErrUnavailable", err)
	}
	if _, err := loadertest.Run(t, l, loadertest.Job("x", loadertest.Hello, time.Second)); !errors.Is(err, execution.ErrUnavailable) {
		t.Errorf("Execute = %v, want execution.ErrUnavailable", err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
}

func TestEmitErrorCancelsExecution(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop())
	defer l.Close()
	stop := errors.New("client gone")
	start := time.Now()
	err := l.Execute(context.Background(), loadertest.Job("emit", `export default { async fetch() {
		console.log("first");
		await new Promise((r) => setTimeout(r, 5000));
		console.log("second");
		return new Response("ok");
	} }`, 30*time.Second), func(ev execution.Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("Execute = %v, want the emit error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Execute returned after %v, want at once after emit failed", d)
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// TestRun drives the gateway exactly as main does: run with arguments and an
// environment, then the seed's example over HTTP, then shutdown by context.
func TestRun(t *testing.T) {
	g := startServing(t, map[string]string{})
	ctx, base, stdout, stderr := g.ctx, g.base, g.stdout, g.stderr

	if err := run(ctx, []string{"healthcheck", base + "/healthz"}, nil, nil, stdout, stderr); err != nil {
		t.Errorf("healthcheck /healthz = %v, want nil", err)
	}
	if err := run(ctx, []string{"healthcheck", base + "/nope"}, nil, nil, stdout, stderr); err == nil {
		t.Errorf("healthcheck /nope = nil, want an error")
	}

	body := `{"code": "export default { async fetch(request, env, ctx) { console.log(\"Isolated worker running!\"); return new Response(\"Done\"); } }"}`
	resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res execution.Result
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Success || res.Stdout != "Isolated worker running!" || res.Response == nil || res.Response.Body != "Done" {
		t.Errorf("result = %+v, want the seed example's output", res)
	}

	runtimes := childWorkerds(t)
	if len(runtimes) == 0 {
		t.Error("found no workerd child process while serving")
	}
	g.stop(t)
	for _, pid := range runtimes {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("workerd %d still running after run returned", pid)
		}
	}
	log := stdout.String()
	for _, want := range []string{`"message":"gateway listening"`, `"message":"runtime started"`, `"route":"/execute"`, `"message":"shutting down"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

// served is a gateway that run serves, as main runs it, for a test.
type served struct {
	ctx            context.Context
	base           string
	stdout, stderr *loadertest.Buffer
	cancel         context.CancelFunc
	done           chan error
}

// startServing runs `gateway serve` on a free loopback port with env (the
// workerd binary added) and extra arguments, and waits until it is ready.
func startServing(t *testing.T, env map[string]string, args ...string) *served {
	t.Helper()
	env["GATEWAY_RUNTIME_WORKERD"] = loadertest.Workerd(t)
	if _, ok := env["GATEWAY_STORAGE_PATH"]; !ok {
		env["GATEWAY_STORAGE_PATH"] = filepath.Join(t.TempDir(), "executions.db")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	g := &served{ctx: ctx, stdout: &loadertest.Buffer{}, stderr: &loadertest.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		args := append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)
		g.done <- run(ctx, args, func(k string) string { return env[k] }, nil, g.stdout, g.stderr)
	}()
	g.base = "http://" + waitListening(t, g.stdout, g.done)
	waitReady(t, g.base, g.stdout)
	return g
}

// stop cancels the gateway's context and checks that run returns nil
// within 30 s.
func (g *served) stop(t *testing.T) {
	t.Helper()
	g.cancel()
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("run = %v, want nil after shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of cancellation")
	}
}

func waitListening(t *testing.T, stdout *loadertest.Buffer, done <-chan error) string {
	t.Helper()
	// The log line signals nothing: poll for it (or for run's return).
	var listen string
	var early error
	returned := false
	testwait.Until(30*time.Second, func() bool {
		for _, line := range strings.Split(stdout.String(), "\n") {
			var entry struct {
				Message string `json:"message"`
				Listen  string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Message == "gateway listening" {
				listen = entry.Listen
				return true
			}
		}
		select {
		case early = <-done:
			returned = true
		default:
		}
		return returned
	})
	switch {
	case returned:
		t.Fatalf("run returned early: %v\n%s", early, stdout.String())
	case listen == "":
		t.Fatalf("gateway did not log its address within 30s:\n%s", stdout.String())
	}
	return listen
}

func TestRunRejectsBadInvocations(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "no command"},
		{[]string{"launch"}, nil, "unknown command"},
		{[]string{"serve", "--no-such-flag"}, nil, "unknown flag"},
		{[]string{"serve"}, map[string]string{"GATEWAY_LISTEN": "bad"}, "listen"},
	}
	for _, tt := range tests {
		var stdout, stderr loadertest.Buffer
		err := run(t.Context(), tt.args, func(k string) string { return tt.env[k] }, nil, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}

// childWorkerds returns the workerd processes this test process started.
func childWorkerds(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(workerd") {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestRunDrainsOnShutdown checks that a streaming execution running when
// the signal comes finishes normally, and that the gateway then stops with
// its runtimes.
func TestRunDrainsOnShutdown(t *testing.T) {
	env := map[string]string{"GATEWAY_RUNTIME_WORKERD": loadertest.Workerd(t), "GATEWAY_HTTP_SHUTDOWN_GRACE": "20s",
		"GATEWAY_STORAGE_PATH": filepath.Join(t.TempDir(), "executions.db")}
	var stdout, stderr loadertest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--processes", "1"}, func(k string) string { return env[k] }, nil, &stdout, &stderr)
	}()
	base := "http://" + waitListening(t, &stdout, done)
	waitReady(t, base, &stdout)
	runtimes := childWorkerds(t)

	// A streaming execution is running when the signal comes.
	type outcome struct {
		lines []string
		err   error
	}
	firstEvent := make(chan struct{})
	finished := make(chan outcome, 1)
	go func() {
		body := `{"code": "export default { async fetch() { console.log('begun'); await new Promise((r) => setTimeout(r, 1500)); console.log('still here'); return new Response('finished'); } }"}`
		req, _ := http.NewRequest(http.MethodPost, base+"/execute", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(firstEvent)
			finished <- outcome{err: err}
			return
		}
		defer resp.Body.Close()
		var o outcome
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			o.lines = append(o.lines, sc.Text())
			if len(o.lines) == 2 {
				close(firstEvent)
			}
		}
		o.err = sc.Err()
		finished <- o
	}()
	<-firstEvent
	cancel() // what SIGTERM does through signal.NotifyContext
	o := <-finished
	last := ""
	if len(o.lines) > 0 {
		last = o.lines[len(o.lines)-1]
	}
	if o.err != nil || len(o.lines) != 4 || !strings.Contains(last, `"type":"result"`) || !strings.Contains(last, `"success":true`) || !strings.Contains(strings.Join(o.lines, "\n"), "still here") {
		t.Errorf("stream during shutdown = %q, %v; want it to run to its result", o.lines, o.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	for _, pid := range runtimes {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("workerd %d still running after shutdown", pid)
		}
	}
}

func waitReady(t *testing.T, base string, stdout *loadertest.Buffer) {
	t.Helper()
	// Readiness is only seen by asking: poll /readyz.
	ready := testwait.Until(30*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("/readyz not 200 within 30s; log:\n%s", stdout.String())
	}
}

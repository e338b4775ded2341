package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestTerminalColours: on a terminal, debug lines are dim, stderr lines
// yellow and the error red; NO_COLOR or TERM=dumb turn colour off.
func TestTerminalColours(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	term := terminal{stdout: &stdout, stderr: &stderr, colorOut: true, colorErr: true}
	term.log(&execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "plain"})
	term.log(&execution.Log{Level: "debug", Stream: execution.StreamStdout, Message: "quiet"})
	term.log(&execution.Log{Level: "warn", Stream: execution.StreamStderr, Message: "careful"})
	_ = term.fail(exitGuest, "exception", "boom")
	if want := "plain\n\x1b[2mquiet\x1b[0m\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if want := "\x1b[33mcareful\x1b[0m\n\x1b[31merror: exception: boom\x1b[0m\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	for _, env := range []map[string]string{{"NO_COLOR": "1"}, {"TERM": "dumb"}} {
		tty := newTerminal(os.Stdout, os.Stderr, func(k string) string { return env[k] })
		if tty.colorOut || tty.colorErr {
			t.Errorf("newTerminal with %v has colour on, want off", env)
		}
	}
}

// TestExecMarksRestart: when the gateway runs an execution again, exec
// prints a marker on stderr between the lost run's output and the new one.
func TestExecMarksRestart(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, ev := range []string{
			`{"type":"start","id":"ex_1"}`,
			`{"type":"log","level":"log","stream":"stdout","message":"first run","time":"2026-11-26T12:00:00Z"}`,
			`{"type":"restart","reason":"runtime_crashed"}`,
			`{"type":"log","level":"log","stream":"stdout","message":"second run","time":"2026-11-26T12:00:01Z"}`,
			`{"type":"result","id":"ex_1","success":true,"stdout":"second run","stderr":"","truncated":false,"outbound":[],"warm":false,"durationMs":1}`,
		} {
			fmt.Fprintln(w, ev)
		}
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"exec", "--url", srv.URL, "-"}, func(string) string { return "" }, strings.NewReader(`export default { fetch() { return new Response("x"); } }`), &stdout, &stderr)
	if err != nil {
		t.Fatalf("run() = %v", err)
	}
	if stdout.String() != "first run\nsecond run\n" {
		t.Errorf("stdout = %q, want both runs' output", stdout.String())
	}
	if want := "note: the gateway runs the execution again (runtime_crashed); the output above is void\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

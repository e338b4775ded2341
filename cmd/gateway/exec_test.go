// Tests of `gateway exec`, the terminal client, against a real gateway:
// output for people and for pipes, exit codes, interrupts
// (exec_request_test.go: the request its flags build; terminal_test.go:
// how it prints).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// testGateway is a real gateway, with the real workerd runtime, and a
// second gateway with an API key in front of the same runtime.
type testGateway struct {
	url, keyedURL, key string
}

// startGateway starts a gateway for one test. Each test stops its own
// runtime: TestRun checks that no workerd outlives the gateway.
func startGateway(t *testing.T) testGateway {
	t.Helper()
	key, entry := apitest.NewKey(t, "cli")
	opts := apitest.Options()
	backend := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { backend.Close() })
	open := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), backend, opts))
	t.Cleanup(open.Close)
	opts.Keys = auth.NewKeyring([]auth.Key{entry})
	keyed := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), backend, opts))
	t.Cleanup(keyed.Close)
	return testGateway{url: open.URL, keyedURL: keyed.URL, key: key}
}

// execResult is what one run of gateway exec did.
type execResult struct {
	exit           int
	stdout, stderr string
	err            error
}

// runExec runs `gateway exec args...` as main would, with env as its
// environment and stdin as its standard input.
func runExec(t *testing.T, env map[string]string, stdin string, args ...string) execResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"exec"}, args...), func(k string) string { return env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	return execResult{exit: exitCode(t, err), stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// exitCode is the status main exits with for err.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	}
	t.Errorf("run() = %v, want nil or an *exitError", err)
	return 1
}

// writeFiles writes files (name → content) under a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	helloWorker = `export default { fetch() {
		console.log("hello"); console.info("info"); console.warn("careful"); console.error("bad");
		return new Response("Done");
	} }`
	throwingWorker = `export default { fetch() { console.log("before"); throw new Error("boom"); } }`
)

func TestExec(t *testing.T) {
	base := startGateway(t).url
	dir := writeFiles(t, map[string]string{
		"hello.js": helloWorker,
		"throw.js": throwingWorker,
		"app/main.js": `import { greet } from "./lib/greet.js"; import cfg from "./config.json";
			export default { fetch() { console.log(greet(cfg.name)); return new Response(); } }`,
		"app/lib/greet.js": `export function greet(name) { return "hi " + name; }`,
		"app/config.json":  `{"name": "modules"}`,
		"outside.js":       `export const x = 1;`,
	})
	file := func(name string) string { return filepath.Join(dir, name) }
	url := "--url=" + base
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		stdin      string
		wantExit   int
		wantStdout string   // exact, unless wantJSON
		wantStderr string   // exact, if set
		wantHas    []string // in stderr: exact lines where the server words them
		wantJSON   bool     // stdout is a result: check it decodes
	}{
		{
			name: "file", args: []string{url, file("hello.js")},
			wantStdout: "hello\ninfo\nDone\n", wantStderr: "careful\nbad\n",
		},
		{
			name: "stdin", args: []string{url, "-"}, stdin: helloWorker,
			wantStdout: "hello\ninfo\nDone\n", wantStderr: "careful\nbad\n",
		},
		{
			name: "plain script", args: []string{url, "-"}, stdin: "console.log(await Promise.resolve('hi'));\nreturn { answer: 6 * 7 };",
			wantStdout: "hi\n{\"answer\":42}\n",
		},
		{
			name: "stdin without FILE, URL from the environment", env: map[string]string{"GATEWAY_URL": base}, stdin: helloWorker,
			wantStdout: "hello\ninfo\nDone\n", wantStderr: "careful\nbad\n",
		},
		{
			name: "guest exception", args: []string{url, file("throw.js")}, wantExit: exitGuest,
			wantStdout: "before\n", wantHas: []string{"error: exception: Error: boom\n    at Object.fetch (main.js:"},
		},
		{
			name: "timeout", args: []string{url, "--timeout=300ms", "-"}, wantExit: exitGuest,
			stdin:   `export default { async fetch() { await new Promise(r => setTimeout(r, 5000)); return new Response("late"); } }`,
			wantHas: []string{"error: timeout: "},
		},
		{
			name: "json", args: []string{url, "--json", file("hello.js")}, wantJSON: true,
		},
		{
			name: "json with a guest failure", args: []string{url, "--json", file("throw.js")}, wantJSON: true, wantExit: exitGuest,
			wantHas: []string{"error: exception: Error: boom\n    at Object.fetch (main.js:"},
		},
		{
			name: "env and secrets",
			args: []string{url, `--env=WHO=world`, "--env", "N=41", "--env", `OBJ={"a": [1, 2]}`, "--env", "RAW=not json", "--env", "T=true", "--secret", "TOKEN=s3cr3t-value", "-"},
			stdin: `export default { fetch(request, env) {
				console.log(env.WHO, env.N + 1, env.OBJ.a[1], typeof env.RAW, env.T === true, env.TOKEN);
				console.error("token: " + env.TOKEN);
				return new Response(env.TOKEN);
			} }`,
			wantStdout: "world 42 2 string true [REDACTED]\n[REDACTED]\n", wantStderr: "token: [REDACTED]\n",
		},
		{
			name: "binary body", args: []string{url, "-"},
			stdin:      `export default { fetch() { return new Response(new Uint8Array([0xff, 0x00, 0x41])); } }`,
			wantStdout: "\xff\x00A\n",
		},
		{
			name: "modules", args: []string{url, file("app/main.js"), "--module", file("app/lib/greet.js"), "--module", file("app/config.json")},
			wantStdout: "hi modules\n",
		},
		{
			name: "module outside the main module's directory", args: []string{url, file("app/main.js"), "--module", file("outside.js")}, wantExit: exitUsage,
			wantStderr: "error: usage: --module " + file("outside.js") + " is not under " + file("app") + ", the main module's directory\n" + `run "gateway exec --help" for usage` + "\n",
		},
		{
			name: "invalid request", args: []string{url, "--compat-date=yesterday", "--timeout=1h", file("hello.js")}, wantExit: exitGateway,
			wantHas: []string{
				"error: invalid_request: ",
				"\n  compatibilityDate: \"yesterday\" is not a date (YYYY-MM-DD) (invalid)\n",
				"\n  timeoutMs: ", " (out_of_range)\n",
			},
		},
		{
			name: "unknown flag", args: []string{url, "--nope", file("hello.js")}, wantExit: exitUsage,
			wantStderr: "error: usage: unknown flag: --nope\n" + `run "gateway exec --help" for usage` + "\n",
		},
		{name: "two files", args: []string{url, file("hello.js"), file("throw.js")}, wantExit: exitUsage, wantHas: []string{"error: usage: one FILE at most"}},
		{name: "env without a value", args: []string{url, "--env", "WHO", file("hello.js")}, wantExit: exitUsage, wantHas: []string{`error: usage: --env "WHO" must be NAME=VALUE`}},
		{name: "missing file", args: []string{url, file("nope.js")}, wantExit: exitUsage, wantHas: []string{"error: usage: ", "nope.js"}},
		{name: "negative timeout", args: []string{url, "--timeout=-1s", file("hello.js")}, wantExit: exitUsage, wantHas: []string{"error: usage: --timeout"}},
		{name: "unreachable", args: []string{"--url=http://127.0.0.1:1", file("hello.js")}, wantExit: exitGateway, wantHas: []string{"error: unreachable: ", "connection refused"}},
		{name: "help", args: []string{"--help"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runExec(t, tt.env, tt.stdin, tt.args...)
			if got.exit != tt.wantExit {
				t.Errorf("exit = %d (%v), want %d; stderr:\n%s", got.exit, got.err, tt.wantExit, got.stderr)
			}
			if tt.wantExit != 0 && !strings.HasPrefix(got.stderr, "error: ") {
				t.Errorf("stderr = %q, want it to start with error: <code>", got.stderr)
			}
			if (tt.wantStderr != "" || tt.wantHas == nil) && got.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got.stderr, tt.wantStderr)
			}
			for _, want := range tt.wantHas {
				if !strings.Contains(got.stderr, want) {
					t.Errorf("stderr = %q, want it to contain %q", got.stderr, want)
				}
			}
			if strings.Contains(got.stdout+got.stderr, "s3cr3t-value") || strings.Contains(got.stdout+got.stderr, "\x1b[") {
				t.Errorf("output has a secret or colour codes: %q, %q", got.stdout, got.stderr)
			}
			switch {
			case tt.wantJSON:
				checkJSONResult(t, got.stdout, tt.wantExit == 0)
			case tt.name == "help":
				if !strings.Contains(got.stdout, "usage: gateway exec") || !strings.Contains(got.stdout, "--allow-outbound") {
					t.Errorf("help = %q, want the usage with its flags", got.stdout)
				}
			case got.stdout != tt.wantStdout:
				t.Errorf("stdout = %q, want %q", got.stdout, tt.wantStdout)
			}
		})
	}
}

// checkJSONResult checks that stdout is one indented result of helloWorker
// (or throwingWorker when it failed).
func checkJSONResult(t *testing.T, stdout string, success bool) {
	t.Helper()
	var res execution.Result
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("stdout is not a result: %v\n%s", err, stdout)
	}
	if !strings.HasPrefix(stdout, "{\n  \"id\": ") || !strings.HasSuffix(stdout, "}\n") {
		t.Errorf("stdout = %q, want an indented JSON object and a newline", stdout)
	}
	if res.ID == "" || res.Success != success {
		t.Errorf("result = %+v, want an id and success %v", res, success)
	}
	if success && (res.Stdout != "hello\ninfo" || res.Stderr != "careful\nbad" || len(res.Logs) != 4 || res.Response.Body != "Done") {
		t.Errorf("result = %+v, want hello's output, its four logs and body", res)
	}
	if !success && (res.Error == nil || res.Error.Code != execution.CodeException || res.Stdout != "before") {
		t.Errorf("result = %+v, want an exception after the log", res)
	}
}

func TestExecAPIKey(t *testing.T) {
	g := startGateway(t)
	url, key := g.keyedURL, g.key
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantExit int
	}{
		{"no key", []string{"--url", url, "-"}, nil, exitGateway},
		{"wrong key", []string{"--url", url, "--key", "dwk_wrong", "-"}, nil, exitGateway},
		{"key flag", []string{"--url", url, "--key", key, "-"}, nil, 0},
		{"key from the environment", []string{"-"}, map[string]string{"GATEWAY_URL": url, "GATEWAY_API_KEY": key}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runExec(t, tt.env, helloWorker, tt.args...)
			if got.exit != tt.wantExit {
				t.Fatalf("exit = %d, want %d; stderr:\n%s", got.exit, tt.wantExit, got.stderr)
			}
			if tt.wantExit != 0 && !strings.HasPrefix(got.stderr, "error: unauthorized: ") {
				t.Errorf("stderr = %q, want error: unauthorized", got.stderr)
			}
			if tt.wantExit == 0 && got.stdout != "hello\ninfo\nDone\n" {
				t.Errorf("stdout = %q, want hello's output", got.stdout)
			}
		})
	}
}

// writes records each Write call.
type writes struct {
	mu   sync.Mutex
	data []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.data = append(w.data, string(p))
	return len(p), nil
}

// TestExecStreamsLive: exec writes each console line as it comes, in its
// own write, then the response. That a line is written while the guest
// still runs is TestExecInterrupted's: there the first write stops a guest
// that would otherwise wait a minute.
func TestExecStreamsLive(t *testing.T) {
	base := startGateway(t).url
	code := `export default { async fetch() {
		console.log("first");
		await new Promise(r => setTimeout(r, 300));
		console.log("second");
		return new Response("end");
	} }`
	var stdout, stderr writes
	err := run(t.Context(), []string{"exec", "--url", base, "-"}, func(string) string { return "" }, strings.NewReader(code), &stdout, &stderr)
	if err != nil {
		t.Fatalf("run() = %v, want nil", err)
	}
	if got := strings.Join(stdout.data, ""); got != "first\nsecond\nend\n" {
		t.Fatalf("stdout = %q, want first, second, end", got)
	}
	if stdout.data[0] != "first\n" {
		t.Fatalf("first write = %q, want the first line alone", stdout.data[0])
	}
}

// cancelOnWrite cancels a context at the first write.
type cancelOnWrite struct {
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.cancel()
	return w.buf.Write(p)
}

// TestExecInterrupted cancels run's context, as a signal does, at the
// first line the guest prints, while it waits a minute: exec stops at once
// and exits 130. Had it waited for the guest, or printed nothing before the
// result, it would end with the guest's timeout (10 s by default) instead.
func TestExecInterrupted(t *testing.T) {
	base := startGateway(t).url
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := &cancelOnWrite{cancel: cancel}
	var stderr bytes.Buffer
	code := `export default { async fetch() { console.log("sleeping"); await new Promise(r => setTimeout(r, 60000)); return new Response("late"); } }`
	err := run(ctx, []string{"exec", "--url", base, "-"}, func(string) string { return "" }, strings.NewReader(code), stdout, &stderr)
	if got := exitCode(t, err); got != exitInterrupted {
		t.Errorf("exit = %d (%v), want %d", got, err, exitInterrupted)
	}
	if stdout.buf.String() != "sleeping\n" || !strings.HasPrefix(stderr.String(), "error: interrupted: ") {
		t.Errorf("stdout, stderr = %q, %q; want the log, then error: interrupted", stdout.buf.String(), stderr.String())
	}
}

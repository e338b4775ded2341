package shim_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
)

// These tests run the shim in the real runtime through the local backend,
// which sends a job as it is given: no request validation stands between a
// test and the shim, so they reach what only a malformed job would.

func startShim(t *testing.T) *local.Pool {
	t.Helper()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	return l
}

// execute runs j and returns its result, or the error the backend returned.
func executeJob(t *testing.T, l *local.Pool, j *execution.Job) (*execution.Result, []*execution.Log, error) {
	t.Helper()
	var res *execution.Result
	var logs []*execution.Log
	err := l.Execute(t.Context(), j, func(ev execution.Event) error {
		switch ev.Type {
		case execution.EventResult:
			res = ev.Result
		case execution.EventLog:
			logs = append(logs, ev.Log)
		}
		return nil
	})
	if err == nil && res == nil {
		t.Fatalf("execution %s ended without a result", j.ID)
	}
	return res, logs, err
}

// TestMainModuleNameIsData runs main modules whose names would break out of
// a string literal or a comment if they were spliced into source. The name
// reaches the wrapper as data: the module named runs, or, where the URL
// resolution of its specifier differs from its name (a newline is dropped, a
// backslash becomes a slash) or the runtime refuses the name, it is an
// invalid module; no other code ever runs.
func TestMainModuleNameIsData(t *testing.T) {
	t.Parallel()
	l := startShim(t)
	names := []string{
		`a"b.js`, `a'b.js`, "a`${globalThis.x = 1}`.js", "a*/b.js", "/*a*/b.js", "a\u2028b.js", "a\u2029b.js",
		`a");globalThis.pwned=1;//.js`, "a\n;globalThis.pwned=1;//.js", "a\r\nb.js", `a\b.js`, `a\u0022b.js`,
		"a%22b.js", "</script>.js", "a b.js", "é.js",
	}
	for i, name := range names {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			t.Parallel()
			j := loadertest.Job(fmt.Sprintf("name-%d", i), "", 10*time.Second)
			j.Modules = map[string]string{
				name: `export default { fetch() { return new Response(globalThis.pwned === undefined ? "named" : "pwned"); } }`,
				// What a mangled specifier could resolve to instead.
				"ab.js": `export default { fetch() { return new Response("decoy"); } }`,
			}
			j.MainModule = name
			res, _, err := executeJob(t, l, j)
			switch {
			case err != nil:
				t.Fatalf("name %q: Execute = %v", name, err)
			case res.Success && res.Response.Body == "named":
			case !res.Success && res.Error.Code == execution.CodeInvalidModule:
				t.Logf("name %q: %s", name, res.Error.Message)
			default:
				t.Errorf("name %q: result %+v (error %+v), want the module named to run or not be found", name, res.Response, res.Error)
			}
		})
	}
}

// TestShimRefusesJobsWithoutCaps: the gateway always sends its caps, so a job
// without one is malformed; the shim keeps no default to run it with.
func TestShimRefusesJobsWithoutCaps(t *testing.T) {
	t.Parallel()
	l := startShim(t)
	cases := map[string]func(j *execution.Job){
		"maxResponseBytes 0":  func(j *execution.Job) { j.MaxResponseBytes = 0 },
		"maxResponseBytes -1": func(j *execution.Job) { j.MaxResponseBytes = -1 },
		"maxLogLineBytes 0":   func(j *execution.Job) { j.MaxLogLineBytes = 0 },
		"maxLogLineBytes -1":  func(j *execution.Job) { j.MaxLogLineBytes = -1 },
		"maxLogBytes 0":       func(j *execution.Job) { j.MaxLogBytes = 0 },
		"maxLogBytes -1":      func(j *execution.Job) { j.MaxLogBytes = -1 },
		"mainModule missing":  func(j *execution.Job) { j.MainModule = "other.js" },
		"mainModule empty":    func(j *execution.Job) { j.MainModule = "" },
		"modules null":        func(j *execution.Job) { j.Modules = nil },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			j := loadertest.Job("caps", `export default { fetch() { return new Response("ran"); } }`, 10*time.Second)
			change(j)
			_, _, err := executeJob(t, l, j)
			var rejected *execution.RejectedError
			field := strings.Fields(name)[0]
			if !errors.As(err, &rejected) || !strings.Contains(rejected.Message, "invalid job: "+field) {
				t.Errorf("Execute = %v, want the job refused for its %s", err, field)
			}
		})
	}
}

// TestShimReservesTheOptionsModule: no guest module may take the place of
// the wrapper's options, however its name is spelled.
func TestShimReservesTheOptionsModule(t *testing.T) {
	t.Parallel()
	l := startShim(t)
	for _, name := range []string{"__dw_options.json", "__dw_options.js", "__DW_OPTIONS.json", "sub/__dw_options.json", "__Dw_options.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			j := loadertest.Job("options", `export default { fetch() { return new Response("ran"); } }`, 10*time.Second)
			j.Modules[name] = `{"main": "main.js", "maxLogLineBytes": 1e9}`
			_, _, err := executeJob(t, l, j)
			var rejected *execution.RejectedError
			if !errors.As(err, &rejected) || rejected.Field != "modules" {
				t.Errorf("Execute = %v, want the module name refused", err)
			}
		})
	}
}

// liftCaps imports the wrapper's options and raises every cap, then prints a
// line and answers with a body both past the job's caps.
const liftCaps = `import options from "./__dw_options.json";
options.maxLogLineBytes = 1e9; options.maxLogBytes = 1e9; options.maxResponseBytes = 1e9;
options.maxErrorText = 1e9; options.main = "evil.js"; options.reuse = !options.reuse;
export default { fetch() { console.log("l".repeat(1000)); return new Response("b".repeat(1000)); } }`

// TestGuestCannotChangeTheWrappersOptions: the guest may import the options
// module and change the object, but the wrapper copied it before any guest
// code ran, also for the next execution of a reused isolate.
func TestGuestCannotChangeTheWrappersOptions(t *testing.T) {
	t.Parallel()
	l := startShim(t)
	for _, reuse := range []string{"", "lift-caps"} {
		for run := range 2 {
			j := loadertest.Job("lift", liftCaps, 10*time.Second)
			j.Modules["evil.js"] = `export default { fetch() { return new Response("evil"); } }`
			j.MaxLogLineBytes, j.MaxResponseBytes = 100, 100
			j.ReuseKey = reuse
			res, logs, err := executeJob(t, l, j)
			if err != nil || !res.Success {
				t.Fatalf("reuse %q run %d: Execute = %v, result %+v", reuse, run, err, res)
			}
			if len(logs) != 1 || len(logs[0].Message) != 100 || !logs[0].Truncated {
				t.Errorf("reuse %q run %d: logs %+v, want one line cut to 100 bytes", reuse, run, logs)
			}
			if res.Response.Body != strings.Repeat("b", 100) || !res.Truncated {
				t.Errorf("reuse %q run %d: body %d bytes, truncated %v; want main.js's, cut to 100", reuse, run, len(res.Response.Body), res.Truncated)
			}
			if res.Warm != (reuse != "" && run == 1) {
				t.Errorf("reuse %q run %d: warm = %v", reuse, run, res.Warm)
			}
		}
	}
}

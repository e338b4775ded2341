package main

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/store"
)

// historyURL starts a gateway with execution records for one test.
func historyURL(t *testing.T) string {
	t.Helper()
	backend := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { backend.Close() })
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "executions.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts := apitest.Options()
	opts.Store = st
	opts.Records = executions.RecordOptions{Workers: 1,
		Callbacks: executions.CallbackOptions{Secret: func(string) []byte { return []byte("exec-async-test-secret") }}}
	srv := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), backend, opts))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestExecAsyncFollow queues a Worker with --async and prints its events
// with --follow: the same output and exit status as a plain exec.
func TestExecAsyncFollow(t *testing.T) {
	base := historyURL(t)
	env := map[string]string{"GATEWAY_URL": base}
	for _, tt := range []struct {
		name, code, stdout string
		exit               int
	}{
		{"success", `export default { async fetch() { console.log("one"); console.log("two"); return new Response("body"); } }`, "one\ntwo\nbody", 0},
		{"guest failure", `export default { fetch() { console.log("before"); throw new Error("boom"); } }`, "before", exitGuest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub := runExec(t, env, tt.code, "--async", "--callback-url", "https://example.com/cb", "-")
			id := strings.TrimSpace(sub.stdout)
			if sub.exit != 0 || !strings.HasPrefix(id, "ex_") {
				t.Fatalf("exec --async = exit %d, stdout %q, stderr %q; want 0 and an id", sub.exit, sub.stdout, sub.stderr)
			}
			got := runExec(t, env, "", "--follow", id)
			if got.exit != tt.exit || !strings.HasPrefix(got.stdout, tt.stdout) {
				t.Errorf("exec --follow = exit %d, stdout %q (stderr %q); want %d, %q", got.exit, got.stdout, got.stderr, tt.exit, tt.stdout)
			}
			if js := runExec(t, env, "", "--follow", id, "--json"); js.exit != tt.exit || !strings.Contains(js.stdout, `"status": "finished"`) {
				t.Errorf("exec --follow --json = exit %d, %q; want the finished record", js.exit, js.stdout)
			}
		})
	}
	for _, args := range [][]string{
		{"--async", "--follow", "ex_a", "-"},
		{"--callback-url", "https://example.com", "-"},
		{"--follow", "ex_a", "file.js"},
	} {
		if got := runExec(t, env, "", args...); got.exit != exitUsage {
			t.Errorf("exec %v = exit %d, want %d", args, got.exit, exitUsage)
		}
	}
	if got := runExec(t, env, "", "--follow", "ex_nosuch"); got.exit != exitGateway || !strings.Contains(got.stderr, "not_found") {
		t.Errorf("exec --follow unknown = exit %d, stderr %q; want %d not_found", got.exit, got.stderr, exitGateway)
	}
}

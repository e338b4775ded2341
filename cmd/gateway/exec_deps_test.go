package main

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// TestExecDependencies: gateway exec --dep notes on stderr what it resolves
// and what it resolved to (then that it came from the cache), and the
// guest's output alone is on stdout.
func TestExecDependencies(t *testing.T) {
	m, err := packages.New(packages.Options{Registry: packagestest.Upstream(t).URL(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	opts := apitest.Options()
	opts.Packages = m
	backend := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { backend.Close() })
	gw := httptest.NewServer(apitest.Serve(t, zerolog.Nop(), backend, opts))
	t.Cleanup(gw.Close)

	dir := writeFiles(t, map[string]string{"id.js": `import { nanoid } from "nanoid"; console.log("id length", nanoid().length)`})
	env := map[string]string{"GATEWAY_URL": gw.URL}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`note: dependencies nanoid@5\.0\.9 \(in \d+ ms\)`),
		regexp.MustCompile(`note: dependencies nanoid@5\.0\.9 \(from the gateway's cache\)`),
	} {
		r := runExec(t, env, "", "--dep", "nanoid@5.0.9", dir+"/id.js")
		if r.exit != 0 || r.stdout != "id length 21\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and only the guest's line", r.exit, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "note: resolving nanoid@5.0.9") || !want.MatchString(r.stderr) {
			t.Errorf("stderr = %q, want the resolving note and %v", r.stderr, want)
		}
	}
}

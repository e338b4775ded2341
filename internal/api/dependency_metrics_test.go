package api_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// TestDependencyAndScriptMetrics: the dependency cache's and the stored
// scripts' figures count what happened: a set resolved from the registry,
// then had from the cache; a refusal by its kind; a bundle timed; a new
// version, then the same content again; a script's first run decoded from
// the store, the next from memory.
func TestDependencyAndScriptMetrics(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "greet", "1.0.0", map[string]any{"type": "module", "main": "index.js"}, map[string]string{"index.js": `export const greet = (w) => "hello " + w;`})
	m := metrics.New()
	alice, _ := scriptsGateway(t, reg, func(g *apitest.Gateway) { g.Metrics = m })
	ctx := t.Context()
	src := &client.ScriptSource{
		Code:         `import { greet } from "greet"; export default { fetch() { return new Response(greet("world")); } };`,
		Dependencies: map[string]string{"greet": "^1.0.0"},
	}
	for i, want := range []bool{true, false} {
		if _, created, err := alice.PutScript(ctx, "hello", src); err != nil || created != want {
			t.Fatalf("PutScript #%d = created %v, %v; want created %v", i+1, created, err, want)
		}
	}
	for range 2 {
		if res, err := alice.Execute(ctx, &execution.Request{Script: "hello"}); err != nil || res.Response == nil || res.Response.Body != "hello world" {
			t.Fatalf("run hello = %+v, %v; want hello world", res, err)
		}
	}
	_, err := alice.Execute(ctx, &execution.Request{Code: `import x from "no-such-package"; export default { fetch() { return new Response(x); } };`,
		Dependencies: map[string]string{"no-such-package": "1.0.0"}})
	var gwErr *client.Error
	if !errors.As(err, &gwErr) || gwErr.Code != execution.ProblemDependencyNotFound {
		t.Fatalf("a package the registry lacks = %v, want dependency_not_found", err)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text := rec.Body.String()
	for _, line := range []string{
		`gateway_dependency_resolutions_total{outcome="resolved"} 1`,
		`gateway_dependency_resolutions_total{outcome="cached"} 1`,
		`gateway_dependency_resolutions_total{outcome="not_found"} 1`,
		`gateway_dependency_resolution_seconds_count{source="registry"} 1`,
		`gateway_dependency_resolution_seconds_count{source="cache"} 1`,
		`gateway_dependency_bundle_seconds_count 2`,
		`gateway_script_versions_total{outcome="created"} 1`,
		`gateway_script_versions_total{outcome="unchanged"} 1`,
		`gateway_script_runs_total{decoded="store"} 1`,
		`gateway_script_runs_total{decoded="cached"} 1`,
	} {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("metrics have no line %s:\n%s", line, grepLines(text, "gateway_dependency", "gateway_script"))
		}
	}
}

// grepLines are the lines of text starting with one of prefixes.
func grepLines(text string, prefixes ...string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

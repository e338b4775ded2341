package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// benchGuest imports hono and zod: a small API with validation.
const benchGuest = `import { Hono } from "hono";
import { z } from "zod";
const Body = z.object({ n: z.number() });
const app = new Hono();
app.get("/", (c) => c.json(Body.parse({ n: 1 })));
export default app;`

var benchDeps = map[string]string{"hono": "4.6.3", "zod": "3.23.8"}

// p50 is the median of ds.
func p50(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkDependencies compares an execution whose dependency set is
// cached with the same code bundled by hand (npm install, then esbuild:
// one module, as a user would send it), both through POST /execute on the
// real runtime; the metric is each one's p50 and their ratio.
//
//	go test -run '^$' -bench Dependencies -benchtime 200x ./internal/api
func BenchmarkDependencies(b *testing.B) {
	reg := packagestest.Upstream(b)
	url := depsGateway(b, reg) + "/execute"
	hand := handBundle(b, reg.URL())
	run := func(body map[string]any) time.Duration {
		data, _ := json.Marshal(body)
		start := time.Now()
		status, out := postRaw(b, url, data)
		d := time.Since(start)
		var res execution.Result
		if status != http.StatusOK || json.Unmarshal(out, &res) != nil || !res.Success {
			b.Fatalf("POST /execute = %d %s", status, out)
		}
		return d
	}
	cached := map[string]any{"code": benchGuest, "dependencies": benchDeps}
	byHand := map[string]any{"modules": map[string]string{"main.js": hand}}
	run(cached) // resolves and bundles the set once
	var withDeps, handMade []time.Duration
	for b.Loop() {
		withDeps = append(withDeps, run(cached))
		handMade = append(handMade, run(byHand))
	}
	c, h := p50(withDeps), p50(handMade)
	b.ReportMetric(float64(c.Microseconds())/1000, "cached-p50-ms")
	b.ReportMetric(float64(h.Microseconds())/1000, "by-hand-p50-ms")
	b.ReportMetric(float64(c)/float64(h), "ratio")
}

// BenchmarkFirstResolution times the first resolution of a set (a new
// cache each time: npm through the guard, the set kept, its bundle made)
// beside npm install of the same set from the same registry.
//
//	go test -run '^$' -bench FirstResolution -benchtime 5x ./internal/api
func BenchmarkFirstResolution(b *testing.B) {
	reg := packagestest.Upstream(b)
	var ours, npm []time.Duration
	for b.Loop() {
		m, err := packages.New(packages.Options{Registry: reg.URL(), Dir: b.TempDir(), MaxPackages: 500, MaxBytes: 100 << 20,
			ResolveTimeout: time.Minute, Refresh: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		set, _, err := m.Resolve(b.Context(), benchDeps)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Bundle(b.Context(), set, []string{"hono", "zod"}); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		start = time.Now()
		npmInstall(b, reg.URL(), b.TempDir())
		npm = append(npm, time.Since(start))
	}
	b.ReportMetric(float64(p50(ours).Milliseconds()), "gateway-p50-ms")
	b.ReportMetric(float64(p50(npm).Milliseconds()), "npm-install-p50-ms")
}

// npmInstall runs a plain npm install of benchDeps in dir from registry.
func npmInstall(b *testing.B, registry, dir string) {
	b.Helper()
	pj, _ := json.Marshal(map[string]any{"name": "bench", "version": "0.0.0", "dependencies": benchDeps})
	if err := os.WriteFile(filepath.Join(dir, "package.json"), pj, 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--registry="+registry, "--cache="+filepath.Join(dir, ".npm"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("npm install: %v: %s", err, out)
	}
}

// handBundle is benchGuest bundled by hand: npm install, then esbuild.
func handBundle(b *testing.B, registry string) string {
	b.Helper()
	dir := b.TempDir()
	npmInstall(b, registry, dir)
	if err := os.WriteFile(filepath.Join(dir, "main.js"), []byte(benchGuest), 0o644); err != nil {
		b.Fatal(err)
	}
	r := api.Build(api.BuildOptions{EntryPoints: []string{"main.js"}, AbsWorkingDir: dir, Bundle: true, Format: api.FormatESModule,
		Platform: api.PlatformNeutral, Conditions: []string{"workerd", "worker", "browser"}, MainFields: []string{"browser", "module", "main"},
		Outfile: "out.js", Write: false})
	if len(r.Errors) > 0 {
		b.Fatal(r.Errors[0].Text)
	}
	return string(r.OutputFiles[0].Contents)
}

package packages_test

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

func TestMain(m *testing.M) {
	transpile.MaybeServeChild() // package bundles compile in a child process
	os.Exit(m.Run())
}

// manager returns a manager on registry url with a cache of its own and
// the default bounds, changed by opts.
func manager(t *testing.T, url string, opts ...func(*packages.Options)) *packages.Manager {
	t.Helper()
	o := packages.Options{Registry: url, Dir: t.TempDir(), MaxPackages: 500, MaxBytes: 100 << 20,
		ResolveTimeout: 60 * time.Second, Refresh: 10 * time.Minute}
	for _, f := range opts {
		f(&o)
	}
	m, err := packages.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantKind fails t unless err is an *packages.Error of kind naming pkg.
func wantKind(t *testing.T, err error, kind packages.Kind, pkg string) {
	t.Helper()
	var e *packages.Error
	if !errors.As(err, &e) || e.Kind != kind || !strings.Contains(e.Package, pkg) {
		t.Fatalf("error = %v (%#v), want %s naming %s", err, e, kind, pkg)
	}
}

// TestResolveRealPackages: the fixture packages resolve to their versions
// and bundle; the same dependencies again come from the cache without a
// request to the registry.
func TestResolveRealPackages(t *testing.T) {
	t.Parallel()
	reg := packagestest.Upstream(t)
	m := manager(t, reg.URL())
	deps := map[string]string{"hono": "4.6.3", "zod": "^3.23.0", "@cf-wasm/png": "0.4.0"}
	set, cached, err := m.Resolve(t.Context(), deps)
	if err != nil {
		t.Fatalf("Resolve = %v", err)
	}
	// zod's range takes 3.23.8 from the fixtures, a later 3.x from a real registry.
	if cached || set.Versions["hono"] != "4.6.3" || !strings.HasPrefix(set.Versions["zod"], "3.") || set.Versions["@cf-wasm/png"] != "0.4.0" {
		t.Errorf("Resolve = %v (cached %v), want hono 4.6.3, zod 3.x, @cf-wasm/png 0.4.0, not cached", set.Versions, cached)
	}
	b, err := m.Bundle(t.Context(), set, []string{"@cf-wasm/png", "hono", "hono/cors", "zod"})
	if err != nil {
		t.Fatalf("Bundle = %v", err)
	}
	for _, e := range []string{"hono", "hono/cors", "zod", "@cf-wasm/png"} {
		if b.Modules[e] == "" {
			t.Errorf("bundle has no module %q", e)
		}
	}
	if len(b.Wasm) != 1 {
		t.Errorf("bundle has %d wasm modules, want 1 (@cf-wasm/png's)", len(b.Wasm))
	}
	before := reg.Requests.Load()
	again, cached, err := m.Resolve(t.Context(), deps)
	if err != nil || !cached || again.Key != set.Key || reg.Requests.Load() != before {
		t.Errorf("Resolve again = %v, cached %v, %v, %d more registry requests; want the same set from the cache", again, cached, err, reg.Requests.Load()-before)
	}
}

// TestResolveOnce: concurrent resolutions of one uncached set run npm
// once.
func TestResolveOnce(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "solo", "1.0.0", nil, map[string]string{"index.js": "export const solo = 1"})
	m := manager(t, reg.URL())
	var wg sync.WaitGroup
	keys := make([]string, 6)
	for i := range keys {
		wg.Go(func() {
			set, _, err := m.Resolve(t.Context(), map[string]string{"solo": "^1.0.0"})
			if err != nil {
				t.Errorf("Resolve = %v", err)
				return
			}
			keys[i] = set.Key
		})
	}
	wg.Wait()
	if n := reg.Requests.Load(); n != 1 {
		t.Errorf("the registry was asked %d times for solo, want once", n)
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Errorf("keys = %v, want one set", keys)
		}
	}
}

// TestNestedVersions: two packages needing different versions of one
// dependency each get theirs.
func TestNestedVersions(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "shared", "1.0.0", nil, map[string]string{"index.js": `export const v = "shared-one";`})
	reg.Add(t, "shared", "2.0.0", nil, map[string]string{"index.js": `export const v = "shared-two";`})
	for name, want := range map[string]string{"uses-one": "^1.0.0", "uses-two": "^2.0.0"} {
		reg.Add(t, name, "1.0.0", map[string]any{"type": "module", "main": "index.js", "dependencies": map[string]string{"shared": want}},
			map[string]string{"index.js": `export { v } from "shared";`})
	}
	m := manager(t, reg.URL())
	set, _, err := m.Resolve(t.Context(), map[string]string{"uses-one": "1.0.0", "uses-two": "1.0.0"})
	if err != nil {
		t.Fatalf("Resolve = %v", err)
	}
	versions := map[string]bool{}
	for _, p := range set.Packages {
		if p.Name == "shared" {
			versions[p.Version] = true
		}
	}
	if !versions["1.0.0"] || !versions["2.0.0"] {
		t.Fatalf("set has shared %v, want 1.0.0 and 2.0.0", versions)
	}
	b, err := m.Bundle(t.Context(), set, []string{"uses-one", "uses-two"})
	if err != nil {
		t.Fatalf("Bundle = %v", err)
	}
	all := ""
	for _, code := range b.Modules {
		all += code
	}
	if !strings.Contains(all, "shared-one") || !strings.Contains(all, "shared-two") {
		t.Errorf("bundle does not hold both versions of shared:\n%s", all)
	}
}

// TestScriptsNeverRun: a package's install scripts, which would write a
// file, never run.
func TestScriptsNeverRun(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	marker := t.TempDir() + "/ran"
	scripts := map[string]string{}
	for _, s := range []string{"preinstall", "install", "postinstall", "prepare"} {
		scripts[s] = `node -e "require('fs').writeFileSync('` + marker + `-` + s + `', 'x')"`
	}
	reg.Add(t, "installs-things", "1.0.0", map[string]any{"scripts": scripts}, map[string]string{"index.js": "export const x = 1"})
	m := manager(t, reg.URL())
	if _, _, err := m.Resolve(t.Context(), map[string]string{"installs-things": "1.0.0"}); err != nil {
		t.Fatalf("Resolve = %v", err)
	}
	for s := range scripts {
		if _, err := os.Stat(marker + "-" + s); err == nil {
			t.Errorf("the package's %s script ran", s)
		}
	}
}

// TestNotFound: an unknown package, an unknown version, a dist-tag that
// does not exist, each NotFound, naming it.
func TestNotFound(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "known", "1.0.0", nil, map[string]string{"index.js": "export const x = 1"})
	reg.Add(t, "needs-ghost", "1.0.0", map[string]any{"dependencies": map[string]string{"ghost": "1"}}, map[string]string{"index.js": ""})
	m := manager(t, reg.URL())
	for _, tt := range []struct {
		deps map[string]string
		pkg  string
	}{
		{map[string]string{"no-such-package": "1.0.0"}, "no-such-package"},
		{map[string]string{"known": "^9.0.0"}, "known"},
		{map[string]string{"known": "nightly"}, "known"},
		{map[string]string{"needs-ghost": "1.0.0"}, "ghost"},
	} {
		_, _, err := m.Resolve(t.Context(), tt.deps)
		wantKind(t, err, packages.NotFound, tt.pkg)
	}
}

// TestPolicy: a denied package, asked for or needed by another, and one
// the allow list does not name are Denied, naming it; the policy holds
// for a set in the cache too.
func TestPolicy(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "evil-dep", "1.0.0", nil, map[string]string{"index.js": ""})
	reg.Add(t, "nice", "1.0.0", map[string]any{"dependencies": map[string]string{"evil-dep": "1.0.0"}}, map[string]string{"index.js": ""})
	dir := t.TempDir()
	deny := manager(t, reg.URL(), func(o *packages.Options) { o.Dir = dir; o.Deny = []string{"evil-*"} })
	_, _, err := deny.Resolve(t.Context(), map[string]string{"evil-dep": "1.0.0"})
	wantKind(t, err, packages.Denied, "evil-dep")
	_, _, err = deny.Resolve(t.Context(), map[string]string{"nice": "1.0.0"})
	wantKind(t, err, packages.Denied, "evil-dep")
	allow := manager(t, reg.URL(), func(o *packages.Options) { o.Allow = []string{"nice"} })
	_, _, err = allow.Resolve(t.Context(), map[string]string{"nice": "1.0.0"})
	wantKind(t, err, packages.Denied, "evil-dep")

	open := manager(t, reg.URL(), func(o *packages.Options) { o.Dir = dir })
	if _, _, err := open.Resolve(t.Context(), map[string]string{"nice": "1.0.0"}); err != nil {
		t.Fatalf("Resolve without a policy = %v", err)
	}
	again := manager(t, reg.URL(), func(o *packages.Options) { o.Dir = dir; o.Deny = []string{"evil-dep"} })
	_, _, err = again.Resolve(t.Context(), map[string]string{"nice": "1.0.0"})
	wantKind(t, err, packages.Denied, "evil-dep")
}

// TestToken: the registry's token reaches the registry, never npm.
func TestToken(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Auth = "Bearer s3cret-token"
	reg.Add(t, "private", "1.0.0", nil, map[string]string{"index.js": "export const x = 1"})
	m := manager(t, reg.URL(), func(o *packages.Options) { o.Token = "s3cret-token" })
	if _, _, err := m.Resolve(t.Context(), map[string]string{"private": "1.0.0"}); err != nil {
		t.Fatalf("Resolve with the token = %v", err)
	}
	_, _, err := manager(t, reg.URL()).Resolve(t.Context(), map[string]string{"private": "1.0.0"})
	wantKind(t, err, packages.Denied, "private")
}

// TestOffline: offline, a set in the cache is used and any other refused.
func TestOffline(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "solo", "1.0.0", nil, map[string]string{"index.js": "export const x = 1"})
	dir := t.TempDir()
	if _, _, err := manager(t, reg.URL(), func(o *packages.Options) { o.Dir = dir }).Resolve(t.Context(), map[string]string{"solo": "^1"}); err != nil {
		t.Fatal(err)
	}
	off := manager(t, reg.URL(), func(o *packages.Options) { o.Dir = dir; o.Offline = true; o.Refresh = time.Nanosecond })
	if _, cached, err := off.Resolve(t.Context(), map[string]string{"solo": "^1"}); err != nil || !cached {
		t.Errorf("offline Resolve of a cached set = %v, cached %v", err, cached)
	}
	_, _, err := off.Resolve(t.Context(), map[string]string{"solo": "1.0.0"})
	wantKind(t, err, packages.Unavailable, "")
}

// TestPAX: a tarball whose long names are in PAX headers installs and
// bundles.
func TestPAX(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	deep := strings.Repeat("directory/", 12) + "module-with-a-long-name.js"
	reg.AddTarball("pax", "1.0.0", map[string]any{}, packagestest.Tarball(t,
		packagestest.Entry{Name: "package/package.json", Body: `{"name":"pax","version":"1.0.0","type":"module","main":"index.js"}`},
		packagestest.Entry{Name: "package/index.js", Body: `export { deep } from "./` + deep + `";`},
		packagestest.Entry{Name: "package/" + deep, Body: `export const deep = "from-the-deep";`, PAX: map[string]string{"comment": "pax"}},
	))
	m := manager(t, reg.URL())
	set, _, err := m.Resolve(t.Context(), map[string]string{"pax": "1.0.0"})
	if err != nil {
		t.Fatalf("Resolve = %v", err)
	}
	b, err := m.Bundle(t.Context(), set, []string{"pax"})
	if err != nil || !strings.Contains(b.Modules["pax"], "from-the-deep") {
		t.Fatalf("Bundle = %v, %v; want the deep module in it", b, err)
	}
}

// TestEntries: the bare specifiers of the dependencies a guest's sources
// name, and nothing else.
func TestEntries(t *testing.T) {
	t.Parallel()
	src := map[string]string{
		"main.js": `import { Hono } from "hono"; import { cors } from 'hono/cors'; import x from "./local.js";
			import "node:buffer"; const z = await import("zod"); import a from "@scope/pkg/sub/path.js";
			"hono/../../etc"; "lodash"; "honorable";`,
	}
	got := packages.Entries(src, map[string]string{"hono": "", "zod": "", "@scope/pkg": ""})
	want := []string{"@scope/pkg/sub/path.js", "hono", "hono/cors", "zod"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Entries = %v, want %v", got, want)
	}
}

// TestNPMMissing: a gateway whose npm is not installed says so, as the
// gateway's unavailability, not the request's fault; whether named as a
// bare name, a path, or a path that is a directory.
func TestNPMMissing(t *testing.T) {
	t.Parallel()
	reg := packagestest.Upstream(t)
	for _, npm := range []string{"npm-not-installed-here", "/nonexistent/bin/npm", t.TempDir()} {
		m := manager(t, reg.URL(), func(o *packages.Options) { o.NPM = npm })
		if err := m.NPMPresent(); err == nil {
			t.Errorf("NPMPresent(%q) = nil", npm)
		}
		_, _, err := m.Resolve(t.Context(), map[string]string{"zod": "^3.23.0"})
		var e *packages.Error
		if !errors.As(err, &e) || e.Kind != packages.Unavailable || !strings.Contains(e.Message, "not installed") {
			t.Errorf("npm %q: Resolve = %v, want Unavailable saying npm is not installed", npm, err)
		}
	}
	if err := manager(t, reg.URL()).NPMPresent(); err != nil {
		t.Errorf("NPMPresent with this machine's npm = %v", err)
	}
}

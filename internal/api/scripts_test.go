// End-to-end tests of stored scripts: stored with their dependencies
// bundled, run by name or version through POST /execute and POST
// /executions, each key's own; through the Go client.
package api_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
	"github.com/dynamic-workers/gateway/internal/store"
)

// scriptsGateway serves a gateway with a store, dependencies from reg and
// the keys alice and bob; it returns a client of each.
func scriptsGateway(t *testing.T, reg *packagestest.Registry, change ...func(*apitest.Gateway)) (alice, bob *client.Client) {
	t.Helper()
	gatewayURL(t)
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "executions.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := packages.New(packages.Options{Registry: reg.URL(), Dir: t.TempDir(), MaxPackages: 500, MaxBytes: 100 << 20,
		ResolveTimeout: time.Minute, Refresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	aliceKey, a := apitest.NewKey(t, "alice")
	bobKey, b := apitest.NewKey(t, "bob")
	g := apitest.Options()
	g.Limits = testLimits
	g.Keys = auth.NewKeyring([]auth.Key{a, b})
	g.Store, g.Packages = st, m
	t.Cleanup(func() { st.Close() })
	for _, c := range change {
		c(&g)
	}
	h, _ := apitest.Handler(t, zerolog.Nop(), shared.backend, g)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return client.New(srv.URL, client.WithAPIKey(aliceKey)), client.New(srv.URL, client.WithAPIKey(bobKey))
}

func TestScripts(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "greet", "1.0.0", map[string]any{"type": "module", "main": "index.js"}, map[string]string{"index.js": `export const greet = (w) => "hello " + w;`})
	reg.Add(t, "greet", "2.0.0", map[string]any{"type": "module", "main": "index.js"}, map[string]string{"index.js": `export const greet = (w) => "HELLO " + w;`})
	alice, bob := scriptsGateway(t, reg)
	ctx := t.Context()
	src := func(rng string) *client.ScriptSource {
		return &client.ScriptSource{
			Code:         `import { greet } from "greet"; export default { fetch(req, env) { return new Response(greet(env.WHO) + " " + env.MOOD); } };`,
			Dependencies: map[string]string{"greet": rng},
			Env:          map[string]any{"WHO": "world", "MOOD": "calm"},
		}
	}
	v1, created, err := alice.PutScript(ctx, "hello", src("^1.0.0"))
	if err != nil || !created || v1.Version == "" || v1.Dependencies["greet"] != "1.0.0" {
		t.Fatalf("PutScript = %+v, created %v, %v; want a new version with greet 1.0.0", v1, created, err)
	}
	again, created, err := alice.PutScript(ctx, "hello", src("^1.0.0"))
	if err != nil || created || again.Version != v1.Version || !again.CreatedAt.Equal(v1.CreatedAt) {
		t.Errorf("PutScript(the same) = %+v, created %v, %v; want the same version, not created", again, created, err)
	}
	run := func(c *client.Client, req *execution.Request) (*execution.Result, error) {
		t.Helper()
		return c.Execute(ctx, req)
	}
	res, err := run(alice, &execution.Request{Script: "hello", Env: map[string]any{"MOOD": "merry"}})
	if err != nil || res.Response == nil || res.Response.Body != "hello world merry" || res.Dependencies["greet"] != "1.0.0" {
		t.Fatalf("run hello = %+v, %v; want \"hello world merry\" (env merged over the script's) with greet 1.0.0", res, err)
	}
	v2, created, err := alice.PutScript(ctx, "hello", src("^2.0.0"))
	if err != nil || !created || v2.Version == v1.Version {
		t.Fatalf("PutScript(v2) = %+v, %v, %v", v2, created, err)
	}
	for ref, want := range map[string]string{"hello": "HELLO world calm", "hello@" + v1.Version: "hello world calm", "hello@" + v2.Version: "HELLO world calm"} {
		res, err := run(alice, &execution.Request{Script: ref})
		if err != nil || res.Response == nil || res.Response.Body != want {
			t.Errorf("run %s = %+v, %v; want %q", ref, res, err, want)
		}
	}
	list, err := alice.ListScripts(ctx)
	if err != nil || len(list.Scripts) != 1 || list.Scripts[0].Version != v2.Version {
		t.Errorf("ListScripts = %+v, %v; want hello at v2", list, err)
	}
	versions, err := alice.ScriptVersions(ctx, "hello")
	if err != nil || len(versions.Versions) != 2 || versions.Versions[0].Version != v2.Version {
		t.Errorf("ScriptVersions = %+v, %v; want v2, v1", versions, err)
	}
	// Another key's script does not exist for bob, in any call.
	wantNotFound := func(what string, err error) {
		t.Helper()
		var gwErr *client.Error
		if !errors.As(err, &gwErr) || gwErr.StatusCode != 404 {
			t.Errorf("%s = %v, want 404", what, err)
		}
	}
	_, err = run(bob, &execution.Request{Script: "hello"})
	wantNotFound("bob runs alice's script", err)
	_, err = bob.GetScript(ctx, "hello")
	wantNotFound("bob gets alice's script", err)
	wantNotFound("bob deletes alice's script", bob.DeleteScript(ctx, "hello"))
	if l, err := bob.ListScripts(ctx); err != nil || len(l.Scripts) != 0 {
		t.Errorf("bob's ListScripts = %+v, %v; want none", l, err)
	}
	// Queued: the version it names now is the one that runs.
	acc, err := alice.Submit(ctx, &execution.Submission{Request: execution.Request{Script: "hello@" + v1.Version}})
	if err != nil {
		t.Fatalf("Submit = %v", err)
	}
	var final *execution.Result
	for ev, err := range alice.Follow(ctx, acc.ID, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == execution.EventResult {
			final = ev.Result
		}
	}
	if final == nil || final.Response == nil || final.Response.Body != "hello world calm" {
		t.Errorf("queued run = %+v, want hello world calm", final)
	}
	// A script member with code is a conflict; deleted, it is gone.
	_, err = run(alice, &execution.Request{Script: "hello", Code: "export default {}"})
	var gwErr *client.Error
	if !errors.As(err, &gwErr) || gwErr.StatusCode != 422 {
		t.Errorf("script with code = %v, want 422", err)
	}
	if err := alice.DeleteScript(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	_, err = run(alice, &execution.Request{Script: "hello@" + v1.Version})
	wantNotFound("run of a deleted script", err)
}

// TestAttackScriptStorage: a key storing version after version, each new
// (under one name, under many names, or large), gets 507 scripts_full once
// its scripts take storage.max_script_bytes_per_key; the store holds no
// more; another key still stores its own; deleting makes room again.
func TestAttackScriptStorage(t *testing.T) {
	t.Parallel()
	const bound = 256 << 10
	alice, bob := scriptsGateway(t, packagestest.New(t), func(g *apitest.Gateway) { g.Records.MaxScriptBytesPerKey = bound })
	ctx := t.Context()
	filler := strings.Repeat("x", 20<<10)
	for _, tt := range []struct {
		name  string
		next  func(i int) (string, string) // the script's name and code of attempt i
		limit int                          // attempts that may succeed, at most
	}{
		{"versions of one name", func(i int) (string, string) { return "one", fmt.Sprintf("// %d %s\nreturn 1", i, filler) }, bound / (20 << 10)},
		{"many names", func(i int) (string, string) {
			return fmt.Sprintf("n%d", i), fmt.Sprintf("// %d %s\nreturn 1", i, filler)
		}, bound / (20 << 10)},
		{"one large", func(i int) (string, string) { return "large", strings.Repeat("y", bound) }, 0},
	} {
		stored := 0
		var refusal error
		for i := range tt.limit + 5 {
			name, code := tt.next(i)
			_, _, err := alice.PutScript(ctx, name, &client.ScriptSource{Code: code})
			if err != nil {
				refusal = err
				break
			}
			stored++
		}
		var ce *client.Error
		if !errors.As(refusal, &ce) || ce.Status != 507 || ce.Code != client.CodeScriptsFull || stored > tt.limit {
			t.Errorf("%s: %d stored (at most %d fit), then %v; want 507 scripts_full", tt.name, stored, tt.limit, refusal)
		}
		list, err := alice.ListScripts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Scripts {
			if err := alice.DeleteScript(ctx, s.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := bob.PutScript(ctx, "mine", &client.ScriptSource{Code: "return 2"}); err != nil {
		t.Errorf("another key's script beside a full one = %v", err)
	}
	if _, _, err := alice.PutScript(ctx, "again", &client.ScriptSource{Code: "// " + filler + "\nreturn 3"}); err != nil {
		t.Errorf("after deleting its scripts, the key stores one = %v", err)
	}
}

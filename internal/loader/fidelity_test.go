package loader_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// The fidelity suite: a guest must not be able to tell the gateway from a
// bare Worker. The probe (testdata/fidelity/probe.js, with lib.js) records
// what a guest observes of its isolate (Web and Node APIs, the global and
// console property lists, ctx and env, stacks read in many ways) as one
// JSON object; it runs through the gateway's HTTP API on the real runtime
// and through a bare Worker that calls LOADER.load itself, with the same
// compatibility date and flags, and the two are compared key by key. Each
// difference must be fixed or listed in testdata/fidelity/accepted.json with
// its reason (and in docs/fidelity.md); a new one fails the test, and so
// does an accepted one that no longer differs.

const fidelityDir = "testdata/fidelity"

// fidelityConfigs are the compatibility settings the probe runs under: the
// gateway's default date (where Node compatibility is on by default and
// modules are named file:///bundle/...), an older date with nodejs_compat
// asked for, the default date without Node compatibility, and a date before
// the runtime's classes had their properties on prototypes.
var fidelityConfigs = []struct {
	name  string
	date  string
	flags []string
}{
	{"default", "2026-11-17", []string{}},
	{"older-nodejs_compat", "2025-09-01", []string{"nodejs_compat"}},
	{"no_nodejs_compat", "2026-11-17", []string{"no_nodejs_compat", "no_nodejs_compat_v2"}},
	{"old", "2021-11-03", []string{}},
}

func TestFidelity(t *testing.T) {
	t.Parallel()
	pool := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { pool.Close() })
	handler, _ := apitest.Handler(t, zerolog.Nop(), pool, apitest.Options())
	gateway := httptest.NewServer(handler)
	t.Cleanup(gateway.Close)
	bare := startBareWorker(t)

	modules := map[string]string{}
	for _, name := range []string{"probe.js", "lib.js"} {
		modules[name] = readFile(t, filepath.Join(fidelityDir, name))
	}
	accepted := acceptedDifferences(t)
	differed := map[string]bool{}
	for _, c := range fidelityConfigs {
		t.Run(c.name, func(t *testing.T) {
			got := probeGateway(t, gateway.URL, modules, c.date, c.flags)
			want := probeBare(t, bare, modules, c.date, c.flags)
			for _, key := range unionKeys(got, want) {
				g, w := got[key], want[key]
				if bytes.Equal(compact(t, g), compact(t, w)) {
					continue
				}
				if _, ok := accepted[key]; ok {
					differed[key] = true
					continue
				}
				t.Errorf("%s differs from a bare Worker's (fix it, or list it with its reason in %s/accepted.json and docs/fidelity.md)\n  gateway:     %s\n  bare Worker: %s",
					key, fidelityDir, g, w)
			}
		})
	}
	if t.Failed() {
		return
	}
	for key := range accepted {
		if !differed[key] {
			t.Errorf("accepted.json lists %s, which no longer differs from a bare Worker's: remove it (and from docs/fidelity.md)", key)
		}
	}
}

// TestFidelityAcceptedDocumented checks docs/fidelity.md names every
// accepted difference.
func TestFidelityAcceptedDocumented(t *testing.T) {
	t.Parallel()
	doc := readFile(t, filepath.Join("..", "..", "docs", "fidelity.md"))
	for key, reason := range acceptedDifferences(t) {
		if strings.TrimSpace(reason) == "" {
			t.Errorf("accepted.json: %s has no reason", key)
		}
		if !strings.Contains(doc, "`"+key+"`") {
			t.Errorf("docs/fidelity.md does not name the accepted difference `%s`", key)
		}
	}
}

func acceptedDifferences(t *testing.T) map[string]string {
	t.Helper()
	var accepted map[string]string
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(fidelityDir, "accepted.json"))), &accepted); err != nil {
		t.Fatalf("accepted.json: %v", err)
	}
	return accepted
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// probeGateway runs the probe through the gateway's POST /execute and
// returns its results.
func probeGateway(t *testing.T, url string, modules map[string]string, date string, flags []string) map[string]json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"modules": modules, "mainModule": "probe.js", "compatibilityDate": date, "compatibilityFlags": flags,
	})
	resp, err := http.Post(url+"/execute", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var result struct {
		Success  bool
		Response *struct{ Body string }
		Error    *struct{ Message, Stack string }
	}
	if err := json.Unmarshal(raw, &result); err != nil || !result.Success || result.Response == nil {
		t.Fatalf("gateway: status %d: %s", resp.StatusCode, raw)
	}
	return probeResults(t, "gateway", []byte(result.Response.Body))
}

// probeBare runs the probe in the bare Worker and returns its results.
func probeBare(t *testing.T, client *http.Client, modules map[string]string, date string, flags []string) map[string]json.RawMessage {
	t.Helper()
	typed := map[string]any{}
	for name, source := range modules {
		typed[name] = map[string]string{"js": source}
	}
	body, _ := json.Marshal(map[string]any{
		"modules": typed, "mainModule": "probe.js", "compatibilityDate": date, "compatibilityFlags": flags, "env": map[string]any{},
	})
	resp, err := client.Post("http://bare/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bare Worker: status %d: %s", resp.StatusCode, raw)
	}
	return probeResults(t, "bare Worker", raw)
}

func probeResults(t *testing.T, side string, body []byte) map[string]json.RawMessage {
	t.Helper()
	var results map[string]json.RawMessage
	if err := json.Unmarshal(body, &results); err != nil {
		t.Fatalf("%s: the probe's answer is not a JSON object: %v: %.500s", side, err, body)
	}
	if len(results) < 50 {
		t.Fatalf("%s: the probe gave %d results, fewer than it has probes", side, len(results))
	}
	return results
}

func unionKeys(a, b map[string]json.RawMessage) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func compact(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	if raw == nil {
		return []byte("<missing>")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// startBareWorker starts a workerd of its own serving the bare Worker on a
// Unix socket, and returns a client that reaches it.
func startBareWorker(t *testing.T) *http.Client {
	t.Helper()
	dir := t.TempDir()
	socket := filepath.Join(dir, "bare.sock")
	config := strings.ReplaceAll(readFile(t, filepath.Join(fidelityDir, "bare.capnp.tmpl")), "SOCKET", socket)
	for name, text := range map[string]string{"config.capnp": config, "bare.js": readFile(t, filepath.Join(fidelityDir, "bare.js"))} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(loadertest.Workerd(t), "serve", "--experimental", "config.capnp")
	cmd.Dir = dir
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	if !testwait.Until(30*time.Second, func() bool {
		conn, err := net.Dial("unix", socket)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}) {
		t.Fatalf("the bare Worker's workerd did not start: %s", stderr.String())
	}
	return client
}

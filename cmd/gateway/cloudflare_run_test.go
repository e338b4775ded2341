package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// TestRunCloudflareBackend drives `serve` on the cloudflare backend, with
// a separately started workerd standing in for the deployed shim: /readyz
// names the backend and Cloudflare's limits (128 MB, 30 s of CPU by
// default), and the log names the local-only settings given, which do
// nothing there.
func TestRunCloudflareBackend(t *testing.T) {
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { deployed.Close() })
	shimURL, secret := deployed.ShimURL()
	env := map[string]string{
		"GATEWAY_BACKEND": "cloudflare", "GATEWAY_CLOUDFLARE_URL": shimURL, "GATEWAY_CLOUDFLARE_SHIM_SECRET": secret,
		"GATEWAY_RUNTIME_V8_HEAP_MB": "256", "GATEWAY_STORAGE_PATH": "",
	}
	var stdout, stderr loadertest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, nil, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("run did not return")
		}
	}()
	base := "http://" + waitListening(t, &stdout, done)
	waitReady(t, base, &stdout)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Status, Backend string
		Limits          struct{ MemoryMb, CPUMs int }
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if ready.Status != "ready" || ready.Backend != "cloudflare" || ready.Limits.MemoryMb != 128 || ready.Limits.CPUMs != 30_000 {
		t.Errorf("/readyz = %+v, want ready on cloudflare with 128 MB and 30000 ms", ready)
	}
	// An execution carries the 30 s CPU default to the shim, which runs it.
	exec, err := http.Post(base+"/execute", "application/json", strings.NewReader(`{"code": "export default { fetch() { return new Response('on the shim'); } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Body.Close()
	var res struct {
		Success  bool
		Response struct{ Body string }
	}
	if err := json.NewDecoder(exec.Body).Decode(&res); err != nil || !res.Success || res.Response.Body != "on the shim" {
		t.Errorf("POST /execute = %d %+v, %v; want success", exec.StatusCode, res, err)
	}
	if !strings.Contains(stdout.String(), "runtime.v8_heap_mb is set but does nothing on the cloudflare backend") {
		t.Errorf("the log does not warn of runtime.v8_heap_mb:\n%s", stdout.String())
	}
}

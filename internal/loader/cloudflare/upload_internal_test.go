package cloudflare

import (
	"testing"

	"github.com/dynamic-workers/gateway/worker"
)

// TestUploadContentTypes: every kind of shim module is uploaded with the
// content type that makes Cloudflare load it as that kind (a .wasm part as
// application/wasm, not as JavaScript); a kind without one is refused.
func TestUploadContentTypes(t *testing.T) {
	t.Parallel()
	want := map[worker.ModuleKind]string{
		worker.ModuleES:   "application/javascript+module",
		worker.ModuleText: "text/plain",
		worker.ModuleJSON: "application/json",
		worker.ModuleWasm: "application/wasm",
		worker.ModuleData: "application/octet-stream",
	}
	for k, ct := range want {
		if got, err := uploadContentType(k); got != ct || err != nil {
			t.Errorf("uploadContentType(%d) = %q, %v; want %q", k, got, err, ct)
		}
	}
	for _, k := range []worker.ModuleKind{worker.ModuleData + 1, -1} {
		if got, err := uploadContentType(k); err == nil {
			t.Errorf("uploadContentType(%d) = %q, want an error", k, got)
		}
	}
}

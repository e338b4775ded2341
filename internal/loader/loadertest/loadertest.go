// Package loadertest helps tests run the real workerd runtime.
package loadertest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/loader"
)

// Workerd returns the workerd binary npm installed into worker/node_modules
// (`make test` installs it), failing the test if it is missing.
func Workerd(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
	path := filepath.Join(dir, "worker", "node_modules", ".bin", "workerd")
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("workerd is not installed (run `make test`, which runs npm ci in worker/): %v", err)
	}
	return path
}

// StartLocal starts a local backend, with the given changes to its default
// configuration, and waits until every process in its pool is ready.
func StartLocal(tb testing.TB, log zerolog.Logger, opts ...func(*loader.LocalConfig)) *loader.Local {
	tb.Helper()
	cfg := loader.LocalConfig{Workerd: Workerd(tb), StartTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&cfg)
	}
	l, err := loader.NewLocal(cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	want := cfg.Processes
	if want <= 0 {
		want = 1
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(l.PIDs()) < want || l.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			l.Close()
			tb.Fatalf("backend not ready after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return l
}

// Processes returns an option setting the pool's size.
func Processes(n int) func(*loader.LocalConfig) {
	return func(c *loader.LocalConfig) { c.Processes = n }
}

// WaitReady waits until b is ready, failing the test after timeout.
func WaitReady(tb testing.TB, b loader.Backend, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for b.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("backend not ready after %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for concurrent use, for capturing the log of
// a gateway under test.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

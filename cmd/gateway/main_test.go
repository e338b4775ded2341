package main

import (
	"os"
	"testing"

	"github.com/dynamic-workers/gateway/internal/store/storetest"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

// TestMain lets the gateways these tests run compile large TypeScript in a
// child process, a re-execution of this test binary, as main does; then it
// stops the PostgreSQL server the tests may have started and removes the
// binary they shared.
func TestMain(m *testing.M) {
	transpile.MaybeServeChild()
	code := m.Run()
	storetest.StopShared()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

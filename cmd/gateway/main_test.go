package main

import (
	"os"
	"testing"

	"github.com/dynamic-workers/gateway/internal/transpile"
)

// TestMain lets the gateways these tests run compile large TypeScript in a
// child process, a re-execution of this test binary, as main does.
func TestMain(m *testing.M) {
	transpile.MaybeServeChild()
	os.Exit(m.Run())
}

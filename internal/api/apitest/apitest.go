// Package apitest holds the API options the tests of the gateway and of its
// clients serve with, so they agree on limits and on the clock.
package apitest

import (
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/auth"
)

// Now is the clock tests validate compatibility dates against.
var Now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// Options returns API options with small, fixed limits and the test clock.
func Options() api.Options {
	return api.Options{
		MaxRequestBytes: 1 << 20,
		Now:             func() time.Time { return Now },
		Limits: api.Limits{
			CompatibilityDate: "2026-11-16",
			DefaultTimeout:    10 * time.Second,
			MaxTimeout:        30 * time.Second,
			MaxResponseBytes:  1 << 20,
			MaxLogLineBytes:   64 << 10,
			MaxLogBytes:       1 << 20,
			MaxCodeBytes:      512 << 10,
			MaxModules:        8,
			MaxEnvBytes:       64 << 10,
		},
	}
}

// NewKey makes an API key for a test: the key a client sends, and the
// configured entry (name and hash) that accepts it; quota fields and Revoked
// are the caller's to set.
func NewKey(tb testing.TB, name string) (string, auth.Key) {
	tb.Helper()
	key, hash, err := auth.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := auth.ParseHash(hash)
	if err != nil {
		tb.Fatal(err)
	}
	return key, auth.Key{Name: name, Hash: sum}
}

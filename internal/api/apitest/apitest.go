// Package apitest holds the API options the tests of the gateway and of its
// clients serve with, so they agree on limits and on the clock.
package apitest

import (
	"time"

	"github.com/dynamic-workers/gateway/internal/api"
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

package executions

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// TestRateLimitedRuntimeProblem: the runtime's host pacing the gateway is a
// 503 runtime_unavailable whose Retry-After is the host's, rounded up to
// whole seconds.
func TestRateLimitedRuntimeProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		wait time.Duration
		want int
	}{
		{7 * time.Second, 7},
		{1500 * time.Millisecond, 2},
		{0, 1},
		{90 * time.Second, 90},
	}
	for _, tc := range cases {
		t.Run(tc.wait.String(), func(t *testing.T) {
			t.Parallel()
			err := fmt.Errorf("relay: %w", &execution.RateLimitedError{RetryAfter: tc.wait})
			var p *execution.Problem
			if !errors.As(toProblem(err), &p) || p.Status != http.StatusServiceUnavailable || p.Code != execution.ProblemRuntimeUnavailable || p.RetryAfter != tc.want {
				t.Errorf("toProblem(%v) = %+v, want 503 runtime_unavailable, Retry-After %d", err, p, tc.want)
			}
		})
	}
}

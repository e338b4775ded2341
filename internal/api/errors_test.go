package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// TestRateLimitedRuntimeProblem (issue 15, defect 4): the runtime's host
// pacing the gateway is a 503 runtime_unavailable whose Retry-After is the
// host's, rounded up to whole seconds.
func TestRateLimitedRuntimeProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		wait time.Duration
		want string
	}{
		{7 * time.Second, "7"},
		{1500 * time.Millisecond, "2"},
		{0, "1"},
		{90 * time.Second, "90"},
	}
	for _, tc := range cases {
		t.Run(tc.wait.String(), func(t *testing.T) {
			t.Parallel()
			err := fmt.Errorf("relay: %w", &execution.RateLimitedError{RetryAfter: tc.wait})
			w := httptest.NewRecorder()
			writeProblem(w, httptest.NewRequest(http.MethodPost, "/execute", nil), err)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != tc.want {
				t.Errorf("writeProblem(%v) = %d Retry-After %q, want 503 Retry-After %q", err, w.Code, w.Header().Get("Retry-After"), tc.want)
			}
		})
	}
}

package cloudflare

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// TestRateLimitedPassesRetryAfter: Cloudflare pacing
// the gateway (429, or its error page 1015) reaches the caller as a
// RateLimitedError with Cloudflare's Retry-After, and never opens the
// breaker, however many come in a row.
func TestRateLimitedPassesRetryAfter(t *testing.T) {
	t.Parallel()
	soon := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name, retryAfter, body string
		status                 int
		min, max               time.Duration
	}{
		{"429 with seconds", "7", "", http.StatusTooManyRequests, 7 * time.Second, 7 * time.Second},
		{"429 with a date", soon, "", http.StatusTooManyRequests, 60 * time.Second, 90 * time.Second},
		{"429 without Retry-After", "", "", http.StatusTooManyRequests, time.Second, time.Second},
		{"1015 page with seconds", "30", "error code: 1015", http.StatusTooManyRequests, 30 * time.Second, 30 * time.Second},
		{"1015 page on a 503", "12", "<html>error code: 1015</html>", http.StatusServiceUnavailable, 12 * time.Second, 12 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := fakeShim(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				answer(w, tc.status, tc.body)
			})
			for range r.cfg.BreakerFailures + 1 {
				err := r.Execute(t.Context(), job(), noEmit)
				var limited *execution.RateLimitedError
				if !errors.As(err, &limited) || !errors.Is(err, execution.ErrUnavailable) {
					t.Fatalf("Execute() = %v, want a RateLimitedError that is ErrUnavailable", err)
				}
				if limited.RetryAfter < tc.min || limited.RetryAfter > tc.max {
					t.Errorf("Execute() RetryAfter = %v, want within [%v, %v]", limited.RetryAfter, tc.min, tc.max)
				}
			}
			if err := r.Ready(t.Context()); err != nil {
				t.Errorf("Ready() after %d rate-limited calls = %v, want nil (the breaker closed)", r.cfg.BreakerFailures+1, err)
			}
		})
	}
}

// TestOtherErrorsStillCount: a 502 from Cloudflare is the shim failing and
// still opens the breaker (the rate-limit check must not swallow it).
func TestOtherErrorsStillCount(t *testing.T) {
	t.Parallel()
	r := fakeShim(t, func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusBadGateway, "error code: 502") })
	for range r.cfg.BreakerFailures {
		if err := r.Execute(t.Context(), job(), noEmit); !errors.Is(err, execution.ErrUnavailable) {
			t.Fatalf("Execute() = %v, want ErrUnavailable", err)
		}
	}
	if err := r.Ready(t.Context()); err == nil {
		t.Error("Ready() after failing calls = nil, want the breaker open")
	}
}

// TestResponseHeaderTimeoutFollowsMaxTimeout: the relay waits for the
// shim's answer longer than any execution may run (a reused isolate's call
// may wait that long before its first byte), whatever execution.max_timeout
// is, on every connection of its pool.
func TestResponseHeaderTimeoutFollowsMaxTimeout(t *testing.T) {
	t.Parallel()
	for _, maxTimeout := range []time.Duration{0, time.Second, 30 * time.Second, 60 * time.Second, 5 * time.Minute} {
		r, err := New(Config{URL: "http://127.0.0.1:1", Secret: strings.Repeat("s", 32), MaxTimeout: maxTimeout, VerifyInterval: time.Hour}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		want := maxTimeout
		if want == 0 {
			want = 60 * time.Second // the default
		}
		for i, tr := range r.client.Transport.(rateLimits).next.(*pool).transports {
			if tr.ResponseHeaderTimeout <= want {
				t.Errorf("max timeout %v: connection %d waits %v for the shim's answer, want longer than %v", maxTimeout, i, tr.ResponseHeaderTimeout, want)
			}
		}
		r.Close()
	}
}

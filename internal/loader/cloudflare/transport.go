package cloudflare

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// rateLimits turns Cloudflare refusing the shim's calls for a while (429,
// or its error 1015 "you are being rate limited") into an
// *execution.RateLimitedError carrying its Retry-After: the shim is not
// failing, so the breaker must not count it, and the caller learns when to
// come back.
type rateLimits struct {
	next http.RoundTripper
	now  func() time.Time
}

// defaultRetryAfter is the wait given to callers when Cloudflare sends no
// Retry-After.
const defaultRetryAfter = time.Second

func (t rateLimits) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	limited := resp.StatusCode == http.StatusTooManyRequests
	if !limited {
		// Cloudflare's own error pages say "error code: 1015"; the shim's
		// errors are JSON. Read a little, and give it back unread.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		limited = bytes.Contains(head, []byte("error code: 1015"))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	}
	if !limited {
		return resp, nil
	}
	resp.Body.Close()
	return nil, &execution.RateLimitedError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), t.now())}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return defaultRetryAfter
}

// CloseIdleConnections closes the idle connections of the transport below.
func (t rateLimits) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

package cloudflare

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
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
	return nil, &execution.RateLimitedError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), t.now())}
}

// parseRetryAfter parses a Retry-After header (seconds or an HTTP date).
func parseRetryAfter(v string, now time.Time) time.Duration {
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

// Connection settings of the relay's transport.
const (
	// connections is how many connections the relay spreads calls over: one
	// reset connection fails only the executions it carried.
	connections = 4
	// headerSlack is how much longer than the longest execution the relay
	// waits for the shim's answer to a call (responseHeaderTimeout).
	headerSlack = 10 * time.Second
	// pingAfter is how long an HTTP/2 connection may stay silent before the
	// relay pings it; a ping unanswered within pingTimeout closes it.
	pingAfter   = 5 * time.Second
	pingTimeout = 5 * time.Second
)

// responseHeaderTimeout bounds the wait for the shim's answer to a call:
// past the longest execution (maxTimeout), by headerSlack. The shim
// answers a fresh isolate's call at once, but a reused isolate's call waits
// for the isolate to be free, which may take up to an execution's timeout;
// the execution's own timeout ends the call first, and is told apart from
// a stall by the relay (timedOut).
func responseHeaderTimeout(maxTimeout time.Duration) time.Duration {
	return maxTimeout + headerSlack
}

// pool spreads calls round-robin over several transports, each with its
// own connection to the shim.
type pool struct {
	transports []*http.Transport
	next       atomic.Uint64
}

// newPool builds the relay's transports: HTTP/2 where the shim speaks it,
// with ping health checks, and a bound on the wait for response headers.
func newPool(dialTimeout, headerTimeout time.Duration, tlsConfig *tls.Config) *pool {
	p := &pool{}
	for range connections {
		var conf *tls.Config
		if tlsConfig != nil {
			conf = tlsConfig.Clone()
		}
		p.transports = append(p.transports, &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       conf,
			TLSHandshakeTimeout:   dialTimeout,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
			ExpectContinueTimeout: time.Second,
			ResponseHeaderTimeout: headerTimeout,
			HTTP2:                 &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
		})
	}
	return p
}

func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	return p.transports[p.next.Add(1)%uint64(len(p.transports))].RoundTrip(req)
}

// CloseIdleConnections closes every transport's idle connections.
func (p *pool) CloseIdleConnections() {
	for _, t := range p.transports {
		t.CloseIdleConnections()
	}
}

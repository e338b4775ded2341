package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// internalDNS answers as a network's own resolver would: internal names
// resolve to internal addresses, and an unknown name fails with the
// resolver's address in the error, as Go's resolver reports it.
type internalDNS map[string]string

func (d internalDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := d[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.53.0.2:53", IsNotFound: true}
}

// TestAttackCallbackRecordMapsNoNetwork: with callbacks.allow_private on,
// a key aims callbacks at internal names: one that does not resolve, one
// resolving to a closed port, one resolving to the metadata address, and
// the metadata address itself. What its records keep of each attempt says
// what failed in its terms, never the gateway's resolver or which address
// a name resolved to; the gateway's log has the full error, and never the
// URL's token.
func TestAttackCallbackRecordMapsNoNetwork(t *testing.T) {
	closed := httptest.NewServer(nil)
	port := closed.Listener.Addr().(*net.TCPAddr).Port
	closed.Close()
	logs := &loadertest.Buffer{}
	opts := fastRetries()
	opts.Webhook.Resolver = internalDNS{"svc.corp.example.com": "127.0.0.1", "meta.corp.example.com": "169.254.169.254"}
	opts.Webhook.Timeout = 2 * time.Second
	opts.Webhook.MaxRetryTime = time.Second
	opts.Webhook.Backoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 200 * time.Millisecond}
	g := newLoggedHistoryGateway(t, filepath.Join(t.TempDir(), "executions.db"), executions.RecordOptions{Callbacks: opts}, zerolog.New(logs))

	tests := []struct {
		url, want, logged string
	}{
		{"http://nowhere.corp.example.com/cb?token=tok-1", "could not resolve host", "10.53.0.2:53"},
		{fmt.Sprintf("http://svc.corp.example.com:%d/cb?token=tok-2", port), "connection refused", fmt.Sprintf("127.0.0.1:%d", port)},
		{"http://meta.corp.example.com/cb?token=tok-3", "refused: the host resolves to an address callbacks may not reach", "169.254.169.254"},
	}
	never := []string{"10.53.0.2", "127.0.0.1", "169.254", "lookup", "dial", ":53"}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		ids[i] = g.submit(t, g.alice, map[string]any{"code": guest(""), "callbackUrl": tt.url})
	}
	for i, tt := range tests {
		cb := g.awaitCallback(t, ids[i], execution.CallbackFailed)
		if len(cb.Attempts) == 0 {
			t.Errorf("callback to %s = %+v, want attempts", tt.url, cb)
		}
		for _, a := range cb.Attempts {
			if a.Error != tt.want {
				t.Errorf("callback to %s: attempt error %q, want %q", tt.url, a.Error, tt.want)
			}
		}
		// What a tenant reads: the reason and each attempt's error (the
		// attempts' times hold ":53" whenever a second is 53).
		said := cb.Reason
		for _, a := range cb.Attempts {
			said += "\n" + a.Error
		}
		for _, s := range never {
			if strings.Contains(said, s) {
				t.Errorf("callback to %s: record %+v names %q", tt.url, cb, s)
			}
		}
		if !strings.Contains(logs.String(), tt.logged) {
			t.Errorf("the gateway's log has no %q for the callback to %s", tt.logged, tt.url)
		}
	}
	if strings.Contains(logs.String(), "tok-") || strings.Contains(logs.String(), string(callbackSecret)) {
		t.Errorf("the gateway's log carries a callback URL's token or the secret:\n%s", logs)
	}
	// The metadata address itself is refused at submission.
	resp, body := g.call(t, g.alice, "POST", "/executions", map[string]any{"code": guest(""), "callbackUrl": "http://169.254.169.254/latest/meta-data/"})
	if resp.StatusCode != 422 || !strings.Contains(string(body), "cloud metadata address") {
		t.Errorf("POST /executions to the metadata address = %d %s, want 422 naming it", resp.StatusCode, body)
	}
}

package loader_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/cloudflare"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// tlsProxy stands in for Cloudflare's edge: HTTP/2 over TLS in front of a
// local shim, streaming its answers. It records each connection by remote
// address; before passing a call on it calls hold, if set, with the call's
// remote address.
type tlsProxy struct {
	*httptest.Server
	mu    sync.Mutex
	conns map[string]net.Conn
	hold  func(r *http.Request)
}

func startTLSProxy(t *testing.T, shimURL string) *tlsProxy {
	t.Helper()
	target, err := url.Parse(shimURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1                    // NDJSON streams line by line
	rp.ErrorLog = log.New(io.Discard, "", 0) // the faults below are its errors
	p := &tlsProxy{conns: map[string]net.Conn{}}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("a call came over %s, want HTTP/2", r.Proto)
		}
		p.mu.Lock()
		hold := p.hold
		p.mu.Unlock()
		if hold != nil {
			hold(r)
		}
		rp.ServeHTTP(w, r)
	}))
	p.EnableHTTP2 = true
	p.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.mu.Lock()
			p.conns[c.RemoteAddr().String()] = c
			p.mu.Unlock()
		}
	}
	p.StartTLS()
	t.Cleanup(p.Close)
	return p
}

// cloudflareOverTLS returns the cloudflare backend talking HTTP/2 over TLS
// through p.
func cloudflareOverTLS(t *testing.T, p *tlsProxy, secret string) *cloudflare.Relay {
	t.Helper()
	cf, err := cloudflare.New(cloudflare.Config{URL: p.URL, Secret: secret, VerifyInterval: time.Hour,
		TLS: p.Client().Transport.(*http.Transport).TLSClientConfig}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cf.Close() })
	if err := cf.Ready(t.Context()); err != nil {
		t.Fatalf("cloudflare backend over TLS not ready: %v", err)
	}
	return cf
}

// TestCloudflareOverTLS runs the shared suite on the cloudflare backend
// over HTTP/2 and TLS, as it talks to Cloudflare.
func TestCloudflareOverTLS(t *testing.T) {
	t.Parallel()
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { deployed.Close() })
	shimURL, secret := deployed.ShimURL()
	runSuite(t, cloudflareOverTLS(t, startTLSProxy(t, shimURL), secret))
}

// slowGuest answers after a while, so that executions are in flight
// together.
const slowGuest = `export default { async fetch() { await new Promise((r) => setTimeout(r, 300)); return new Response("ok"); } }`

// TestCloudflareConnectionFaults: of executions in
// flight together over several HTTP/2 connections, a reset connection
// fails only those it carried, a stalled one only its own (ended at their
// deadline), and the relay goes on without a restart.
func TestCloudflareConnectionFaults(t *testing.T) {
	t.Parallel()
	deployed := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { deployed.Close() })
	shimURL, secret := deployed.ShimURL()
	for _, fault := range []string{"reset", "stall"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			p := startTLSProxy(t, shimURL)
			cf := cloudflareOverTLS(t, p, secret)
			const n = 8
			arrived := make(chan string, n)
			release := make(chan struct{})
			var victim string
			p.mu.Lock()
			p.hold = func(r *http.Request) {
				arrived <- r.RemoteAddr
				<-release
				// victim is set before release closes.
				if fault == "stall" && r.RemoteAddr == victim {
					<-r.Context().Done() // the connection answers nothing more
				}
			}
			p.mu.Unlock()
			codes := make(chan string, n)
			for i := range n {
				go func() {
					j := loadertest.Job(fmt.Sprintf("%s-%d", fault, i), slowGuest, 2*time.Second)
					var last execution.Event
					err := cf.Execute(t.Context(), j, func(ev execution.Event) error { last = ev; return nil })
					switch {
					case errors.Is(err, execution.ErrUnavailable):
						codes <- "unavailable" // lost before the shim answered
					case err != nil:
						codes <- "error: " + err.Error()
					case last.Result.Success:
						codes <- "ok"
					default:
						codes <- string(last.Result.Error.Code)
					}
				}()
			}
			carried := map[string]int{}
			for i := range n {
				addr := <-arrived
				carried[addr]++
				if i == 0 {
					victim = addr
				}
			}
			if len(carried) < 2 {
				t.Errorf("%d executions in flight went over %d connection(s), want several", n, len(carried))
			}
			if fault == "reset" {
				p.mu.Lock()
				p.conns[victim].Close()
				p.mu.Unlock()
			}
			close(release)
			got := map[string]int{}
			for range n {
				got[<-codes]++
			}
			// A reset loses the executions (before or after the shim
			// answered); a stall ends them at their deadline.
			failed := got[string(execution.CodeRuntimeCrashed)] + got["unavailable"]
			if fault == "stall" {
				failed = got[string(execution.CodeTimeout)]
			}
			if failed != carried[victim] || got["ok"] != n-carried[victim] {
				t.Errorf("after a %s of a connection carrying %d of %d executions: %v, want %d lost and the rest ok", fault, carried[victim], n, got, carried[victim])
			}
			p.mu.Lock()
			p.hold = nil
			p.mu.Unlock()
			for i := range 3 {
				events, err := loadertest.Run(t, cf, loadertest.Job(fmt.Sprintf("%s-after-%d", fault, i), loadertest.Hello, 5*time.Second))
				if err != nil || !loadertest.LastResult(t, events).Success {
					t.Errorf("execution %d after the %s = %v, want success", i, fault, err)
				}
			}
			if err := cf.Ready(t.Context()); err != nil {
				t.Errorf("Ready() after the %s = %v, want nil", fault, err)
			}
		})
	}
}

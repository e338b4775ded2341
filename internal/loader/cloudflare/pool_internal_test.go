package cloudflare

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// TestResetFailsOnlyItsConnection: over HTTP/2 with
// TLS, as on Cloudflare, the relay spreads executions over several
// connections; one connection reset mid-execution fails only the
// executions it carried, and the relay goes on without a restart. The
// reset connection carries 6 executions, more than the breaker's 5
// failures: its loss counts once, so the breaker stays closed.
func TestResetFailsOnlyItsConnection(t *testing.T) {
	t.Parallel()
	const n = 24
	var mu sync.Mutex
	conns := map[string]net.Conn{}  // remote address -> connection
	carried := map[string]int{}     // remote address -> executions on it
	arrived := make(chan string, n) // remote address of each execution in flight
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/verify") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		mu.Lock()
		if r.ProtoMajor != 2 {
			t.Errorf("an execution came over %s, want HTTP/2", r.Proto)
		}
		carried[r.RemoteAddr]++
		mu.Unlock()
		arrived <- r.RemoteAddr
		select {
		case <-release:
			_, _ = io.WriteString(w, resultLine)
		case <-r.Context().Done():
		}
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns[c.RemoteAddr().String()] = c
			mu.Unlock()
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	trusted := srv.Client().Transport.(*http.Transport).TLSClientConfig
	r, err := New(Config{URL: srv.URL, Secret: strings.Repeat("s", 32), VerifyInterval: time.Hour, TLS: trusted}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	codes := make(chan execution.Code, n)
	started := make(chan struct{}, n) // an execution's start reached the relay's caller
	for i := range n {
		go func() {
			j := job()
			j.ID = "ex_reset" + string(rune('a'+i))
			var last execution.Event
			emit := func(ev execution.Event) error {
				if ev.Type == execution.EventStart {
					started <- struct{}{}
				}
				last = ev
				return nil
			}
			if err := r.Execute(t.Context(), j, emit); err != nil {
				codes <- execution.Code("error: " + err.Error())
				return
			}
			if last.Result.Success {
				codes <- "ok"
				return
			}
			codes <- last.Result.Error.Code
		}()
	}
	var first string
	for i := range n {
		addr := <-arrived
		if i == 0 {
			first = addr
		}
	}
	// Every execution has its answer's headers (its start) before the
	// reset, so each one on the reset connection is lost mid-execution.
	for range n {
		<-started
	}
	mu.Lock()
	lostWant, spread := carried[first], len(carried)
	if conns[first] == nil {
		t.Fatalf("no connection from %s", first)
	}
	conns[first].Close() // the reset
	mu.Unlock()
	if spread < 2 {
		t.Errorf("%d executions went over %d connection(s), want several", n, spread)
	}
	if lostWant < 5 {
		t.Errorf("the reset connection carried %d executions, want at least the breaker's 5 failures (the test proves nothing)", lostWant)
	}
	// The executions on the reset connection end first, one after another,
	// before any other has a result: as many failures in a row as it
	// carried.
	got := map[execution.Code]int{}
	for range lostWant {
		got[<-codes]++
	}
	// One connection lost is one failure of the shim, not one per
	// execution it carried: the relay still takes executions.
	if err := r.Ready(t.Context()); err != nil {
		t.Errorf("Ready() right after a reset that failed %d executions = %v, want nil", lostWant, err)
	}
	close(release)
	for range n - lostWant {
		got[<-codes]++
	}
	if got[execution.CodeRuntimeCrashed] != lostWant || got["ok"] != n-lostWant {
		t.Errorf("after resetting a connection carrying %d of %d executions: %v, want %d runtime_crashed and the rest ok", lostWant, n, got, lostWant)
	}
	if err := r.Execute(t.Context(), job(), func(execution.Event) error { return nil }); err != nil {
		t.Errorf("Execute() after the reset = %v, want nil", err)
	}
	if err := r.Ready(t.Context()); err != nil {
		t.Errorf("Ready() after the reset = %v, want nil", err)
	}
}

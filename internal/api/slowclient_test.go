package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// floodCode logs about 2 MB at once (the gateway keeps the 1 MiB log cap)
// and returns a 900 KB body: a few MB of stream for one request.
const floodCode = `export default { fetch() {
  const line = "x".repeat(1000);
  for (let i = 0; i < 2000; i++) console.log(line);
  return new Response("z".repeat(900000));
} }`

// slowGateway is a gateway with a runtime of its own that records the state
// of each of its client connections, by the client's address.
type slowGateway struct {
	srv     *httptest.Server
	backend *local.Pool
	m       *metrics.Metrics
	logs    *loadertest.Buffer

	mu     sync.Mutex
	states map[string]http.ConnState
}

func startSlowGateway(t *testing.T, tune func(*apitest.Gateway), pool ...func(*local.Config)) *slowGateway {
	t.Helper()
	g := &slowGateway{m: metrics.New(), logs: &loadertest.Buffer{}, states: map[string]http.ConnState{}}
	log := zerolog.New(g.logs)
	g.backend = loadertest.StartLocal(t, log, pool...)
	opts := apitest.Options()
	opts.Metrics = g.m
	if tune != nil {
		tune(&opts)
	}
	g.srv = httptest.NewUnstartedServer(apitest.Serve(t, log, g.backend, opts))
	// A fixed, small send buffer: the kernel must not absorb the answers
	// a stalled client leaves unread, as loopback's autotuning would.
	g.srv.Listener = smallSendBuffer{g.srv.Listener}
	g.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		g.mu.Lock()
		g.states[c.RemoteAddr().String()] = s
		g.mu.Unlock()
	}
	g.srv.Start()
	t.Cleanup(func() {
		g.srv.CloseClientConnections()
		g.srv.Close()
		g.backend.Close()
	})
	return g
}

// smallSendBuffer gives each accepted connection a 16 KiB send buffer.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		err = errors.Join(err, tc.SetWriteBuffer(16<<10))
	}
	return c, err
}

// state is the server's view of the connection whose client end is c.
func (g *slowGateway) state(c net.Conn) http.ConnState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.states[c.LocalAddr().String()]
}

// metric reads a sample of the gateway's metrics as GET /metrics shows it:
// by name and labels, or by name alone for the sum over all labels; 0 if
// absent.
func (g *slowGateway) metric(sample string) float64 {
	rec := httptest.NewRecorder()
	g.m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sum := 0.0
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		name, rest, _ := strings.Cut(line, " ")
		if labeled, _, _ := strings.Cut(name, "{"); name == sample || (labeled == sample && !strings.Contains(sample, "{")) {
			f, _ := strconv.ParseFloat(rest, 64)
			sum += f
		}
	}
	return sum
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !testwait.Until(timeout, cond) {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

// stalledReader sends POST /execute on a connection with a tiny receive
// buffer, reads the first 100 bytes of the answer and then reads no more.
func stalledReader(t *testing.T, addr, accept, code string, timeoutMs int) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
		return errors.Join(cerr, err)
	}}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"code": code, "timeoutMs": timeoutMs})
	fmt.Fprintf(conn, "POST /execute HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: %s\r\nContent-Length: %d\r\n\r\n%s", accept, len(body), body)
	head := make([]byte, 100)
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.ReadFull(conn, head); err != nil {
		conn.Close()
		return nil, err
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
		conn.Close()
		return nil, fmt.Errorf("answer begins %q, want 200", head)
	}
	return conn, nil
}

// TestStalledReadersCostOnlyThemselves: 48 clients that stop reading their
// streams (more than the pool runs at once plus its queue) leave the
// runtime free for everyone else, while their connections stay open.
func TestStalledReadersCostOnlyThemselves(t *testing.T) {
	t.Parallel()
	g := startSlowGateway(t, func(o *apitest.Gateway) {
		o.WriteTimeout = 5 * time.Minute // the stalled stay connected throughout
		o.MaxLifetime = 5 * time.Minute
	}, loadertest.Processes(2), func(c *local.Config) {
		c.MaxConcurrency, c.QueueSize, c.QueueTimeout = 4, 64, 2*time.Minute
	})
	addr := g.srv.Listener.Addr().String()
	const stalled = 48
	conns := make([]net.Conn, stalled)
	errs := make([]error, stalled)
	var wg sync.WaitGroup
	for i := range stalled {
		wg.Go(func() { conns[i], errs[i] = stalledReader(t, addr, "application/x-ndjson", floodCode, 10000) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("stalled readers: %v", err)
	}
	// Every stalled execution ends and gives back its runtime slot, while
	// its client still holds the connection, its answer unread.
	waitFor(t, 3*time.Minute, "all stalled executions ended", func() bool {
		return g.metric("gateway_executions_total") == stalled
	})
	if n := g.metric("gateway_executions_in_flight"); n != 0 {
		t.Errorf("executions in flight = %v after all ended, want 0", n)
	}
	if _, queued := g.backend.Stats(); queued != 0 {
		t.Errorf("queued = %d, want 0", queued)
	}
	wantOpen := func(when string) {
		for i, c := range conns {
			if s := g.state(c); s != http.StateActive {
				t.Fatalf("%s: stalled connection %d is %v, want active (its answer unsent)", when, i, s)
			}
		}
	}
	wantOpen("after the executions")

	// Nothing holds a runtime place (none in flight, none queued, above):
	// another caller's executions run at once and succeed.
	for i := range 20 {
		res := executeAt(t, g.srv.URL, map[string]any{"code": `export default { fetch() { return new Response("hello"); } }`})
		if !res.Success || res.Response == nil || res.Response.Body != "hello" {
			t.Errorf("execution %d beside %d stalled readers: %+v, want success", i, stalled, res)
		}
	}
	wantOpen("after the other caller's executions")
}

// TestStalledReaderDropped: a client that stops reading is disconnected
// when a write makes no progress for the write timeout, or at the request's
// lifetime, whichever comes first; streams and one-result answers alike.
func TestStalledReaderDropped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, accept, reason string
		writeTimeout, life   time.Duration
	}{
		{"write timeout stream", "application/x-ndjson", "write_timeout", 500 * time.Millisecond, 5 * time.Minute},
		{"write timeout sse", "text/event-stream", "write_timeout", 500 * time.Millisecond, 5 * time.Minute},
		{"write timeout json", "application/json", "write_timeout", 500 * time.Millisecond, 5 * time.Minute},
		{"lifetime stream", "application/x-ndjson", "lifetime", 5 * time.Minute, 4 * time.Second},
		{"lifetime json", "application/json", "lifetime", 5 * time.Minute, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startSlowGateway(t, func(o *apitest.Gateway) { o.WriteTimeout, o.MaxLifetime = tt.writeTimeout, tt.life }, loadertest.Processes(1))
			start := time.Now()
			conn, err := stalledReader(t, g.srv.Listener.Addr().String(), tt.accept, floodCode, 10000)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			bound := min(tt.life, time.Minute) + 5*time.Second // the execution, then the write timeout; or the lifetime
			waitFor(t, bound, "stalled connection dropped", func() bool { return g.state(conn) == http.StateClosed })
			if took := time.Since(start); tt.reason == "lifetime" && took < tt.life-time.Second {
				t.Errorf("dropped after %v, before the lifetime %v", took, tt.life)
			}
			if n := g.metric(`gateway_slow_client_drops_total{reason="` + tt.reason + `"}`); n != 1 {
				t.Errorf("gateway_slow_client_drops_total{reason=%q} = %v, want 1", tt.reason, n)
			}
			// What reached the client is cut short: no end of the chunked body.
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, _ := io.ReadAll(conn)
			if bytes.HasSuffix(got, []byte("0\r\n\r\n")) || len(got) > 4<<20 {
				t.Errorf("client read %d bytes ending %q, want a cut answer", len(got), got[max(0, len(got)-20):])
			}
		})
	}
}

// TestSlowClientOverflowCancelsExecution: a client reading slower than the
// guest logs, past the bytes the gateway holds for it, has its execution
// cancelled (the runtime slot is free long before the guest would end) and
// its connection dropped.
func TestSlowClientOverflowCancelsExecution(t *testing.T) {
	t.Parallel()
	g := startSlowGateway(t, func(o *apitest.Gateway) {
		o.ClientBufferBytes = 64 << 10
		o.WriteTimeout, o.MaxLifetime = 5*time.Minute, 5*time.Minute
	}, loadertest.Processes(1))
	code := `export default { async fetch() {
  const line = "y".repeat(1000);
  for (let i = 0; i < 500; i++) { console.log(line); if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1)); }
  await new Promise((r) => setTimeout(r, 25000));
  return new Response("too late");
} }`
	conn, err := stalledReader(t, g.srv.Listener.Addr().String(), "application/x-ndjson", code, 28000)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%.3000s", g.logs.String())
		}
	})
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// On a loaded machine the guest's lines can fill the buffer before
		// the answer's first bytes leave: the gateway drops the connection
		// sooner, with nothing sent. The checks below still say why.
	case err != nil:
		t.Fatal(err)
	default:
		defer conn.Close()
		// Bounds well under the guest's 25 s sleep.
		waitFor(t, 15*time.Second, "overflowing connection dropped", func() bool { return g.state(conn) == http.StateClosed })
	}
	waitFor(t, 5*time.Second, "runtime slot released", func() bool { return g.metric("gateway_executions_in_flight") == 0 })
	if n := g.metric(`gateway_slow_client_drops_total{reason="buffer_full"}`); n != 1 {
		t.Errorf("gateway_slow_client_drops_total{reason=\"buffer_full\"} = %v, want 1", n)
	}
	if n := g.metric(`gateway_executions_total{outcome="success"}`); n != 0 {
		t.Errorf("successful executions = %v, want 0 (cancelled)", n)
	}
	if !strings.Contains(g.logs.String(), "client reads too slowly") {
		t.Errorf("gateway log lacks the slow client:\n%.2000s", g.logs.String())
	}
	// The runtime serves the next execution at once.
	if res := executeAt(t, g.srv.URL, map[string]any{"code": `export default { fetch() { return new Response("next"); } }`}); !res.Success {
		t.Errorf("next execution = %+v, want success", res)
	}
}

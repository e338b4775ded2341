package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/testwait"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// gate is a receiver that holds every request until released, reporting
// each arrival, and tracks how many it holds at once.
type gate struct {
	*httptest.Server
	arrived        chan struct{}
	release        chan struct{}
	releaseOnce    sync.Once
	inFlight, peak atomic.Int32
}

func newGate(t *testing.T, status int) *gate {
	t.Helper()
	g := &gate{arrived: make(chan struct{}, 100), release: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		n := g.inFlight.Add(1)
		for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
		}
		g.arrived <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
		}
		g.inFlight.Add(-1)
		w.WriteHeader(status)
	}))
	t.Cleanup(g.Close)
	t.Cleanup(g.open) // runs before Close
	return g
}

func (g *gate) open() { g.releaseOnce.Do(func() { close(g.release) }) }

func (g *gate) await(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("waited 10 s for a delivery to arrive")
		}
	}
}

// results collects what Submit's done callbacks report.
type results struct {
	mu  sync.Mutex
	got []webhook.Result
	wg  sync.WaitGroup
}

func (r *results) done() func(webhook.Result) {
	r.wg.Add(1)
	return func(res webhook.Result) {
		r.mu.Lock()
		r.got = append(r.got, res)
		r.mu.Unlock()
		r.wg.Done()
	}
}

func TestSubmitBoundsInFlight(t *testing.T) {
	t.Parallel()
	g := newGate(t, 200)
	d := fast(t, webhook.Options{MaxInFlight: 2})
	var rs results
	for range 6 {
		if err := d.Submit(webhook.Delivery{URL: g.URL, Body: body, Secret: secret}, rs.done()); err != nil {
			t.Fatalf("Submit() = %v", err)
		}
	}
	g.await(t, 2)
	g.open()
	g.await(t, 4)
	rs.wg.Wait()
	if p := g.peak.Load(); p != 2 {
		t.Errorf("receiver held %d deliveries at once, want MaxInFlight 2", p)
	}
	ids := map[string]bool{}
	for _, r := range rs.got {
		if !r.Delivered || ids[r.ID] {
			t.Errorf("result %+v: want delivered, with an id of its own", r)
		}
		ids[r.ID] = true
	}
	if len(rs.got) != 6 {
		t.Errorf("got %d results, want 6", len(rs.got))
	}
}

func TestSubmitQueueFull(t *testing.T) {
	t.Parallel()
	g := newGate(t, 200)
	d := fast(t, webhook.Options{MaxInFlight: 1, MaxQueued: 2})
	dl := webhook.Delivery{URL: g.URL, Body: body, Secret: secret}
	var rs results
	if err := d.Submit(dl, rs.done()); err != nil {
		t.Fatalf("Submit(first) = %v", err)
	}
	g.await(t, 1) // running, so out of the queue
	for i := range 2 {
		if err := d.Submit(dl, rs.done()); err != nil {
			t.Fatalf("Submit(queued %d) = %v", i, err)
		}
	}
	if err := d.Submit(dl, nil); !errors.Is(err, webhook.ErrQueueFull) {
		t.Errorf("Submit(beyond MaxQueued) = %v, want ErrQueueFull", err)
	}
	g.open()
	rs.wg.Wait()
}

// TestCloseLeavesNothingRunning closes a Deliverer with deliveries in
// every state: attempting, waiting to retry, waiting for a turn. Each is
// reported as not delivered, and no goroutine of the package is left. Not
// parallel, so that the goroutines counted are this test's.
func TestCloseLeavesNothingRunning(t *testing.T) {
	held := newGate(t, 200)
	failing := newReceiver(t, answer{status: 503, retryAfter: "30"})
	d := webhook.New(webhook.Options{Reach: webhook.Reach{AllowPrivate: true}, MaxInFlight: 3, MaxRetryTime: time.Minute})
	var rs results
	retried := make(chan struct{}, 1)
	onFail := func(webhook.Attempt) { retried <- struct{}{} }
	submit := func(dl webhook.Delivery) {
		t.Helper()
		dl.Body, dl.Secret = body, secret
		if err := d.Submit(dl, rs.done()); err != nil {
			t.Fatalf("Submit() = %v", err)
		}
	}
	submit(webhook.Delivery{URL: failing.URL, OnAttempt: onFail})
	<-retried // its first attempt is done; it now waits 30 s to retry
	submit(webhook.Delivery{URL: held.URL})
	submit(webhook.Delivery{URL: held.URL})
	held.await(t, 2) // both attempting
	submit(webhook.Delivery{URL: held.URL})
	submit(webhook.Delivery{URL: held.URL}) // these two wait for a turn

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close() = %v, want the grace to run out on the held attempts", err)
	}
	rs.mu.Lock()
	got := append([]webhook.Result(nil), rs.got...) // every done has returned by now
	rs.mu.Unlock()
	checkClosedResults(t, got)
	if err := d.Submit(webhook.Delivery{URL: held.URL, Body: body, Secret: secret}, nil); !errors.Is(err, webhook.ErrClosed) {
		t.Errorf("Submit() after Close = %v, want ErrClosed", err)
	}
	held.open()
	settleGoroutines(t)
}

func checkClosedResults(t *testing.T, got []webhook.Result) {
	t.Helper()
	var neverTried, cutOff int
	for _, r := range got {
		switch {
		case r.Delivered:
			t.Errorf("result %+v: want not delivered", r)
		case len(r.Attempts) == 0 && strings.Contains(r.Reason, "closed before its first attempt"):
			neverTried++
		case len(r.Attempts) == 1 && strings.Contains(r.Reason, "closed"):
			cutOff++
		default:
			t.Errorf("result %+v: want never tried or cut off by Close", r)
		}
	}
	if neverTried != 2 || cutOff != 3 {
		t.Errorf("Close reported %d never tried and %d cut off, want 2 and 3 (%+v)", neverTried, cutOff, got)
	}
}

// settleGoroutines waits, up to a deadline, until no goroutine runs a
// method of the package's types (a worker, a delivery, a dial) or an HTTP
// client connection.
func settleGoroutines(t *testing.T) {
	t.Helper()
	var left string
	if testwait.Until(5*time.Second, func() bool { left = leftover(); return left == "" }) {
		return
	}
	t.Errorf("goroutines left after Close:\n%s", left)
}

func leftover() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/webhook.(*") || strings.Contains(g, "net/http.(*persistConn)") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

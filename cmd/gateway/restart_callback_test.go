package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/testwait"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// hookLog is a receiver that verifies each callback's signature and, while
// hold is set, never answers (the request hangs until the sender goes).
type hookLog struct {
	secret []byte
	mu     sync.Mutex
	hold   bool
	got    map[string]int      // requests per delivery id
	ok     map[string]int      // requests answered 200 per delivery id
	nums   map[string][]string // Gateway-Delivery-Attempt of each request, per delivery id
	bad    []string            // why a request was refused
	first  chan struct{}       // closed on the first request
	once   sync.Once
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(webhook.DeliveryHeader)
	err := webhook.Verify(h.secret, r.Header.Get(webhook.Header), body, time.Now(), time.Minute)
	h.mu.Lock()
	h.got[id]++
	if h.nums == nil {
		h.nums = map[string][]string{}
	}
	h.nums[id] = append(h.nums[id], r.Header.Get(webhook.AttemptHeader))
	hold := h.hold
	if err != nil {
		h.bad = append(h.bad, id+": "+err.Error())
	} else if !hold {
		h.ok[id]++
	}
	h.mu.Unlock()
	h.once.Do(func() { close(h.first) })
	if hold {
		<-r.Context().Done()
		return
	}
	w.WriteHeader(http.StatusOK)
}

// TestKillRestartCallbacks kills the gateway (the real binary, SIGKILL)
// while its callbacks are being sent and the receiver has not answered,
// then restarts it on the same SQLite file: every callback is sent again
// and delivered exactly once after the restart, signed, and every record
// says delivered. At-least-once: a callback cut by the kill reaches the
// receiver twice at most, never more; its attempts are numbered on across
// the restart (1, then 2; or 2 alone if the kill came between counting
// attempt 1 and sending it), never 1 again.
func TestKillRestartCallbacks(t *testing.T) {
	bin := buildGateway(t)
	secret := "kill-restart-callback-secret"
	recv := &hookLog{secret: []byte(secret), hold: true, got: map[string]int{}, ok: map[string]int{}, first: make(chan struct{})}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	env := []string{
		"GATEWAY_STORAGE_PATH=" + filepath.Join(t.TempDir(), "executions.db"),
		"GATEWAY_RUNTIME_WORKERD=" + loadertest.Workerd(t),
		"GATEWAY_RUNTIME_PROCESSES=1",
		"GATEWAY_CALLBACKS_SECRET=" + secret,
		"GATEWAY_CALLBACKS_ALLOW_PRIVATE=true",
	}
	g := startProcess(t, bin, env...)
	const n = 5
	var ids []string
	for range n {
		ids = append(ids, submit(t, g.base, map[string]any{"code": `export default { fetch() { return new Response("x"); } }`, "callbackUrl": srv.URL + "/hook"}))
	}
	select {
	case <-recv.first:
	case <-time.After(60 * time.Second):
		t.Fatalf("no callback within 60s:\n%s", g.stdout.String())
	}
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.done
	recv.mu.Lock()
	recv.hold = false
	recv.mu.Unlock()

	g = startProcess(t, bin, env...)
	defer func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		<-g.done
	}()
	if !testwait.Until(120*time.Second, func() bool { return allDelivered(t, g.base, ids) }) {
		t.Fatalf("callbacks not all delivered within 120s of the restart:\n%s", g.stdout.String())
	}
	// The restarted gateway delivered every one, each at its first
	// answered attempt, and counts them.
	metrics := scrape(t, g.base)
	for name, want := range map[string]float64{
		`gateway_callbacks_total{outcome="delivered"}`:  n,
		`gateway_callback_attempts_total{result="2xx"}`: n,
		`gateway_callbacks_total{outcome="failed"}`:     0,
		`gateway_callback_attempts_total{result="5xx"}`: 0,
	} {
		if got := metrics[name]; got != want {
			t.Errorf("after the restart %s = %v, want %v", name, got, want)
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bad) > 0 {
		t.Errorf("receiver refused signatures: %v", recv.bad)
	}
	for _, id := range ids {
		if recv.ok[id] != 1 || recv.got[id] > 2 {
			t.Errorf("%s: %d requests, %d answered 200; want delivered once, at most 2 requests", id, recv.got[id], recv.ok[id])
		}
		// Numbered on, never again from 1: an attempt is counted before it
		// is sent, so one counted when the gateway was killed, and never
		// sent, leaves a gap (the receiver sees 2 alone).
		last := 0
		for _, n := range recv.nums[id] {
			i, err := strconv.Atoi(n)
			if err != nil || i <= last || i > 2 {
				t.Errorf("%s: %s of its requests = %q, want rising numbers, 1 or 2", id, webhook.AttemptHeader, recv.nums[id])
				break
			}
			last = i
		}
	}
	resent := 0
	for _, id := range ids {
		if recv.got[id] == 2 {
			resent++
		}
	}
	if resent == 0 {
		t.Errorf("no callback reached the receiver again after the restart (requests %v): the one held at the kill must", recv.got)
	}
}

// allDelivered reports whether every record's callback says delivered.
func allDelivered(t *testing.T, base string, ids []string) bool {
	t.Helper()
	for _, id := range ids {
		var rec execution.Record
		getJSON(t, base+"/executions/"+id, &rec)
		if rec.Callback == nil || !rec.Callback.Delivered {
			return false
		}
	}
	return true
}

package cloudflare

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

// TestWarmSlotsLease: a reuse key's slots are leased one execution at a
// time, at most MaxWarmIsolates at once; a release passes its slot to the
// next waiter; a wait given up leaks nothing; two relays never name the
// same isolate.
func TestWarmSlotsLease(t *testing.T) {
	t.Parallel()
	s := newWarmSlots()
	n := worker.Caps.MaxWarmIsolates
	ids := map[string]func(){}
	for range n {
		id, release, err := s.lease(t.Context(), "r_k")
		if err != nil || ids[id] != nil {
			t.Fatalf("lease = %q, %v; want a new id", id, err)
		}
		ids[id] = release
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if id, _, err := s.lease(ctx, "r_k"); err == nil {
		t.Fatalf("lease past %d slots = %q, want a wait that ends with ctx", n, id)
	}
	got := make(chan string, 1)
	go func() {
		id, release, err := s.lease(t.Context(), "r_k")
		if err == nil {
			defer release()
		}
		got <- id
	}()
	var freed string
	for id, release := range ids {
		freed = id
		release()
		release() // twice: no effect
		delete(ids, id)
		break
	}
	select {
	case id := <-got:
		if id != freed {
			t.Errorf("the waiter got %q, want the released %q", id, freed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a released slot never reached the waiter")
	}
	other, release, _ := newWarmSlots().lease(t.Context(), "r_k")
	defer release()
	if ids[other] != nil || other == freed {
		t.Errorf("another relay's isolate %q is one of this relay's", other)
	}
	for _, release := range ids {
		release()
	}
}

// TestRelayLeasesReusedIsolates: many executions of one reuse key at once
// through the relay: the shim never sees one isolate id in two calls at
// once (whatever shim isolate would serve them), and sees at most
// MaxWarmIsolates ids in flight.
func TestRelayLeasesReusedIsolates(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	inFlight := map[string]bool{}
	var overlaps []string
	most := 0
	// The first calls are held until MaxWarmIsolates are in flight at once
	// (a barrier, not a pause), so the leasing is seen at its full width.
	full := make(chan struct{})
	var fullOnce sync.Once
	r := fakeShim(t, func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var j struct {
			ReuseKey string `json:"reuseKey"`
		}
		_ = json.Unmarshal(body, &j)
		mu.Lock()
		if inFlight[j.ReuseKey] || !strings.HasPrefix(j.ReuseKey, "r_same.g") {
			overlaps = append(overlaps, j.ReuseKey)
		}
		inFlight[j.ReuseKey] = true
		most = max(most, len(inFlight))
		if len(inFlight) == worker.Caps.MaxWarmIsolates {
			fullOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		select {
		case <-full:
		case <-time.After(30 * time.Second):
			t.Errorf("%d calls never in flight at once", worker.Caps.MaxWarmIsolates)
		}
		mu.Lock()
		delete(inFlight, j.ReuseKey)
		mu.Unlock()
		answer(w, http.StatusOK, resultLine)
	})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			j := job()
			j.ReuseKey = "r_same"
			if err := r.Execute(t.Context(), j, func(execution.Event) error { return nil }); err != nil {
				t.Errorf("Execute = %v", err)
			}
			if j.ReuseKey != "r_same" {
				t.Errorf("the caller's job now has reuse key %q", j.ReuseKey)
			}
		})
	}
	wg.Wait()
	if len(overlaps) > 0 || most != worker.Caps.MaxWarmIsolates {
		t.Errorf("ids seen twice at once or not leased: %q; %d in flight at most, want %d", overlaps, most, worker.Caps.MaxWarmIsolates)
	}
}

package executions

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// heldBackend starts each execution and holds it until its context ends,
// telling started.
type heldBackend struct {
	replayBackend
	started chan struct{}
	stopped chan error
}

func (b heldBackend) Execute(ctx context.Context, job *execution.Job, emit func(execution.Event) error) error {
	if err := emit(execution.Event{Type: execution.EventStart, ID: job.ID}); err != nil {
		return err
	}
	b.started <- struct{}{}
	<-ctx.Done()
	b.stopped <- context.Cause(ctx)
	return ctx.Err()
}

// TestLeaseLostCounted: a gateway that finds its lease gone (another
// gateway took it over) stops the executions it runs, for that reason,
// and counts it in gateway_lease_lost_total.
func TestLeaseLostCounted(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	m := metrics.New()
	backend := heldBackend{started: make(chan struct{}, 1), stopped: make(chan error, 1)}
	s := New(Options{Backend: backend, Store: st, Metrics: m, Records: RecordOptions{LeaseTTL: 300 * time.Millisecond, Workers: 1},
		Limits: Limits{CompatibilityDate: "2026-11-16", DefaultTimeout: time.Minute, MaxTimeout: time.Minute, MaxResponseBytes: 1 << 10,
			MaxLogLineBytes: 1 << 10, MaxLogBytes: 1 << 12, MaxCodeBytes: 1 << 10, MaxModules: 1, MaxEnvBytes: 1 << 10},
		Now: func() time.Time { return time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC) }})
	s.Start()
	defer s.Close(t.Context())
	body := map[string]json.RawMessage{"code": json.RawMessage(`"export default { fetch() { return new Response('') } }"`)}
	if _, err := s.Submit(t.Context(), execution.Caller{Name: "a"}, execution.RunRequest{ID: "ex_held", Body: body}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-backend.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the queued execution did not start within 30s")
	}
	if got := scrapeLine(t, m, "gateway_lease_lost_total "); got != "gateway_lease_lost_total 0" {
		t.Fatalf("before: %q, want 0", got)
	}
	if err := st.Release(t.Context(), s.owner); err != nil { // as a recovery by another gateway ends it
		t.Fatal(err)
	}
	select {
	case cause := <-backend.stopped:
		if !errors.Is(cause, errLeaseLost) {
			t.Errorf("the execution stopped for %v, want the lease lost", cause)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the execution still runs 30s after the lease went")
	}
	if got := scrapeLine(t, m, "gateway_lease_lost_total "); got != "gateway_lease_lost_total 1" {
		t.Errorf("after: %q, want 1", got)
	}
}

// scrapeLine is the line of m's metrics that starts with prefix.
func scrapeLine(t *testing.T, m *metrics.Metrics, prefix string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

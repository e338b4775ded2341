package cloudflare

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// TestStallIsBreakerFailure: an execution that runs out
// of time because Cloudflare stalled (no answer, or a stream with not even
// the shim's pings) is a failure of the shim, and enough of them open the
// breaker; a guest that merely runs long, the shim pinging, is not.
func TestStallIsBreakerFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		timeout time.Duration
		serve   func(w http.ResponseWriter, r *http.Request)
		open    bool
	}{
		{"no answer", 200 * time.Millisecond, func(_ http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}, true},
		{"silent stream", stallAfter + 500*time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, true},
		{"guest running long", 300 * time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				_, _ = io.WriteString(w, `{"type":"ping"}`+"\n")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
				}
			}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := fakeShim(t, tc.serve)
			for range r.cfg.BreakerFailures {
				j := job()
				j.Timeout = tc.timeout
				var last execution.Event
				err := r.Execute(t.Context(), j, func(ev execution.Event) error { last = ev; return nil })
				if err != nil || last.Result == nil || last.Result.Error == nil || last.Result.Error.Code != execution.CodeTimeout {
					t.Fatalf("Execute() = %v, last event %+v; want a timeout result", err, last)
				}
			}
			if err := r.Ready(t.Context()); (err != nil) != tc.open {
				t.Errorf("Ready() after %d timeouts = %v, want breaker open %v", r.cfg.BreakerFailures, err, tc.open)
			}
		})
	}
}

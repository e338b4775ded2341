package shim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestRelayNetLine: the shim's note that the guest reached for the network
// is recorded on the call and never passed on as an event.
func TestRelayNetLine(t *testing.T) {
	t.Parallel()
	for _, lines := range []string{
		`{"type":"log","level":"log","stream":"stdout","message":"{\"type\":\"net\"}","time":"2026-11-26T12:00:00Z"}` + "\n" + `{"type":"result","success":true}`,
		`{"type":"net"}` + "\n" + `{"type":"log","level":"log","stream":"stdout","message":"m","time":"2026-11-26T12:00:00Z"}` + "\n" + `{"type":"result","success":true}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, lines)
		}))
		defer srv.Close()
		call := &Call{Client: srv.Client(), Base: srv.URL, Secret: "s", MaxEvent: 1 << 20}
		var types []string
		err := call.Run(t.Context(), &execution.Job{ID: "x"}, func(ev execution.Event) error {
			types = append(types, ev.Type)
			return nil
		})
		wantNet := strings.HasPrefix(lines, `{"type":"net"}`)
		if err != nil || strings.Join(types, ",") != "start,log,result" || call.Net() != wantNet {
			t.Errorf("run = %v with events %v and net %v; want start,log,result and net %v", err, types, call.Net(), wantNet)
		}
	}
}

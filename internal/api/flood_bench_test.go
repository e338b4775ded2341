package api_test

import (
	"net/http"
	"testing"

	"github.com/dynamic-workers/gateway/internal/executions"
)

// BenchmarkRecordedFlood runs, through a gateway that records executions,
// a guest printing 100,000 lines (about 87,000 kept under the 1 MB log
// budget), one at a time: what a log flood costs the gateway, its relay
// and its record. Run with a CPU profile to see where:
// go test -run '^$' -bench RecordedFlood -benchtime 10x -cpuprofile cpu.out ./internal/api
func BenchmarkRecordedFlood(b *testing.B) {
	g := newHistoryGateway(b, executions.RecordOptions{})
	body := map[string]any{
		"code": `export default { fetch() { for (let i = 0; i < 100000; i++) console.log("flood " + i); return new Response("ok"); } }`,
	}
	for b.Loop() {
		if resp, data := g.call(b, g.alice, http.MethodPost, "/execute", body); resp.StatusCode != http.StatusOK {
			b.Fatalf("POST /execute = %d %s", resp.StatusCode, data)
		}
	}
}

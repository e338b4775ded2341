package api_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkExecuteHello measures a hello-world execution in a fresh isolate
// through the whole gateway (HTTP in, validation, workerd, capture, JSON out),
// one at a time. Run: go test -run '^$' -bench ExecuteHello ./internal/api
func BenchmarkExecuteHello(b *testing.B) {
	for _, date := range []string{"2026-11-16", "2026-11-17"} {
		b.Run(date, func(b *testing.B) {
			base := gatewayURL(b)
			body := `{"code": "export default { fetch() { console.log('hi'); return new Response('ok'); } }", "compatibilityDate": "` + date + `"}`
			var durations []time.Duration
			for b.Loop() {
				start := time.Now()
				resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				durations = append(durations, time.Since(start))
			}
			slices.Sort(durations)
			b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

package executions

import (
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/redact"
)

// Micro-benchmarks of the service's hot paths.
// Run: go test -run '^$' -bench 'Decode|Collect|Mask' -benchmem ./internal/executions

var benchBody = []byte(`{"code": "export default { async fetch(request, env) { console.log('hello', env.NAME); return new Response('ok'); } }",
 "env": {"NAME": "bench", "N": 42, "CONFIG": {"a": [1, 2, 3]}}, "secrets": {"TOKEN": "tok_abcdef0123456789"},
 "allowOutbound": ["api.example.com"], "compatibilityDate": "2026-11-01", "timeoutMs": 5000,
 "request": {"method": "POST", "url": "/run", "headers": {"x-a": "b"}, "body": "payload"}}`)

func BenchmarkDecodeAndValidate(b *testing.B) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		members, err := execution.DecodeRequest(benchBody)
		if err != nil {
			b.Fatal(err)
		}
		if _, problems := validateExecute(members, fuzzLimits, now); problems != nil {
			b.Fatal(problems)
		}
	}
}

func BenchmarkCollectEvents(b *testing.B) {
	job := &execution.Job{ID: "ex_bench", Secrets: []string{"tok_abcdef0123456789"}}
	for b.Loop() {
		c := newCollector(job, 64<<10, 1<<20)
		for range 20 {
			c.log(&execution.Log{Level: "log", Stream: "stdout", Message: "processing item 17 of 20 with token tok_abcdef0123456789 done", Time: time.Now()})
		}
		c.result(&execution.Result{Success: true, Response: &execution.Response{Status: 200, Body: "ok", BodyEncoding: "utf8", Headers: map[string]string{}}})
	}
}

func BenchmarkMask(b *testing.B) {
	m := redact.New([]string{"tok_abcdef0123456789", "another-secret-value", "k"})
	line := strings.Repeat("a log line without anything secret in it; ", 20)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_ = m.Mask(line)
	}
}

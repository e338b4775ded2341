package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
)

// BenchmarkWarmPath measures the gateway process's own work per warm
// execution: the whole HTTP front door and execution service, with the
// runtime replaced at the execution.Backend seam by one that answers at
// once with what a warm hello world sends (start, one log line, the
// result). Each stage adds one part of the gateway to the one before, so
// the differences say where the microseconds go:
//
//   - http: the same client and a net/http server whose handler reads the
//     body and answers a fixed result (what any Go HTTP service pays);
//   - direct: the gateway's handler called in-process (no network, no
//     net/http server): routing, auth, validation, the service, the
//     collector, metrics and the JSON answer, with logs off;
//   - gateway: the gateway's handler behind the same net/http server;
//   - logs: the same with its log lines written (access line and audit);
//   - records: the same recording every execution in SQLite, as shipped
//     (with the default storage bound per key).
//
// Requests go 4 at a time, as the comparison suite's warm row at
// concurrency 4. Reported per execution: the CPU time of the process
// (client, server and gateway; go-cpu-us/op) and allocations.
// Run: go test -run '^$' -bench WarmPath -benchtime 20000x -count 3 ./internal/api
func BenchmarkWarmPath(b *testing.B) {
	const body = `{"code": "export default { fetch() { console.log(\"hi\"); return new Response(\"ok\"); } }", "compatibilityDate": "2026-11-16", "isolate": "reuse"}`
	fixed := []byte(`{"id":"ex_x","success":true,"mode":"worker","stdout":"hi\n","stderr":"","logs":[{"level":"log","stream":"stdout","message":"hi","time":"2026-11-26T12:00:00Z"}],"response":{"status":200,"headers":{"content-type":"text/plain;charset=UTF-8"},"body":"ok","bodyEncoding":"utf8"},"truncated":false,"outbound":[],"warm":true,"durationMs":0.2}`)
	gateway := func(b *testing.B, log zerolog.Logger, records bool) http.Handler {
		g := apitest.Options()
		if records {
			st, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "executions.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			g.Store = st
			// The storage bound as the gateway ships it (storage.max_bytes_per_key
			// 0: 600 MiB at the defaults), checked after every batch.
			g.Records = executions.RecordOptions{MaxStoredBytesPerKey: 600 << 20}
		}
		return apitest.Serve(b, log, warmBackend{}, g)
	}
	stages := []struct {
		name    string
		handler func(b *testing.B) http.Handler
		direct  bool
	}{
		{"http", func(b *testing.B) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(fixed)
			})
		}, false},
		{"direct", func(b *testing.B) http.Handler { return gateway(b, zerolog.Nop(), false) }, true},
		{"gateway", func(b *testing.B) http.Handler { return gateway(b, zerolog.Nop(), false) }, false},
		{"logs", func(b *testing.B) http.Handler { return gateway(b, zerolog.New(io.Discard), false) }, false},
		{"records", func(b *testing.B) http.Handler { return gateway(b, zerolog.New(io.Discard), true) }, false},
	}
	for _, stage := range stages {
		b.Run(stage.name, func(b *testing.B) {
			h := stage.handler(b)
			post := directPost(h)
			if !stage.direct {
				srv := httptest.NewServer(h)
				b.Cleanup(srv.Close)
				post = clientPost(srv.URL + "/execute")
			}
			if out := post(body); !strings.Contains(out, `"success":true`) {
				b.Fatalf("answer: %s", out)
			}
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			var wg sync.WaitGroup
			work := make(chan struct{})
			for range 4 {
				wg.Go(func() {
					for range work {
						if out := post(body); !strings.Contains(out, `"success":true`) {
							b.Errorf("answer: %s", out)
						}
					}
				})
			}
			for b.Loop() {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "go-cpu-us/op")
		})
	}
}

// warmBackend answers every execution at once with what a warm hello world
// sends: its start, one log line and its result.
type warmBackend struct{}

func (warmBackend) Execute(ctx context.Context, job *execution.Job, emit func(execution.Event) error) error {
	if err := emit(execution.Event{Type: execution.EventStart, ID: job.ID}); err != nil {
		return err
	}
	if err := emit(execution.Event{Type: execution.EventLog, Log: &execution.Log{Level: "log", Stream: execution.StreamStdout, Message: "hi", Time: time.Now()}}); err != nil {
		return err
	}
	return emit(execution.Event{Type: execution.EventResult, Result: &execution.Result{
		Success: true, Mode: execution.ModeWorker, Warm: true, DurationMs: 0.2, Outbound: []execution.Outgoing{},
		Response: &execution.Response{Status: 200, Body: "ok", BodyEncoding: "utf8", Headers: map[string]string{"content-type": "text/plain;charset=UTF-8"}},
	}})
}

func (warmBackend) Ready(context.Context) error { return nil }
func (warmBackend) Drain()                      {}
func (warmBackend) Close() error                { return nil }

// directPost calls h in-process with a POST /execute of a body.
func directPost(h http.Handler) func(body string) string {
	return func(body string) string {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/execute", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Body.String()
	}
}

// clientPost posts a body to url with a keep-alive client.
func clientPost(url string) func(body string) string {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}}
	return func(body string) string {
		resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			return err.Error()
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(data)
	}
}

package shim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// BenchmarkRelay measures reading a shim's NDJSON stream into events: 50
// logs and a result per execution, from a server standing in for the shim.
// Run: go test -run '^$' -bench Relay -benchmem ./internal/loader
func BenchmarkRelay(b *testing.B) {
	var stream strings.Builder
	for i := range 50 {
		fmt.Fprintf(&stream, `{"type":"log","level":"log","stream":"stdout","message":"line %d of the guest's output","time":"2026-11-26T12:00:00.000Z"}`+"\n", i)
		if i%10 == 0 {
			stream.WriteString(`{"type":"ping"}` + "\n")
		}
	}
	stream.WriteString(`{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"ok","bodyEncoding":"utf8"},"outbound":[]}` + "\n")
	body := stream.String()
	shim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = w.Write([]byte(body))
	}))
	defer shim.Close()
	job := &execution.Job{ID: "ex_bench", Modules: map[string]string{"main.js": "x"}, MainModule: "main.js", Timeout: time.Minute}
	call := &Call{Client: shim.Client(), Base: shim.URL, Secret: strings.Repeat("s", 64), MaxEvent: 1 << 20}
	for b.Loop() {
		events := 0
		err := call.Run(context.Background(), job, func(execution.Event) error { events++; return nil })
		if err != nil || events != 52 {
			b.Fatalf("run = %v, %d events", err, events)
		}
	}
}

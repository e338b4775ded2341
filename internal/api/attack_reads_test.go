package api_test

import (
	"bufio"
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// heavyGuests are the shapes of a record as large as the output caps allow:
// a flood of empty lines (count), lines at the line cap (bytes), and the
// largest response body beside them.
var heavyGuests = map[string]string{
	"empty lines": guest(`for (let i = 0; i < 2000000; i++) console.log();`),
	"long lines":  guest(`for (let i = 0; i < 100; i++) console.log("x".repeat(65536));`),
	"big body":    `export default { fetch() { for (let i = 0; i < 40; i++) console.error("e".repeat(30000)); return new Response("r".repeat(2 << 20)); } }`,
}

// TestAttackHeavyRecordReads: reading one's own heavy record took the
// gateway's memory: every route that touched it loaded it whole (GET
// /executions/{id} parsed the full result, an event stream parsed it on
// open and held it while open, GET /executions selected and parsed the
// result of every row listed). 64 slow event streams (the per-key cap) on
// such records took the gateway to 23 GB. Reads now load no more than they
// send, a page at a time, and a key's reads in flight are bounded: 64 slow
// streams, 16 parallel GETs and lists over the heaviest records keep the
// gateway's heap growth far under 512 MiB. Not parallel: it measures the
// process's heap.
func TestAttackHeavyRecordReads(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	var ids []string
	for name, code := range heavyGuests {
		resp, body := g.call(t, g.alice, http.MethodPost, "/execute", map[string]any{"code": code, "timeoutMs": 30000})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: POST /execute = %d %.300s", name, resp.StatusCode, body)
		}
		ids = append(ids, resp.Header.Get(api.ExecutionIDHeader))
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := sampleHeap(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var streams sync.WaitGroup
	opened := make(chan int, executions.MaxEventStreamsPerKey)
	for i := range executions.MaxEventStreamsPerKey {
		streams.Go(func() {
			// A slow reader: it takes the headers and one line, then reads
			// nothing until the test ends.
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/executions/"+ids[i%len(ids)]+"/events", nil)
			req.Header.Set("Authorization", "Bearer "+g.alice)
			req.Header.Set("Accept", []string{"application/x-ndjson", "text/event-stream"}[i%2])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				opened <- 0
				return
			}
			defer resp.Body.Close()
			_, _ = bufio.NewReader(resp.Body).ReadString('\n')
			opened <- resp.StatusCode
			<-ctx.Done()
		})
	}
	for range executions.MaxEventStreamsPerKey {
		if code := <-opened; code != http.StatusOK {
			t.Errorf("a slow event stream opened with %d, want 200", code)
		}
	}
	// With the streams open: every record read at once, as often as a key
	// may, and the list of them.
	var reads sync.WaitGroup
	statuses := make(chan int, 64)
	for i := range executions.MaxReadsPerKey {
		reads.Go(func() {
			resp, body := g.call(t, g.alice, http.MethodGet, "/executions/"+ids[i%len(ids)], nil)
			if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), `"result"`) {
				t.Errorf("GET /executions/{id} = %.200s, want the record with its result", body)
			}
			statuses <- resp.StatusCode
		})
	}
	reads.Wait()
	close(statuses)
	for code := range statuses {
		if code != http.StatusOK && code != http.StatusTooManyRequests {
			t.Errorf("GET /executions/{id} = %d, want 200 (or 429 past the key's reads)", code)
		}
	}
	began := time.Now()
	resp, body := g.call(t, g.alice, http.MethodGet, "/executions?limit=100", nil)
	listed := time.Since(began)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"result"`) || len(body) > 16<<10 {
		t.Errorf("GET /executions = %d, %d bytes, want the records without their results", resp.StatusCode, len(body))
	}
	top := peak()
	cancel()
	streams.Wait()
	grew := int64(top) - int64(base.HeapInuse)
	t.Logf("heap in use: %d MiB before, %d MiB at most with %d slow streams, %d GETs and a list (listed in %v)",
		base.HeapInuse>>20, top>>20, executions.MaxEventStreamsPerKey, executions.MaxReadsPerKey, listed.Round(time.Millisecond))
	if grew > 512<<20 {
		t.Errorf("the heap grew by %d MiB reading heavy records, want under 512 MiB", grew>>20)
	}
}

// sampleHeap samples the heap in use every 5 ms from now; the function it
// returns stops sampling and returns the largest sample.
func sampleHeap(t *testing.T) func() uint64 {
	t.Helper()
	var (
		mu   sync.Mutex
		top  uint64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			top = max(top, m.HeapInuse)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return top
	}
}

package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// guest is a Worker module whose fetch handler runs body, then answers ok
// (unless body returns first).
func guest(body string) string {
	return "export default { async fetch(request, env) {\n" + body + "\nreturn new Response(\"ok\");\n} }"
}

// historyGateway is a gateway with execution records on its own SQLite
// file, on the tests' shared workerd runtime, with two API keys.
type historyGateway struct {
	url        string
	alice, bob string // API keys
	history    *executions.Service
	store      store.Store
	finished   chan *store.Execution // what the Finished hook was given
}

func newHistoryGateway(t testing.TB, opts executions.RecordOptions) *historyGateway {
	t.Helper()
	return newHistoryGatewayAt(t, filepath.Join(t.TempDir(), "executions.db"), opts)
}

// newHistoryGatewayAt is newHistoryGateway on the SQLite file at path.
func newHistoryGatewayAt(t testing.TB, path string, opts executions.RecordOptions) *historyGateway {
	t.Helper()
	return newLoggedHistoryGateway(t, path, opts, zerolog.Nop())
}

// newLoggedHistoryGateway is newHistoryGatewayAt writing its log to log.
func newLoggedHistoryGateway(t testing.TB, path string, opts executions.RecordOptions, log zerolog.Logger) *historyGateway {
	t.Helper()
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return newHistoryGatewayLogged(t, st, opts, log)
}

// newHistoryGatewayOn is newHistoryGateway on st, which it closes.
func newHistoryGatewayOn(t testing.TB, st store.Store, opts executions.RecordOptions) *historyGateway {
	t.Helper()
	return newHistoryGatewayLogged(t, st, opts, zerolog.Nop())
}

// newHistoryGatewayLogged is newHistoryGatewayOn writing its log to log.
func newHistoryGatewayLogged(t testing.TB, st store.Store, opts executions.RecordOptions, log zerolog.Logger) *historyGateway {
	t.Helper()
	gatewayURL(t) // starts the shared runtime
	g := &historyGateway{store: st, finished: make(chan *store.Execution, 100)}
	opts.Finished = func(_ context.Context, e *store.Execution) { g.finished <- e }
	if opts.Callbacks.Secret == nil {
		opts.Callbacks.Secret = func(string) []byte { return callbackSecret }
	}
	var aliceKey, bobKey auth.Key
	g.alice, aliceKey = apitest.NewKey(t, "alice")
	g.bob, bobKey = apitest.NewKey(t, "bob")
	o := apitest.Options()
	o.Keys = auth.NewKeyring([]auth.Key{aliceKey, bobKey})
	o.Store, o.Records = st, opts
	t.Cleanup(func() { st.Close() }) // after the service's own cleanup
	h, svc := apitest.Handler(t, log, shared.backend, o)
	g.history = svc
	srv := httptest.NewServer(h)
	g.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.history.Close(ctx); err != nil {
			t.Errorf("Service.Close = %v", err)
		}
	})
	return g
}

// call sends a request with key and returns the response and its body.
func (g *historyGateway) call(t testing.TB, key, method, path string, body any, header ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, g.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

// record gets execution id's record as key.
func (g *historyGateway) record(t *testing.T, key, id string) (int, execution.Record) {
	t.Helper()
	resp, data := g.call(t, key, http.MethodGet, "/executions/"+id, nil)
	var rec execution.Record
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatalf("GET /executions/%s: %v: %s", id, err, data)
		}
	}
	return resp.StatusCode, rec
}

// await polls id's record until it is in status (records are written off
// the request's path, a moment after its answer), failing after 60s.
func (g *historyGateway) await(t *testing.T, key, id, status string) execution.Record {
	t.Helper()
	var code int
	var rec execution.Record
	if !testwait.Until(60*time.Second, func() bool {
		code, rec = g.record(t, key, id)
		return code == http.StatusOK && rec.Status == status
	}) {
		t.Fatalf("execution %s: %d %s after 60s, want %s", id, code, rec.Status, status)
	}
	return rec
}

// submit posts body to /executions as key and returns the id.
func (g *historyGateway) submit(t *testing.T, key string, body any) string {
	t.Helper()
	resp, data := g.call(t, key, http.MethodPost, "/executions", body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /executions = %d %s, want 202", resp.StatusCode, data)
	}
	var acc execution.Accepted
	if err := json.Unmarshal(data, &acc); err != nil || acc.Status != execution.StatusQueued || acc.ID == "" {
		t.Fatalf("POST /executions = %s, want {id, status: queued}", data)
	}
	if loc := resp.Header.Get("Location"); loc != "/executions/"+acc.ID {
		t.Errorf("Location = %q, want /executions/%s", loc, acc.ID)
	}
	if h := resp.Header.Get(api.ExecutionIDHeader); h != acc.ID {
		t.Errorf("%s = %q, want the id %s", api.ExecutionIDHeader, h, acc.ID)
	}
	return acc.ID
}

// TestSyncExecutionRecorded checks that POST /execute leaves a record under
// the id it answers with, holding exactly its result, masked as it was;
// another key's request for it is a 404.
func TestSyncExecutionRecorded(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	resp, data := g.call(t, g.alice, http.MethodPost, "/execute", map[string]any{
		"code":    guest(`console.log("hi", env.TOKEN); console.error("oops"); return new Response(String(env.TOKEN.length));`),
		"secrets": map[string]string{"TOKEN": "s3cr3t-value"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /execute = %d %s", resp.StatusCode, data)
	}
	var res execution.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "s3cr3t-value") {
		t.Fatalf("the /execute result shows the secret: %s", data)
	}
	rec := g.await(t, g.alice, res.ID, execution.StatusFinished)
	if rec.Async || rec.StartedAt == nil || rec.FinishedAt == nil || rec.Result == nil {
		t.Fatalf("record = %+v, want a finished synchronous record with times and result", rec)
	}
	got, _ := json.Marshal(rec.Result)
	want, _ := json.Marshal(res)
	if !bytes.Equal(got, want) {
		t.Errorf("record result = %s\nwant the /execute result %s", got, want)
	}
	e := <-g.finished
	if e.ID != res.ID || e.Status != store.Finished {
		t.Errorf("Finished hook got %s %s, want %s finished", e.ID, e.Status, res.ID)
	}
	if code, _ := g.record(t, g.bob, res.ID); code != http.StatusNotFound {
		t.Errorf("GET another key's record = %d, want 404", code)
	}
	for _, method := range []string{http.MethodDelete} {
		if resp, _ := g.call(t, g.bob, method, "/executions/"+res.ID, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s another key's record = %d, want 404", method, resp.StatusCode)
		}
	}
	if resp, _ := g.call(t, g.bob, http.MethodGet, "/executions/"+res.ID+"/events", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("events of another key's record = %d, want 404", resp.StatusCode)
	}
	if resp, data := g.call(t, g.alice, http.MethodDelete, "/executions/"+res.ID, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("DELETE a finished record = %d %s, want 409", resp.StatusCode, data)
	}
}

// streamExecute posts code to /execute as alice, asking for NDJSON, and
// returns the streaming response and the execution's id.
func (g *historyGateway) streamExecute(t *testing.T, code string) (*http.Response, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"code": code})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.url+"/execute", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.alice)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get(api.ExecutionIDHeader)
	if resp.StatusCode != http.StatusOK || id == "" {
		resp.Body.Close()
		t.Fatalf("POST /execute = %d, id %q", resp.StatusCode, id)
	}
	return resp, id
}

// TestSyncRecordWhileRunning checks that a synchronous execution still
// running after the hold (its record is written whole when it ends sooner)
// is visible while it runs, with its events so far, and ends with all of
// them.
func TestSyncRecordWhileRunning(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	resp, id := g.streamExecute(t, guest(`console.log("first"); await new Promise((r) => setTimeout(r, 1500)); console.log("second");`))
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() && !strings.Contains(lines.Text(), `"first"`) {
	}
	// The guest sleeps 1.5 s now: its record appears running, with the
	// start and the first log.
	rec := g.await(t, g.alice, id, execution.StatusRunning)
	if rec.FinishedAt != nil || rec.Result != nil {
		t.Errorf("running record = %+v, want no end and no result", rec)
	}
	var evs []store.Event
	testwait.Until(10*time.Second, func() bool {
		evs, _ = g.store.Events(t.Context(), id, 0, 10)
		return len(evs) >= 2
	})
	if len(evs) != 2 || evs[0].Type != execution.EventStart || !strings.Contains(string(evs[1].Data), `"first"`) {
		t.Errorf("events stored while running = %v; want the start and the first log", evs)
	}
	for lines.Scan() {
	}
	rec = g.await(t, g.alice, id, execution.StatusFinished)
	if rec.Result == nil || len(rec.Result.Logs) != 2 {
		t.Fatalf("finished record = %+v, want its result with both logs", rec)
	}
	_, events := g.call(t, g.alice, http.MethodGet, "/executions/"+id+"/events", nil)
	if n := strings.Count(string(events), "\n"); n != 4 {
		t.Errorf("events after the end = %d lines, want 4 (start, 2 logs, result): %s", n, events)
	}
	// Closing the History twice (the test's cleanup closes it a third
	// time) is harmless.
	for range 2 {
		if err := g.history.Close(t.Context()); err != nil {
			t.Errorf("History.Close = %v", err)
		}
	}
}

// TestListExecutions checks GET /executions: the caller's own, newest
// first, filtered by status, paged by limit and cursor.
func TestListExecutions(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	g.history.Drain() // nothing runs: submissions stay queued
	var want []string
	for i := range 5 {
		want = append([]string{g.submit(t, g.alice, map[string]any{"code": guest(fmt.Sprintf("return new Response('%d');", i))})}, want...)
	}
	g.submit(t, g.bob, map[string]any{"code": guest("")})
	resp, data := g.call(t, g.alice, http.MethodPost, "/execute", map[string]any{"code": guest("")})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /execute = %d %s", resp.StatusCode, data)
	}
	sync := resp.Header.Get(api.ExecutionIDHeader)
	g.await(t, g.alice, sync, execution.StatusFinished)
	want = append([]string{sync}, want...)

	var got []string
	cursor := ""
	for range 10 {
		resp, data := g.call(t, g.alice, http.MethodGet, "/executions?limit=2&cursor="+cursor, nil)
		var page execution.RecordList
		if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &page) != nil {
			t.Fatalf("GET /executions = %d %s", resp.StatusCode, data)
		}
		for _, r := range page.Executions {
			got = append(got, r.ID)
			if r.Result != nil {
				t.Errorf("list item %s has a result; list items leave it out", r.ID)
			}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GET /executions pages = %v, want %v", got, want)
	}
	resp, data = g.call(t, g.alice, http.MethodGet, "/executions?status=queued", nil)
	var page execution.RecordList
	_ = json.Unmarshal(data, &page)
	if resp.StatusCode != http.StatusOK || len(page.Executions) != 5 {
		t.Errorf("GET /executions?status=queued = %d, %d records; want 5", resp.StatusCode, len(page.Executions))
	}
	for _, q := range []string{"status=done", "limit=0", "limit=101", "limit=x", "cursor=zz", "cursor=" + sync} {
		if resp, data := g.call(t, g.alice, http.MethodGet, "/executions?"+q, nil); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("GET /executions?%s = %d %s, want 422", q, resp.StatusCode, data)
		}
	}
}

// openEvents opens id's event stream.
func (g *historyGateway) openEvents(t *testing.T, key, id, accept, resume string) io.ReadCloser {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, g.url+"/executions/"+id+"/events"+resume, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", accept)
	if strings.HasPrefix(resume, "#") {
		req.URL.Fragment = ""
		req.Header.Set("Last-Event-ID", strings.TrimPrefix(resume, "#"))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET events = %d %s", resp.StatusCode, b)
	}
	return resp.Body
}

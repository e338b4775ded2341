package client_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
)

// historyGateway serves with execution records on a fresh SQLite file.
func historyGateway(t *testing.T, opts executions.RecordOptions) (*client.Client, *executions.Service) {
	url, h := historyServer(t, opts)
	return client.New(url), h
}

// historyServer is historyGateway's server: its URL and service.
func historyServer(t *testing.T, opts executions.RecordOptions) (string, *executions.Service) {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "executions.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if opts.Callbacks.Secret == nil {
		opts.Callbacks.Secret = func(string) []byte { return []byte("client-test-callback-secret") }
	}
	o := testOptions
	o.Store, o.Records = st, opts
	h, svc := apitest.Handler(t, zerolog.Nop(), backend, o)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, svc
}

// TestSubmitFollow submits an execution, follows its events to the end,
// and reads its record, list and cancel through the client.
func TestSubmitFollow(t *testing.T) {
	c, _ := historyGateway(t, executions.RecordOptions{Workers: 1})
	acc, err := c.Submit(t.Context(), &execution.Submission{
		Request: execution.Request{Code: `export default { async fetch() {
  for (let i = 0; i < 5; i++) { console.log("n" + i); await new Promise((r) => setTimeout(r, 10)); }
  return new Response("end");
} }`},
		CallbackURL: "https://example.com/cb",
	})
	if err != nil || acc.Status != execution.StatusQueued {
		t.Fatalf("Submit = %+v, %v; want queued", acc, err)
	}
	var logs []string
	var ids []int64
	var result *execution.Result
	for ev, err := range c.Follow(t.Context(), acc.ID, 0) {
		if err != nil {
			t.Fatalf("Follow: %v", err)
		}
		ids = append(ids, ev.ID)
		switch ev.Type {
		case execution.EventLog:
			logs = append(logs, ev.Log.Message)
		case execution.EventResult:
			result = ev.Result
		}
	}
	if strings.Join(logs, ",") != "n0,n1,n2,n3,n4" || result == nil || result.Response.Body != "end" || len(ids) != 7 || ids[6] != 7 {
		t.Errorf("Follow: logs %v, result %+v, ids %v; want n0…n4, end, ids 1…7", logs, result, ids)
	}
	var tail []int64
	for ev, err := range c.Follow(t.Context(), acc.ID, 5) {
		if err != nil {
			t.Fatal(err)
		}
		tail = append(tail, ev.ID)
	}
	if len(tail) != 2 || tail[0] != 6 {
		t.Errorf("Follow(after 5) ids = %v, want [6 7]", tail)
	}
	rec, err := c.Get(t.Context(), acc.ID)
	if err != nil || rec.Status != execution.StatusFinished || rec.Result == nil || len(rec.Result.Logs) != 5 || rec.CallbackURL != "https://example.com/cb" ||
		rec.Callback == nil || rec.Callback.URL != "https://example.com/cb" || rec.Callback.State == execution.CallbackWaiting {
		t.Errorf("Get = %+v, %v; want finished with 5 logs and the callback", rec, err)
	}
	list, err := c.List(t.Context(), client.ListOptions{Status: execution.StatusFinished, Limit: 10})
	if err != nil || len(list.Executions) != 1 || list.Executions[0].ID != acc.ID {
		t.Errorf("List = %+v, %v; want the one record", list, err)
	}
	_, err = c.Cancel(t.Context(), acc.ID)
	var gwErr *client.Error
	if !errors.As(err, &gwErr) || gwErr.Code != client.CodeNotCancellable {
		t.Errorf("Cancel(finished) = %v, want %s", err, client.CodeNotCancellable)
	}
	_, err = c.Get(t.Context(), "ex_nosuchexecution")
	if !errors.As(err, &gwErr) || gwErr.Code != client.CodeNotFound {
		t.Errorf("Get(unknown) = %v, want %s", err, client.CodeNotFound)
	}
}

// TestSubmitQueueFull checks that a full queue is CodeQueueFull with its
// Retry-After, and Cancel of a queued execution.
func TestSubmitQueueFull(t *testing.T) {
	c, h := historyGateway(t, executions.RecordOptions{MaxQueued: 1})
	h.Drain()
	req := &execution.Submission{Request: execution.Request{Code: `export default { fetch() { return new Response("x"); } }`}}
	acc, err := c.Submit(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Submit(t.Context(), req)
	var gwErr *client.Error
	if !errors.As(err, &gwErr) || gwErr.Code != client.CodeQueueFull || gwErr.RetryAfter <= 0 {
		t.Errorf("Submit(queue full) = %v, want %s with RetryAfter", err, client.CodeQueueFull)
	}
	rec, err := c.Cancel(t.Context(), acc.ID)
	if err != nil || rec.Status != execution.StatusCancelled {
		t.Errorf("Cancel(queued) = %+v, %v; want cancelled", rec, err)
	}
}

// cutTransport cuts the body of the first event stream it carries after
// lines lines, as a dropped connection would.
type cutTransport struct {
	lines int
	cut   bool
}

func (c *cutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || c.cut || !strings.HasSuffix(req.URL.Path, "/events") {
		return resp, err
	}
	c.cut = true
	resp.Body = &cutBody{r: bufio.NewReader(resp.Body), c: resp.Body, left: c.lines}
	return resp, nil
}

type cutBody struct {
	r    *bufio.Reader
	c    io.Closer
	left int
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	line, err := b.r.ReadBytes('\n')
	if len(line) > 0 {
		b.left--
	}
	return copy(p, line), err // lines are far shorter than p
}

func (b *cutBody) Close() error { return b.c.Close() }

// TestFollowResumes cuts Follow's first connection after 3 events: it
// reconnects after the last event read, and every event comes once.
func TestFollowResumes(t *testing.T) {
	base, _ := historyServer(t, executions.RecordOptions{Workers: 1})
	c := client.New(base)
	acc, err := c.Submit(t.Context(), &execution.Submission{Request: execution.Request{Code: `export default { async fetch() {
  for (let i = 0; i < 8; i++) { console.log("n" + i); await new Promise((r) => setTimeout(r, 10)); }
  return new Response("end");
} }`}})
	if err != nil {
		t.Fatal(err)
	}
	cutting := client.New(base, client.WithHTTPClient(&http.Client{Transport: &cutTransport{lines: 3}}))
	var ids []int64
	for ev, err := range cutting.Follow(t.Context(), acc.ID, 0) {
		if err != nil {
			t.Fatalf("Follow: %v", err)
		}
		ids = append(ids, ev.ID)
	}
	if len(ids) != 10 {
		t.Fatalf("Follow ids = %v, want 1…10", ids)
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Errorf("Follow ids = %v, want 1…10 once each", ids)
			break
		}
	}
}

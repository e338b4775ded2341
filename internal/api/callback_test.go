package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/testwait"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// callbackSecret signs the test gateways' callbacks.
var callbackSecret = []byte("whsec-api-test-secret-0123456789")

// hook is one callback as the test receiver got it.
type hook struct {
	delivery, attempt string
	verifyErr         error
	body              []byte
}

// hookReceiver is a real HTTP server that verifies every request's
// signature with webhook.Verify and answers by a plan: the status of the
// n-th request (the last repeats); 0 holds the request until the client
// gives up on it. got receives every request as it arrives.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	seen []hook
	plan []int
	got  chan hook
}

func newHookReceiver(t *testing.T, plan ...int) *hookReceiver {
	t.Helper()
	r := &hookReceiver{plan: plan, got: make(chan hook, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	h := hook{
		delivery:  req.Header.Get(webhook.DeliveryHeader),
		attempt:   req.Header.Get(webhook.AttemptHeader),
		verifyErr: webhook.Verify(callbackSecret, req.Header.Get(webhook.Header), body, time.Now(), time.Minute),
		body:      body,
	}
	r.mu.Lock()
	status := r.plan[min(len(r.seen), len(r.plan)-1)]
	r.seen = append(r.seen, h)
	r.mu.Unlock()
	r.got <- h
	if status == 0 {
		<-req.Context().Done()
		return
	}
	w.WriteHeader(status)
}

func (r *hookReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// next waits for the receiver's next request, failing after 60s.
func (r *hookReceiver) next(t *testing.T) hook {
	t.Helper()
	select {
	case h := <-r.got:
		return h
	case <-time.After(60 * time.Second):
		t.Fatal("no callback within 60s")
		return hook{}
	}
}

// fastRetries are webhook options for tests: private receivers allowed,
// retries after 10 to 20 ms.
func fastRetries() executions.CallbackOptions {
	return executions.CallbackOptions{Webhook: webhook.Options{
		Reach: webhook.Reach{AllowPrivate: true}, Timeout: 30 * time.Second,
		Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
	}}
}

// awaitCallback polls id's record until its callback is in state.
func (g *historyGateway) awaitCallback(t *testing.T, id, state string) *execution.Callback {
	t.Helper()
	var rec execution.Record
	if !testwait.Until(60*time.Second, func() bool {
		_, rec = g.record(t, g.alice, id)
		return rec.Callback != nil && rec.Callback.State == state
	}) {
		t.Fatalf("execution %s: callback %+v after 60s, want %s", id, rec.Callback, state)
	}
	return rec.Callback
}

// TestCallbackDelivered: an async execution with a callbackUrl ends; the
// receiver gets its record, signed, once; the record shows the attempt.
func TestCallbackDelivered(t *testing.T) {
	recv := newHookReceiver(t, http.StatusOK)
	g := newHistoryGateway(t, executions.RecordOptions{Callbacks: fastRetries()})
	id := g.submit(t, g.alice, map[string]any{"code": guest(`console.log("hello");`), "callbackUrl": recv.URL + "/cb?token=x"})

	h := recv.next(t)
	if h.verifyErr != nil {
		t.Errorf("webhook.Verify = %v, want a valid signature", h.verifyErr)
	}
	if h.delivery != id || h.attempt != "1" {
		t.Errorf("delivery %q attempt %q, want %s and 1", h.delivery, h.attempt, id)
	}
	var sent execution.Record
	if err := json.Unmarshal(h.body, &sent); err != nil {
		t.Fatalf("callback body %s: %v", h.body, err)
	}
	if sent.ID != id || sent.Status != execution.StatusFinished || sent.Result == nil || sent.Result.Stdout != "hello" ||
		sent.Callback == nil || sent.Callback.URL != recv.URL+"/cb?token=x" || sent.Callback.State != execution.CallbackPending {
		t.Errorf("callback body = %s, want the finished record, its callback pending", h.body)
	}
	if strings.Contains(string(h.body), string(callbackSecret)) {
		t.Errorf("callback body carries the secret: %s", h.body)
	}

	cb := g.awaitCallback(t, id, execution.CallbackDelivered)
	if !cb.Delivered || len(cb.Attempts) != 1 || cb.Attempts[0].Status != http.StatusOK || cb.Attempts[0].Error != "" {
		t.Errorf("record callback = %+v, want delivered in one attempt answered 200", cb)
	}
	// The record as GET shows it now differs from the body sent only in
	// its callback.
	_, rec := g.record(t, g.alice, id)
	rec.Callback, sent.Callback = nil, nil
	a, _ := json.Marshal(rec)
	b, _ := json.Marshal(sent)
	if string(a) != string(b) {
		t.Errorf("callback body %s, want GET's record %s", b, a)
	}
	_, raw := g.call(t, g.alice, http.MethodGet, "/executions/"+id, nil)
	if strings.Contains(string(raw), string(callbackSecret)) {
		t.Errorf("GET /executions/%s shows the secret: %s", id, raw)
	}
	if n := recv.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

// TestCallbackRetried: a receiver failing twice, then answering 200, gets
// three attempts, all stored in the record, in order.
func TestCallbackRetried(t *testing.T) {
	for _, plan := range [][]int{{500, 503, 200}, {429, 408, 204}} {
		t.Run(strings.Trim(strings.Join(strings.Fields(fmtInts(plan)), "-"), "[]"), func(t *testing.T) {
			recv := newHookReceiver(t, plan...)
			g := newHistoryGateway(t, executions.RecordOptions{Callbacks: fastRetries()})
			id := g.submit(t, g.alice, map[string]any{"code": guest(""), "callbackUrl": recv.URL})
			cb := g.awaitCallback(t, id, execution.CallbackDelivered)
			if len(cb.Attempts) != 3 {
				t.Fatalf("attempts = %+v, want 3", cb.Attempts)
			}
			for i, a := range cb.Attempts {
				if a.Status != plan[i] || (i < 2) != (a.Error != "") || (i > 0 && a.At.Before(cb.Attempts[i-1].At)) {
					t.Errorf("attempt %d = %+v, want status %d, in order, an error only on failures", i+1, a, plan[i])
				}
			}
			for i := range 3 {
				if h := recv.next(t); h.verifyErr != nil || h.delivery != id {
					t.Errorf("request %d: verify %v, delivery %q; want signed, %s", i+1, h.verifyErr, h.delivery, id)
				}
			}
		})
	}
}

func fmtInts(v []int) string {
	b, _ := json.Marshal(v)
	return strings.ReplaceAll(string(b), ",", " ")
}

// TestCallbackGivenUp: a 4xx other than 408 and 429 ends the delivery as
// failed, with the reason, after one attempt.
func TestCallbackGivenUp(t *testing.T) {
	recv := newHookReceiver(t, http.StatusGone)
	g := newHistoryGateway(t, executions.RecordOptions{Callbacks: fastRetries()})
	id := g.submit(t, g.alice, map[string]any{"code": guest(""), "callbackUrl": recv.URL})
	cb := g.awaitCallback(t, id, execution.CallbackFailed)
	if cb.Delivered || len(cb.Attempts) != 1 || cb.Attempts[0].Status != http.StatusGone || !strings.Contains(cb.Reason, "410") {
		t.Errorf("callback = %+v, want failed after one 410", cb)
	}
}

// TestCallbackURLRefused: private, loopback and metadata addresses, in
// several spellings, are refused with 422 naming callbackUrl unless
// allow_private; so is any callbackUrl for a key without a secret.
func TestCallbackURLRefused(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	private := []string{
		"http://127.0.0.1:9000/cb", "http://localhost/cb", "http://[::1]/cb", "http://2130706433/cb",
		"http://0x7f.1/cb", "http://[::ffff:127.0.0.1]/cb", "http://10.0.0.5/cb", "http://192.168.1.1/cb",
		"http://169.254.169.254/latest/meta-data", "http://metadata.google.internal/", "http://intranet/cb",
		"http://0.0.0.0/cb",
	}
	for _, u := range private {
		resp, data := g.call(t, g.alice, http.MethodPost, "/executions", map[string]any{"code": guest(""), "callbackUrl": u})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"callbackUrl"`) {
			t.Errorf("callbackUrl %s = %d %s, want 422 naming callbackUrl", u, resp.StatusCode, data)
		}
	}
	open := newHistoryGateway(t, executions.RecordOptions{Callbacks: fastRetries()})
	resp, data := open.call(t, open.alice, http.MethodPost, "/executions", map[string]any{"code": guest(""), "callbackUrl": private[0]})
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("callbackUrl %s with allow_private = %d %s, want 202", private[0], resp.StatusCode, data)
	}
	only := fastRetries()
	only.Secret = func(caller string) []byte {
		if caller == "alice" {
			return callbackSecret
		}
		return nil
	}
	perKey := newHistoryGateway(t, executions.RecordOptions{Callbacks: only})
	body := map[string]any{"code": guest(""), "callbackUrl": "https://hooks.example.com/cb"}
	if resp, data := perKey.call(t, perKey.bob, http.MethodPost, "/executions", body); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(string(data), `"callbackUrl"`) || !strings.Contains(string(data), "secret") {
		t.Errorf("callbackUrl for a key without a secret = %d %s, want 422 naming callbackUrl and the secret", resp.StatusCode, data)
	}
	if resp, data := perKey.call(t, perKey.alice, http.MethodPost, "/executions", body); resp.StatusCode != http.StatusAccepted {
		t.Errorf("callbackUrl for a key with a secret = %d %s, want 202", resp.StatusCode, data)
	}
	if n, _ := g.store.CountQueued(t.Context()); n != 0 {
		t.Errorf("%d queued after refused submissions, want 0", n)
	}
}

// TestCallbackCancelled: cancelling a queued execution sends its record,
// cancelled, to its callback.
func TestCallbackCancelled(t *testing.T) {
	recv := newHookReceiver(t, http.StatusOK)
	g := newHistoryGateway(t, executions.RecordOptions{Callbacks: fastRetries(), Workers: 1})
	block := g.submit(t, g.alice, map[string]any{"code": guest(`await new Promise((r) => setTimeout(r, 3000));`)})
	g.await(t, g.alice, block, execution.StatusRunning)
	id := g.submit(t, g.alice, map[string]any{"code": guest(""), "callbackUrl": recv.URL})
	if resp, data := g.call(t, g.alice, http.MethodDelete, "/executions/"+id, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d %s, want 200", resp.StatusCode, data)
	}
	h := recv.next(t)
	var sent execution.Record
	if err := json.Unmarshal(h.body, &sent); err != nil || h.verifyErr != nil || sent.Status != execution.StatusCancelled {
		t.Errorf("callback = %s (verify %v), want the cancelled record, signed", h.body, h.verifyErr)
	}
	g.awaitCallback(t, id, execution.CallbackDelivered)
}

package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// received is one request as the test receiver saw it.
type received struct {
	at        time.Time
	delivery  string
	attempt   string
	verifyErr error
	body      []byte
	ctype     string
}

// receiver is a real HTTP server that verifies each request's signature
// with Verify and answers from a script (the last answer repeats).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	plan []answer
}

// dateIn2s as an answer's retryAfter sends an HTTP date 2 s after the answer.
const dateIn2s = "date in 2s"

type answer struct {
	status     int
	retryAfter string
	location   string
}

func newReceiver(t *testing.T, plan ...answer) *receiver {
	t.Helper()
	r := &receiver{plan: plan}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	rec := received{
		at:        time.Now(),
		delivery:  req.Header.Get(webhook.DeliveryHeader),
		attempt:   req.Header.Get(webhook.AttemptHeader),
		verifyErr: webhook.Verify(secret, req.Header.Get(webhook.Header), b, time.Now(), time.Minute),
		body:      b,
		ctype:     req.Header.Get("Content-Type"),
	}
	r.mu.Lock()
	a := r.plan[min(len(r.got), len(r.plan)-1)]
	r.got = append(r.got, rec)
	r.mu.Unlock()
	switch a.retryAfter {
	case "":
	case dateIn2s:
		w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
	default:
		w.Header().Set("Retry-After", a.retryAfter)
	}
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte("receiver says something that must not be kept"))
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// fast is a Deliverer for loopback receivers with short waits.
func fast(t *testing.T, o webhook.Options) *webhook.Deliverer {
	t.Helper()
	o.Reach.AllowPrivate = true
	if o.Backoff.Min == 0 {
		o.Backoff = backoff.Policy{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	d := webhook.New(o)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func TestDeliverSignedRecord(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, answer{status: http.StatusNoContent})
	d := fast(t, webhook.Options{})
	res := d.Deliver(t.Context(), webhook.Delivery{ID: "ex_1:callback", URL: r.URL + "/hook?token=abc", Body: body, Secret: secret})
	if !res.Delivered || res.Reason != "" || len(res.Attempts) != 1 || res.Attempts[0].Status != 204 {
		t.Fatalf("Deliver() = %+v, want delivered in one attempt with 204", res)
	}
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	g := got[0]
	if g.verifyErr != nil {
		t.Errorf("receiver Verify() = %v, want nil", g.verifyErr)
	}
	if !bytes.Equal(g.body, body) || g.ctype != "application/json" || g.delivery != "ex_1:callback" || g.attempt != "1" {
		t.Errorf("receiver got body %q, type %q, delivery %q, attempt %q; want the record, application/json, ex_1:callback, 1",
			g.body, g.ctype, g.delivery, g.attempt)
	}
}

func TestDeliverRetriesUntilTaken(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, answer{status: 500}, answer{status: 502}, answer{status: 503}, answer{status: 200})
	d := fast(t, webhook.Options{})
	var reported []webhook.Attempt
	res := d.Deliver(t.Context(), webhook.Delivery{URL: r.URL, Body: body, Secret: secret,
		OnAttempt: func(a webhook.Attempt) { reported = append(reported, a) }})
	if !res.Delivered {
		t.Fatalf("Deliver() = %+v, want delivered", res)
	}
	wantStatus := []int{500, 502, 503, 200}
	if len(reported) != len(wantStatus) || len(res.Attempts) != len(wantStatus) {
		t.Fatalf("reported %d attempts, result has %d, want %d", len(reported), len(res.Attempts), len(wantStatus))
	}
	for i, a := range reported {
		if a.Status != wantStatus[i] || a != res.Attempts[i] || a.At.IsZero() || a.Duration <= 0 {
			t.Errorf("attempt %d = %+v, want status %d, the same in the result, a time and a duration", i+1, a, wantStatus[i])
		}
		if (a.Error == "") != (a.Status == 200) {
			t.Errorf("attempt %d error = %q with status %d, want an error exactly when it failed", i+1, a.Error, a.Status)
		}
	}
	for i, g := range r.requests() {
		if g.verifyErr != nil || g.delivery != res.ID || g.attempt != strconv.Itoa(i+1) {
			t.Errorf("request %d: verify %v, delivery %q, attempt %q; want verified, %q, %d", i+1, g.verifyErr, g.delivery, g.attempt, res.ID, i+1)
		}
	}
}

func TestDeliverRetriedStatuses(t *testing.T) {
	t.Parallel()
	for _, code := range []int{408, 429, 500, 502, 503, 504, 599} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, answer{status: code}, answer{status: 200})
			res := fast(t, webhook.Options{}).Deliver(t.Context(), webhook.Delivery{URL: r.URL, Body: body, Secret: secret})
			if !res.Delivered || len(res.Attempts) != 2 || res.Attempts[0].Status != code {
				t.Errorf("Deliver() after %d = %+v, want delivered on the second attempt", code, res)
			}
		})
	}
}

func TestDeliverGivesUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code int
		why  string
	}{
		{400, "not retried"}, {401, "not retried"}, {403, "not retried"}, {404, "not retried"},
		{410, "not retried"}, {413, "not retried"}, {422, "not retried"},
		{301, "redirects are not followed"}, {302, "redirects are not followed"},
		{307, "redirects are not followed"}, {308, "redirects are not followed"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, answer{status: tt.code, location: "/elsewhere"}, answer{status: 200})
			res := fast(t, webhook.Options{}).Deliver(t.Context(), webhook.Delivery{URL: r.URL, Body: body, Secret: secret})
			if res.Delivered || len(res.Attempts) != 1 || !strings.Contains(res.Reason, strconv.Itoa(tt.code)) || !strings.Contains(res.Reason, tt.why) {
				t.Errorf("Deliver() after %d = %+v, want one attempt and a reason naming %d and %q", tt.code, res, tt.code, tt.why)
			}
			if n := len(r.requests()); n != 1 {
				t.Errorf("receiver got %d requests, want 1", n)
			}
		})
	}
}

func TestDeliverRefusesBadDeliveries(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, answer{status: 200})
	tests := []struct {
		name string
		dl   webhook.Delivery
		want string
	}{
		{"no secret", webhook.Delivery{URL: r.URL, Body: body}, "no secret"},
		{"id with a newline", webhook.Delivery{ID: "a\r\nX-Evil: 1", URL: r.URL, Body: body, Secret: secret}, "delivery id"},
		{"id too long", webhook.Delivery{ID: strings.Repeat("a", 129), URL: r.URL, Body: body, Secret: secret}, "delivery id"},
		{"ftp URL", webhook.Delivery{URL: "ftp://example.com/", Body: body, Secret: secret}, "scheme"},
		{"userinfo", webhook.Delivery{URL: strings.Replace(r.URL, "//", "//u:p@", 1), Body: body, Secret: secret}, "user name"},
	}
	d := fast(t, webhook.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := d.Deliver(t.Context(), tt.dl)
			if res.Delivered || len(res.Attempts) != 0 || !strings.Contains(res.Reason, tt.want) {
				t.Errorf("Deliver() = %+v, want no attempt and a reason with %q", res, tt.want)
			}
		})
	}
	if n := len(r.requests()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for name, retryAfter := range map[string]string{"seconds": "1", "date": dateIn2s} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, answer{status: 429, retryAfter: retryAfter}, answer{status: 200})
			res := fast(t, webhook.Options{}).Deliver(t.Context(), webhook.Delivery{URL: r.URL, Body: body, Secret: secret})
			got := r.requests()
			if !res.Delivered || len(got) != 2 {
				t.Fatalf("Deliver() = %+v with %d requests, want delivered on the second", res, len(got))
			}
			// The backoff alone waits 5 ms; the date is 2 s ahead when
			// made, at most a second of which its rounding can lose. A
			// lower bound: a loaded machine only widens the gap.
			if gap := got[1].at.Sub(got[0].at); gap < 900*time.Millisecond {
				t.Errorf("second attempt %v after the first, want at least the Retry-After of 1 s", gap)
			}
		})
	}
}

func TestDeliverRetryAfterPastTheBound(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, answer{status: 503, retryAfter: "3600"}, answer{status: 200})
	d := fast(t, webhook.Options{MaxRetryTime: 30 * time.Second})
	res := d.Deliver(t.Context(), webhook.Delivery{URL: r.URL, Body: body, Secret: secret})
	// The reason names the Retry-After only when Deliver gives up at once,
	// rather than waiting out its retry time.
	if res.Delivered || len(res.Attempts) != 1 || !strings.Contains(res.Reason, "retry after 1h0m0s") {
		t.Errorf("Deliver() = %+v, want one attempt and a reason naming the Retry-After", res)
	}
}

func TestDeliverBoundedTime(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a closed connection only after the body
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(hang) }) // runs first
	failing := newReceiver(t, answer{status: 500})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name, url, want string
	}{
		{"always 500", failing.URL, "answered 500"},
		{"never answers", hanging.URL, "no answer within"},
		{"connection refused", closed.URL, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const bound = 1500 * time.Millisecond
			d := fast(t, webhook.Options{MaxRetryTime: bound, Timeout: 300 * time.Millisecond,
				Backoff: backoff.Policy{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}})
			res := d.Deliver(t.Context(), webhook.Delivery{URL: tt.url + "/cb?token=SECRET-TOKEN", Body: body, Secret: secret})
			for _, a := range res.Attempts {
				if strings.Contains(a.Error, "SECRET-TOKEN") {
					t.Errorf("attempt error %q repeats the URL's query", a.Error)
				}
				// By the attempts' own record: none starts past the bound.
				if first := res.Attempts[0].At; !a.At.Before(first.Add(bound)) {
					t.Errorf("an attempt started %v after the first, want none past the retry time %v", a.At.Sub(first), bound)
				}
			}
			if res.Delivered || len(res.Attempts) < 2 || !strings.Contains(res.Reason, "retry time") {
				t.Fatalf("Deliver() = %+v, want several attempts, then the retry time spent", res)
			}
			if a := res.Attempts[0]; !strings.Contains(a.Error, tt.want) {
				t.Errorf("first attempt = %+v, want an error with %q", a, tt.want)
			}
		})
	}
}

func TestDeliverHTTPS(t *testing.T) {
	t.Parallel()
	var verifyErr error
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		verifyErr = webhook.Verify(secret, r.Header.Get(webhook.Header), b, time.Now(), 0)
	}))
	t.Cleanup(srv.Close)
	trusting := srv.Client().Transport.(*http.Transport).TLSClientConfig
	res := fast(t, webhook.Options{TLSConfig: trusting}).Deliver(t.Context(), webhook.Delivery{URL: srv.URL, Body: body, Secret: secret})
	if !res.Delivered || verifyErr != nil {
		t.Errorf("Deliver(https) = %+v, receiver Verify() = %v; want delivered and verified", res, verifyErr)
	}
	// Without trusting the test CA the certificate is refused, and retried
	// until the bound like any connection failure.
	res = fast(t, webhook.Options{MaxRetryTime: 2 * time.Second}).Deliver(t.Context(), webhook.Delivery{URL: srv.URL, Body: body, Secret: secret})
	if res.Delivered || len(res.Attempts) == 0 || !strings.Contains(res.Attempts[0].Error, "certificate") {
		t.Errorf("Deliver(https, untrusted) = %+v, want a certificate error", res)
	}
}

func TestAttemptJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		a    webhook.Attempt
		want string
	}{
		{webhook.Attempt{At: at, Status: 200, Duration: 1500 * time.Microsecond},
			`{"at":"2026-11-27T08:00:00Z","status":200,"durationMs":1.5}`},
		{webhook.Attempt{At: at, Error: "no answer within 10s", Duration: 10 * time.Second},
			`{"at":"2026-11-27T08:00:00Z","error":"no answer within 10s","durationMs":10000}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.a)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tt.a, b, err, tt.want)
		}
		var back webhook.Attempt
		if err := json.Unmarshal(b, &back); err != nil || back != tt.a {
			t.Errorf("json.Unmarshal(%s) = %+v, %v; want %+v", b, back, err, tt.a)
		}
	}
}

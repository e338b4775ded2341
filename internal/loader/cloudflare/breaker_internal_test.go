package cloudflare

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// fakeShim serves run as the shim's /run and answers every /verify with 204,
// and returns a relay to it that never checks again in the background.
func fakeShim(t *testing.T, run http.HandlerFunc) *Relay {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/verify") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		run(w, r)
	}))
	t.Cleanup(srv.Close)
	r, err := New(Config{URL: srv.URL, Secret: strings.Repeat("s", 32), BreakerFailures: 2, VerifyInterval: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// halfOpen puts the relay's breaker where the next execution is its trial.
func halfOpen(r *Relay) {
	r.breaker.mu.Lock()
	r.breaker.count = r.breaker.failures
	r.breaker.openUntil = time.Now().Add(-time.Second)
	r.breaker.mu.Unlock()
}

const resultLine = `{"type":"result","success":true,"response":{"status":200,"headers":{},"body":"ok","bodyEncoding":"utf8"}}` + "\n"

func answer(w http.ResponseWriter, status int, body string) {
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// TestTrialReleasedOnEveryExit: the trial of a
// half-open breaker ends in a rejection, the caller hanging up or an emit
// error; none is a verdict on the shim, and each must give the trial back:
// the backend is ready and the next execution goes through.
func TestTrialReleasedOnEveryExit(t *testing.T) {
	t.Parallel()
	errEmit := errors.New("the client went away")
	cases := []struct {
		name string
		run  http.HandlerFunc
		// execute runs the trial and checks how it ended.
		execute func(t *testing.T, r *Relay, got <-chan struct{}) error
		want    func(error) bool
	}{
		{"rejected by the runtime", func(w http.ResponseWriter, _ *http.Request) {
			answer(w, http.StatusBadRequest, `{"field":"compatibilityFlags","message":"no such flag"}`)
		}, func(t *testing.T, r *Relay, _ <-chan struct{}) error {
			return r.Execute(t.Context(), job(), func(execution.Event) error { return nil })
		}, func(err error) bool {
			var rejected *execution.RejectedError
			return errors.As(err, &rejected)
		}},
		{"caller hung up before the answer", func(_ http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // the server notices the hang-up once the body is read
			<-r.Context().Done()
		}, func(t *testing.T, r *Relay, got <-chan struct{}) error {
			ctx, cancel := context.WithCancel(t.Context())
			go func() { <-got; cancel() }()
			return r.Execute(ctx, job(), func(execution.Event) error { return nil })
		}, func(err error) bool { return errors.Is(err, context.Canceled) }},
		{"emit failed", func(w http.ResponseWriter, _ *http.Request) {
			answer(w, http.StatusOK, resultLine)
		}, func(t *testing.T, r *Relay, _ <-chan struct{}) error {
			return r.Execute(t.Context(), job(), func(execution.Event) error { return errEmit })
		}, func(err error) bool { return errors.Is(err, errEmit) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan struct{}, 1)
			var done atomic.Bool // the trial is over
			r := fakeShim(t, func(w http.ResponseWriter, req *http.Request) {
				if !done.Load() {
					got <- struct{}{}
					tc.run(w, req)
					return
				}
				answer(w, http.StatusOK, resultLine)
			})
			halfOpen(r)
			if err := tc.execute(t, r, got); !tc.want(err) {
				t.Fatalf("Execute() = %v, want the %s", err, tc.name)
			}
			if err := r.Ready(t.Context()); err != nil {
				t.Errorf("Ready() after the trial = %v, want nil (the trial given back)", err)
			}
			done.Store(true)
			if err := r.Execute(t.Context(), job(), func(execution.Event) error { return nil }); err != nil {
				t.Errorf("Execute() after the trial = %v, want nil", err)
			}
		})
	}
}

// TestVerifyClosesBreaker: a successful background check closes
// an open breaker.
func TestVerifyClosesBreaker(t *testing.T) {
	t.Parallel()
	r := fakeShim(t, func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, resultLine) })
	halfOpen(r)
	r.breaker.mu.Lock()
	r.breaker.openUntil = time.Now().Add(time.Hour)
	r.breaker.mu.Unlock()
	if err := r.Ready(t.Context()); err == nil {
		t.Fatal("Ready() with the breaker open = nil, want an error")
	}
	r.verify(t.Context())
	if err := r.Ready(t.Context()); err != nil {
		t.Errorf("Ready() after a successful check = %v, want nil", err)
	}
}

func job() *execution.Job {
	return &execution.Job{ID: "ex_breaker", MainModule: "main.js",
		Modules: map[string]string{"main.js": "export default {}"}, Timeout: time.Minute}
}

// TestBreakerOneTrialAtATime: a call that entered before the breaker opened
// and fails while a trial is in flight ends nothing but itself: no second
// trial is let in beside the first, which alone decides.
func TestBreakerOneTrialAtATime(t *testing.T) {
	t.Parallel()
	now := time.Now()
	b := &breaker{failures: 2, cooldown: time.Second}
	early, ok := b.enter(now) // before the breaker opens
	if !ok || early != 0 {
		t.Fatalf("enter(closed) = %d, %v; want no ticket, allowed", early, ok)
	}
	b.record(0, false, now)
	b.record(0, false, now)
	if _, ok := b.enter(now); ok {
		t.Fatal("enter(open) allowed")
	}
	later := now.Add(2 * time.Second)
	trial, ok := b.enter(later)
	if !ok || trial == 0 {
		t.Fatalf("enter(after the cooldown) = %d, %v; want the trial", trial, ok)
	}
	b.record(early, false, later) // the early call fails during the trial
	if second, ok := b.enter(later); ok {
		t.Fatalf("enter during a trial, after an early call failed = %d, allowed; want refused", second)
	}
	b.release(early) // nor does the early call's release end the trial
	if _, ok := b.enter(later); ok {
		t.Fatal("enter during a trial, after an early call's release: allowed; want refused")
	}
	b.record(trial, false, later) // the trial fails: open again
	if _, ok := b.enter(later.Add(500 * time.Millisecond)); ok {
		t.Error("enter after the trial failed, within the cooldown: allowed")
	}
	next, ok := b.enter(later.Add(2 * time.Second))
	if !ok || next == 0 || next == trial {
		t.Fatalf("enter after the next cooldown = %d, %v; want a new trial", next, ok)
	}
	b.record(0, true, later.Add(2*time.Second)) // any success closes it
	if _, ok := b.enter(later.Add(2 * time.Second)); !ok {
		t.Error("enter after a success: refused")
	}
}

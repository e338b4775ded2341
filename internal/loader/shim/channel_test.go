package shim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// channelTo returns the channels to the one process of a fresh pool, and
// a function running a job on them.
func channelTo(t *testing.T) (*shim.Channels, func(context.Context, *execution.Job, func(execution.Event) error) error) {
	t.Helper()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	base, secret := l.ShimURL()
	cs := &shim.Channels{Client: http.DefaultClient, Base: base, Secret: secret, Fresh: true}
	t.Cleanup(cs.Close)
	run := func(ctx context.Context, j *execution.Job, emit func(execution.Event) error) error {
		call := &shim.Call{Client: http.DefaultClient, Base: base, Secret: secret, Channels: cs, MaxEvent: 16 << 20}
		return call.Run(ctx, j, emit)
	}
	return cs, run
}

// TestChannelOpensOnlySigned: the channel's upgrade is refused unsigned,
// signed with another secret, replayed, or not an upgrade; and a gateway
// with the wrong secret is told so, not handed a broken channel.
func TestChannelOpensOnlySigned(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	base, secret := l.ShimURL()
	upgrade := func(method string, sign func(*http.Request), headers map[string]string) int {
		req, err := http.NewRequest(method, base+"/channel", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
			req.Header.Set(k, v)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if sign != nil {
			sign(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signed := func(r *http.Request) { shim.Sign(r, nil, secret, time.Now()) }
	var replay http.Header
	cases := []struct {
		name    string
		method  string
		sign    func(*http.Request)
		headers map[string]string
		want    int
	}{
		{"unsigned", http.MethodGet, nil, nil, http.StatusUnauthorized},
		{"another secret", http.MethodGet, func(r *http.Request) { shim.Sign(r, nil, strings.Repeat("x", 40), time.Now()) }, nil, http.StatusUnauthorized},
		{"signed over a body", http.MethodGet, func(r *http.Request) { shim.Sign(r, []byte("{}"), secret, time.Now()) }, nil, http.StatusUnauthorized},
		{"stale", http.MethodGet, func(r *http.Request) { shim.Sign(r, nil, secret, time.Now().Add(-10*time.Minute)) }, nil, http.StatusUnauthorized},
		{"signed", http.MethodGet, func(r *http.Request) { signed(r); replay = r.Header.Clone() }, nil, http.StatusSwitchingProtocols},
		{"replayed", http.MethodGet, func(r *http.Request) {
			for _, h := range []string{shim.HeaderTimestamp, shim.HeaderNonce, shim.HeaderSignature} {
				r.Header.Set(h, replay.Get(h))
			}
		}, nil, http.StatusUnauthorized},
		{"not an upgrade", http.MethodGet, signed, map[string]string{"Upgrade": "h2c"}, 426},
		{"POST", http.MethodPost, signed, nil, 426},
	}
	for _, c := range cases {
		if got := upgrade(c.method, c.sign, c.headers); got != c.want {
			t.Errorf("%s: upgrade answered %d, want %d", c.name, got, c.want)
		}
	}
	if _, err := shim.DialChannel(t.Context(), http.DefaultClient, base, strings.Repeat("y", 40)); !errors.Is(err, shim.ErrSecretMismatch) {
		t.Errorf("DialChannel with another secret = %v, want ErrSecretMismatch", err)
	}
}

// TestChannelSlowReaderStallsOnlyItself: an execution whose caller stops
// reading stalls alone, within its credit (the gateway fails an execution
// whose shim sends past it), while others on the same channel finish; once
// read again it delivers every line, in order.
func TestChannelSlowReaderStallsOnlyItself(t *testing.T) {
	t.Parallel()
	cs, run := channelTo(t)
	const lines = 400
	flood := loadertest.Job("flood", fmt.Sprintf(`export default { fetch() {
		const s = "x".repeat(16 << 10);
		for (let i = 0; i < %d; i++) console.log(i + " " + s);
		return new Response("flooded");
	} }`, lines), 60*time.Second)
	flood.MaxLogBytes = 64 << 20
	release := make(chan struct{})
	var got []int
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), flood, func(ev execution.Event) error {
			if ev.Type == execution.EventLog {
				if len(got) == 0 {
					<-release // the caller is slow
				}
				var n int
				fmt.Sscanf(ev.Log.Message, "%d ", &n)
				got = append(got, n)
			}
			if ev.Type == execution.EventResult && !ev.Result.Success {
				return fmt.Errorf("flood failed: %+v", ev.Result.Error)
			}
			return nil
		})
	}()
	for i := range 5 {
		var res *execution.Result
		err := run(t.Context(), loadertest.Job(fmt.Sprintf("beside-%d", i), loadertest.Hello, 30*time.Second), func(ev execution.Event) error {
			if ev.Type == execution.EventResult {
				res = ev.Result
			}
			return nil
		})
		if err != nil || res == nil || !res.Success {
			t.Fatalf("execution beside a stalled one: %v, %+v", err, res)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the stalled execution ended while its caller read nothing: %v", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != lines {
		t.Fatalf("got %d lines, want %d", len(got), lines)
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("line %d is %d: out of order", i, n)
		}
	}
	if n := cs.Opened(); n != 1 {
		t.Errorf("opened %d channels, want 1 (six fresh executions fit one)", n)
	}
}

// TestChannelCancelReleases: an execution cancelled by its caller (a guest
// that would log forever, one that never answers, one waiting on a reuse
// slot's guest) is released in the shim, and the channel carries the next.
func TestChannelCancelReleases(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	base, secret := l.ShimURL()
	cs := &shim.Channels{Client: http.DefaultClient, Base: base, Secret: secret, Fresh: true}
	defer cs.Close()
	guests := map[string]string{
		"logs forever": `export default { async fetch() { for (;;) { console.log("tick"); await new Promise((r) => setTimeout(r, 5)); } } }`,
		// A timer keeps workerd from seeing it as hung (which would end it).
		"never answers": `export default { fetch() { console.log("tick"); return new Promise(() => { setInterval(() => {}, 1000); }); } }`,
		"streams forever": `export default { fetch() { console.log("tick"); let i = 0; return new Response(new ReadableStream({ async pull(c) {
			await new Promise((r) => setTimeout(r, 5)); c.enqueue(new TextEncoder().encode("x" + i++)); } })); } }`,
	}
	for name, code := range guests {
		j := loadertest.Job(name, code, 30*time.Second)
		j.Egress = &execution.EgressPolicy{Hosts: []string{"example.com"}} // the shim's ledger holds it while it runs
		ctx, cancel := context.WithCancel(t.Context())
		err := (&shim.Call{Client: http.DefaultClient, Base: base, Secret: secret, Channels: cs, MaxEvent: 1 << 20}).Run(ctx, j, func(ev execution.Event) error {
			if ev.Type == execution.EventLog {
				cancel()
			}
			return nil
		})
		cancel()
		var lost *shim.LostError
		if !errors.As(err, &lost) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Run = %v, want a lost connection from the cancel", name, err)
		}
		if !testwait.Until(10*time.Second, func() bool { return loadertest.ShimExecutions(t, l) == 0 }) {
			t.Errorf("%s: the shim still holds %d executions after the cancel", name, loadertest.ShimExecutions(t, l))
		}
	}
	var res *execution.Result
	err := (&shim.Call{Client: http.DefaultClient, Base: base, Secret: secret, Channels: cs, MaxEvent: 1 << 20}).Run(t.Context(), loadertest.Job("after", loadertest.Hello, 10*time.Second), func(ev execution.Event) error {
		if ev.Type == execution.EventResult {
			res = ev.Result
		}
		return nil
	})
	if err != nil || res == nil || !res.Success {
		t.Fatalf("after the cancels: %v, %+v", err, res)
	}
	if n := cs.Opened(); n != 1 {
		t.Errorf("opened %d channels, want 1: a cancel must not close the channel", n)
	}
}

// TestChannelCarriesLargeJobsAndAnswers: a job of many pieces and an answer
// of many windows arrive whole.
func TestChannelCarriesLargeJobsAndAnswers(t *testing.T) {
	t.Parallel()
	_, run := channelTo(t)
	for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3 << 20} {
		code := fmt.Sprintf(`const pad = %q; export default { fetch() { return new Response(String(pad.length) + "|" + "y".repeat(%d)); } }`, strings.Repeat("p", size), size)
		j := loadertest.Job("big", code, 30*time.Second)
		j.MaxResponseBytes = 8 << 20
		var res *execution.Result
		if err := run(t.Context(), j, func(ev execution.Event) error {
			if ev.Type == execution.EventResult {
				res = ev.Result
			}
			return nil
		}); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		want := fmt.Sprint(size) + "|" + strings.Repeat("y", size)
		if res == nil || !res.Success || res.Response == nil || res.Response.Body != want {
			t.Fatalf("%d bytes: result %+v (%+v), want a body of %d bytes", size, res, res.Error, len(want))
		}
	}
}

// TestChannelRotates: fresh isolates live as long as the channel that made
// them, so a channel carries 16 fresh executions and then gives way to a
// new one; warm ones cost it little.
func TestChannelRotates(t *testing.T) {
	t.Parallel()
	cs, run := channelTo(t)
	ok := func(j *execution.Job) {
		t.Helper()
		var res *execution.Result
		if err := run(t.Context(), j, func(ev execution.Event) error {
			if ev.Type == execution.EventResult {
				res = ev.Result
			}
			return nil
		}); err != nil || res == nil || !res.Success {
			t.Fatalf("%s: %v %+v", j.ID, err, res)
		}
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok(loadertest.Job(fmt.Sprintf("fresh-%d", i), loadertest.Hello, 30*time.Second))
		}()
	}
	wg.Wait()
	if n := cs.Opened(); n < 3 {
		t.Errorf("40 fresh executions opened %d channels, want at least 3", n)
	}
	before := cs.Opened()
	for i := range 100 {
		j := loadertest.Job(fmt.Sprintf("warm-%d", i), loadertest.Hello, 30*time.Second)
		j.ReuseKey = "rotates"
		ok(j)
	}
	if n := cs.Opened() - before; n > 1 {
		t.Errorf("100 warm executions opened %d channels, want at most 1", n)
	}
}

// TestChannelFreshGoAsRunCalls: without Fresh (as the local pool keeps its
// channels), fresh executions go as /run calls and open no channel; warm
// ones take it.
func TestChannelFreshGoAsRunCalls(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	defer l.Close()
	base, secret := l.ShimURL()
	cs := &shim.Channels{Client: http.DefaultClient, Base: base, Secret: secret}
	defer cs.Close()
	run := func(j *execution.Job) {
		t.Helper()
		var res *execution.Result
		err := (&shim.Call{Client: http.DefaultClient, Base: base, Secret: secret, Channels: cs, MaxEvent: 1 << 20}).Run(t.Context(), j, func(ev execution.Event) error {
			if ev.Type == execution.EventResult {
				res = ev.Result
			}
			return nil
		})
		if err != nil || res == nil || !res.Success {
			t.Fatalf("%s: %v %+v", j.ID, err, res)
		}
	}
	for i := range 3 {
		run(loadertest.Job(fmt.Sprintf("fresh-%d", i), loadertest.Hello, 30*time.Second))
	}
	if n := cs.Opened(); n != 0 {
		t.Errorf("fresh executions opened %d channels, want none", n)
	}
	warm := loadertest.Job("warm", loadertest.Hello, 30*time.Second)
	warm.ReuseKey = "warm"
	run(warm)
	run(warm)
	if n := cs.Opened(); n != 1 {
		t.Errorf("warm executions opened %d channels, want 1", n)
	}
}

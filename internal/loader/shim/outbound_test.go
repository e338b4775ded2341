package shim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// Tests of what the shim records and tells of a guest's outbound requests,
// in the real runtime: the net line, the ledger of records, denials.

func TestShimTellsOfTheFirstOutboundRequestOnce(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	cases := []struct {
		name    string
		code    string
		network bool
		wantNet bool
	}{
		{"no fetch", `export default { fetch() { console.log("a"); return new Response("x"); } }`, true, false},
		{"no network at all", `export default { async fetch() { try { await fetch("https://a.example/"); } catch {} return new Response("x"); } }`, false, false},
		{"one denied fetch", `export default { async fetch() { console.log("a"); try { await fetch("http://127.0.0.1:1/"); } catch {} return new Response("x"); } }`, true, true},
		{"many fetches at once", `export default { async fetch() {
			await Promise.allSettled(["http://10.0.0.1/", "http://127.0.0.1/", "http://[::1]/", "http://192.168.0.1/"].map((u) => fetch(u)));
			return new Response("x"); } }`, true, true},
		{"fetch in waitUntil", `export default { fetch(r, env, ctx) { ctx.waitUntil(fetch("http://127.0.0.1:2/").catch(() => {})); return new Response("x"); } }`, true, true},
		{"fetch then throw", `export default { async fetch() { await fetch("http://127.0.0.1:3/").catch(() => {}); throw new Error("after"); } }`, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := loadertest.Job("net-"+strings.ReplaceAll(tc.name, " ", "-"), tc.code, 10*time.Second)
			if tc.network {
				j.Egress = &execution.EgressPolicy{Hosts: []string{"*"}}
			}
			lines := rawLines(t, l, j)
			nets, result := 0, -1
			for i, line := range lines {
				if line == `{"type":"net"}` {
					nets++
					if result >= 0 {
						t.Errorf("net line after the result: %q", lines)
					}
				}
				if strings.HasPrefix(line, `{"type":"result"`) {
					result = i
				}
			}
			want := 0
			if tc.wantNet {
				want = 1
			}
			if nets != want || result != len(lines)-1 {
				t.Errorf("lines = %q; want %d net lines and the result last", lines, want)
			}
		})
	}
}

func TestShimTakesOutboundRecordsHoweverAnExecutionEnds(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	endings := map[string]string{
		"result":  `return new Response("x");`,
		"throw":   `throw new Error("x");`,
		"timeout": `await new Promise((r) => setTimeout(r, 60000));`,
		"hang":    `await new Promise(() => {});`,
		"hang up": `await new Promise((r) => setTimeout(r, 60000));`,
	}
	const rounds = 4
	for i := range rounds {
		for how, end := range endings {
			t.Run(fmt.Sprintf("%s %d", how, i), func(t *testing.T) {
				code := `export default { async fetch() { await fetch("http://127.0.0.1:4/").catch(() => {}); console.log("fetched"); ` + end + ` } }`
				j := loadertest.Job(fmt.Sprintf("ledger-%s-%d", strings.ReplaceAll(how, " ", "-"), i), code, 5*time.Second)
				j.Egress = &execution.EgressPolicy{Hosts: []string{"*"}}
				if how == "timeout" {
					j.Timeout = 300 * time.Millisecond
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				_ = l.Execute(ctx, j, func(ev execution.Event) error {
					if how == "hang up" && ev.Type == "log" {
						cancel() // the caller goes away mid-execution
					}
					return nil
				})
			})
		}
	}
	// The shim notices a hang-up at its next ping, which signals nothing
	// here: poll what it holds.
	if !testwait.Until(30*time.Second, func() bool { return loadertest.ShimExecutions(t, l) == 0 }) {
		t.Fatalf("the shim holds %d executions' outbound records after all ended", loadertest.ShimExecutions(t, l))
	}
}

func TestDeniedFetchesDoNotFloodTheRuntimeLog(t *testing.T) {
	t.Parallel()
	var out loadertest.Buffer
	l := loadertest.StartLocal(t, zerolog.New(&out), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	targets := []string{"http://127.0.0.1/", "http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/", "https://not-allowed.example/", "http://[::ffff:127.0.0.1]/"}
	code := `export default { async fetch() {
		const targets = ` + mustJSON(t, targets) + `;
		const all = [];
		for (let i = 0; i < 200; i++) all.push(fetch(targets[i % targets.length]).then(() => "sent", (e) => e.message));
		const got = await Promise.all(all);
		return new Response(String(got.filter((m) => m.includes("denied")).length));
	} }`
	j := loadertest.Job("flood", code, 10*time.Second)
	j.Egress = &execution.EgressPolicy{Hosts: []string{"allowed.example"}}
	events, err := loadertest.Run(t, l, j)
	if err != nil {
		t.Fatal(err)
	}
	res := loadertest.LastResult(t, events)
	if !res.Success || res.Response.Body != "200" || len(res.Outbound) != 200 {
		t.Fatalf("result = %+v, %+v, %d outbound; want 200 denied", res.Error, res.Response, len(res.Outbound))
	}
	for _, o := range res.Outbound {
		if !o.Denied {
			t.Errorf("outbound %+v, want denied", o)
		}
	}
	if n := strings.Count(out.String(), `"component":"workerd"`); n > 0 {
		t.Errorf("workerd wrote %d log lines for denied requests:\n%.2000s", n, out.String())
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Addresses the policy lets through but workerd's network service refuses
// (here: addresses the gateway lists as its own) are recorded as denied; a
// name that does not resolve is a failure, not a denial.
func TestNetworkRefusalsAreRecordedAsDenied(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1), func(c *local.Config) {
		c.DenyAddresses = []string{"1.1.1.1", "8.8.8.8"}
	})
	t.Cleanup(func() { l.Close() })
	cases := []struct {
		target string
		denied bool
	}{
		{"http://1.1.1.1:9/", true},
		{"https://1.1.1.1/", true},
		{"http://8.8.8.8:8080/x?q=1", true},
		{"http://does-not-resolve.invalid/", false},
	}
	for i, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			t.Parallel()
			code := `export default { async fetch() { try { await fetch(` + mustJSON(t, tc.target) + `); return new Response("sent"); } catch (e) { return new Response(e.message); } } }`
			j := loadertest.Job(fmt.Sprintf("refused-%d", i), code, 10*time.Second) // execution ids are unique
			j.Egress = &execution.EgressPolicy{Hosts: []string{"*"}}
			events, err := loadertest.Run(t, l, j)
			if err != nil {
				t.Fatal(err)
			}
			res := loadertest.LastResult(t, events)
			if len(res.Outbound) != 1 || res.Outbound[0].Denied != tc.denied || res.Outbound[0].Status != 0 {
				t.Errorf("outbound = %+v, want one record, denied %v", res.Outbound, tc.denied)
			}
			if got := strings.Contains(res.Response.Body, "denied"); got != tc.denied {
				t.Errorf("the guest saw %q, want denied %v", res.Response.Body, tc.denied)
			}
		})
	}
}

package api_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// isolationCode notes, in module state that a warm isolate keeps, whether
// another execution was running in the same isolate at the same time.
const isolationCode = `
let active = 0;
export default {
  async fetch(request) {
    const id = await request.text();
    active++;
    let shared = false;
    for (let i = 0; i < 20; i++) {
      if (active > 1) shared = true;
      console.log("exec " + id + " line " + i);
      await new Promise((r) => setTimeout(r, Math.random() * 4));
    }
    active--;
    return new Response(shared ? "shared" : "alone");
  },
};`

func TestReuseRunsOneExecutionPerIsolateAtATime(t *testing.T) {
	t.Parallel()
	body := func(id string) map[string]any {
		return map[string]any{
			"code":    isolationCode,
			"env":     map[string]any{"SUITE": "isolation"},
			"isolate": "reuse",
			"request": map[string]any{"method": "POST", "body": id},
		}
	}
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("r%02d", i)
			res := execute(t, body(id))
			if !res.Success {
				t.Errorf("%s: %+v", id, res.Error)
				return
			}
			if res.Response.Body != "alone" {
				t.Errorf("%s ran beside another execution in its isolate", id)
			}
			lines := strings.Split(res.Stdout, "\n")
			if len(lines) != 20 {
				t.Errorf("%s: %d lines, want 20: %q", id, len(lines), res.Stdout)
			}
			for j, line := range lines {
				if line != fmt.Sprintf("exec %s line %d", id, j) {
					t.Errorf("%s: line %d = %q, want only its own lines in order", id, j, line)
					break
				}
			}
		})
	}
	wg.Wait()
}

// In reuse mode the Outbound entrypoint records every request, whatever
// function object the guest sends it with.
func TestReuseRecordsRequestsMadeAnyWay(t *testing.T) {
	t.Parallel()
	spellings := map[string]string{
		"fetch":                 `await fetch(target)`,
		"fetch saved at load":   `await savedFetch(target)`,
		"globalThis.fetch.call": `await Reflect.apply(globalThis.fetch, globalThis, [target])`,
		"prototype fetch": `let real; for (let o = Object.getPrototypeOf(globalThis); o && !real; o = Object.getPrototypeOf(o)) real = Object.getOwnPropertyDescriptor(o, "fetch")?.value;
			await Reflect.apply(real ?? fetch, globalThis, [target])`,
		"fetch replaced first": `globalThis.fetch = () => Promise.resolve(new Response("fake")); await savedFetch(target)`,
	}
	for name, call := range spellings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code := `const savedFetch = fetch;
				export default { async fetch(r) { const target = await r.text(); try { ` + call + `; } catch (e) { console.log(e.message); } return new Response("ok"); } }`
			for _, target := range []string{"http://10.0.0.1/a", "http://127.0.0.1/b"} {
				res := execute(t, map[string]any{
					"code": code, "isolate": "reuse", "allowOutbound": true,
					"request": map[string]any{"method": "POST", "body": target},
				})
				wantSuccess(t, res)
				if len(res.Outbound) != 1 || res.Outbound[0].URL != target || !res.Outbound[0].Denied {
					t.Errorf("outbound = %+v, want only this execution's denied request to %s", res.Outbound, target)
				}
			}
		})
	}
}

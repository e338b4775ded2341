package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAttackCapabilityRPCMembers: every method on a Workers entrypoint's
// prototype is callable over RPC on its stub, not only fetch, and the
// shim's Capability entrypoint had helpers there: secrets() returned the
// configured credentials, send() made the call without the masking. From
// the guest, each helper's name, called with plausible arguments or read
// as a property, must give an error, never data. Two layers stop it: the
// wrapper's binding offers only fetch, and the entrypoint has no member but
// fetch (worker/test/capability-rpc.test.js checks that layer alone).
func TestAttackCapabilityRPCMembers(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	members := []string{"secrets", "secretsOf", "send", "masked", "ctx", "env"}
	code := `export default { async fetch(req, env) {
  const out = {};
  for (const m of ` + mustJSON(t, members) + `) {
    try {
      const v = await env.reader[m](new Request("https://capability.invalid/api/x"), "https://capability.invalid/api/x");
      out[m] = "value " + JSON.stringify(v);
    } catch (e) { out[m] = "error " + String(e?.message ?? e); }
    try { out[m + " (read)"] = "value " + JSON.stringify(await env.reader[m]); }
    catch (e) { out[m + " (read)"] = "error " + String(e?.message ?? e); }
  }
  return Response.json(out);
} }`
	res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
	wantSuccess(t, res)
	var out map[string]string
	if err := json.Unmarshal([]byte(res.Response.Body), &out); err != nil {
		t.Fatalf("guest answered %q: %v", res.Response.Body, err)
	}
	for _, m := range members {
		got := out[m]
		if !strings.HasPrefix(got, "error ") {
			t.Errorf("env.reader.%s(…) = %q, want an error", m, got)
		}
		if read := out[m+" (read)"]; read != "value undefined" && !strings.HasPrefix(read, "error ") {
			t.Errorf("await env.reader.%s = %q, want an error or nothing", m, read)
		}
	}
	if strings.Contains(res.Response.Body, capToken) {
		t.Errorf("the guest got the capability's credential: %s", res.Response.Body)
	}
}

// mustJSON is v as JSON.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

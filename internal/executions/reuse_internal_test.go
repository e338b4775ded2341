package executions

import (
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

func TestReuseKeySeparatesCallersAndIsolates(t *testing.T) {
	t.Parallel()
	job := func() *execution.Job {
		return &execution.Job{
			Modules: map[string]string{"main.js": "x"}, MainModule: "main.js",
			Env: map[string]any{"A": "1"}, CompatibilityDate: "2026-11-16",
			Request: execution.GuestRequest{Method: "GET", URL: "http://localhost/a"},
		}
	}
	base := reuseKey("ci", job())
	if reuseKey("ci", job()) != base {
		t.Error("equal jobs of one caller get different keys")
	}
	differs := map[string]*execution.Job{}
	for name, change := range map[string]func(*execution.Job){
		"env":     func(j *execution.Job) { j.Env["A"] = "2" },
		"code":    func(j *execution.Job) { j.Modules["main.js"] = "y" },
		"date":    func(j *execution.Job) { j.CompatibilityDate = "2026-11-15" },
		"flags":   func(j *execution.Job) { j.CompatibilityFlags = []string{"nodejs_compat"} },
		"network": func(j *execution.Job) { j.Egress = &execution.EgressPolicy{Hosts: []string{"*"}} },
		"a binary module": func(j *execution.Job) {
			j.Binary = map[string]execution.BinaryModule{"a.wasm": {Kind: execution.ModuleWasm, Bytes: []byte{0, 'a', 's', 'm'}}}
		},
		"a data module": func(j *execution.Job) {
			j.Binary = map[string]execution.BinaryModule{"a.wasm": {Kind: execution.ModuleData, Bytes: []byte{0, 'a', 's', 'm'}}}
		},
	} {
		j := job()
		change(j)
		differs[name] = j
	}
	for name, j := range differs {
		if reuseKey("ci", j) == base {
			t.Errorf("changing %s keeps the same isolate key", name)
		}
	}
	if a, b := differs["a binary module"], differs["a data module"]; reuseKey("ci", a) == reuseKey("ci", b) || codeHash(a) == codeHash(b) || codeHash(a) == codeHash(job()) {
		t.Error("a module's kind or its bytes leave the isolate key or the code hash unchanged")
	}
	if reuseKey("other-team", job()) == base {
		t.Error("two API keys share an isolate key")
	}
	j := job()
	j.Request = execution.GuestRequest{Method: "POST", URL: "http://localhost/b", Body: "different"}
	if reuseKey("ci", j) != base {
		t.Error("the guest request changed the isolate key; it must not")
	}
}

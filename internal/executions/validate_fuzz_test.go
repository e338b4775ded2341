package executions

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

var fuzzLimits = Limits{
	CompatibilityDate: "2026-11-16",
	DefaultTimeout:    10 * time.Second,
	MaxTimeout:        30 * time.Second,
	MaxResponseBytes:  1 << 20,
	MaxLogLineBytes:   1 << 16,
	MaxLogBytes:       1 << 20,
	MaxCodeBytes:      1 << 16,
	MaxModules:        8,
	MaxEnvBytes:       1 << 12,
}

// FuzzExecuteRequest feeds arbitrary bodies through decoding and
// validation: they must never panic, and must end either as a job that
// keeps the invariants the runtime relies on, or as problems that each name
// a field, a code and a detail.
func FuzzExecuteRequest(f *testing.F) {
	for _, seed := range []string{
		`{"code": "export default {}"}`,
		`{"modules": {"a.js": "x", "b/c.json": "{}"}, "mainModule": "a.js"}`,
		`{"code": "x", "env": {"A": 1, "B": {"c": [true]}}, "secrets": {"S": "v"}, "allowOutbound": ["*.example.com"]}`,
		`{"code": "x", "request": {"method": "POST", "url": "/p?q", "headers": {"a": "b"}, "body": "aGk=", "bodyEncoding": "base64"}}`,
		`{"code": "x", "timeoutMs": 1e3, "limits": {"cpuMs": 5}, "compatibilityDate": "2024-02-29", "compatibilityFlags": ["nodejs_compat"]}`,
		`{"code": 1, "modules": null, "env": [], "timeoutMs": "5"}`,
		`[]`, `null`, `{"code": "x"} trailing`, `{"modules": {"../x.js": "", "__dw_wrapper.js": ""}}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		members, err := execution.DecodeRequest(body)
		if err != nil {
			var p *execution.Problem
			if !errors.As(err, &p) || p.Status != 400 {
				t.Fatalf("decode error %v", err)
			}
			return
		}
		job, problems := validateExecute(members, fuzzLimits, now)
		if (job == nil) == (problems == nil) {
			t.Fatalf("validateExecute returned job %v and problems %v", job != nil, problems)
		}
		for _, p := range problems {
			if p.Field == "" || p.Code == "" || p.Detail == "" {
				t.Fatalf("incomplete problem %+v", p)
			}
		}
		if job == nil {
			return
		}
		if _, ok := job.Modules[job.MainModule]; !ok || !isScript(job.MainModule) {
			t.Fatalf("main module %q is not a script among the modules", job.MainModule)
		}
		for name := range job.Modules {
			if strings.HasPrefix(name, "/") || strings.Contains(name, "..") || reservedName(name) {
				t.Fatalf("module name %q passed validation", name)
			}
		}
		if job.Timeout <= 0 || job.Timeout > fuzzLimits.MaxTimeout {
			t.Fatalf("timeout %v outside (0, %v]", job.Timeout, fuzzLimits.MaxTimeout)
		}
		if job.CompatibilityDate > "2026-11-26" {
			t.Fatalf("future compatibility date %s", job.CompatibilityDate)
		}
	})
}

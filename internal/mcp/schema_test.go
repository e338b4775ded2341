package mcp

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

var testBounds = execution.Bounds{DefaultTimeoutMs: 7000, MaxTimeoutMs: 42000, MaxCodeBytes: 1 << 20, MaxModules: 16,
	MaxEnvBytes: 1000, MaxLogBytes: 1 << 20, MaxResponseBytes: 1 << 20, CompatibilityDate: "2026-01-02"}

type testSchema struct {
	Properties map[string]struct {
		Description string `json:"description"`
		Default     any    `json:"default"`
		Maximum     any    `json:"maximum"`
	} `json:"properties"`
	Required             []string `json:"required"`
	AdditionalProperties *bool    `json:"additionalProperties"`
	OneOf, AnyOf, AllOf  any
}

// TestExecuteSchema: the execute tool's arguments are the members of an
// execution request, each described, with this server's bounds; code is
// required (no top-level oneOf, which some model APIs refuse).
func TestExecuteSchema(t *testing.T) {
	t.Parallel()
	raw, err := inputSchema(testBounds, true)
	if err != nil {
		t.Fatal(err)
	}
	var s testSchema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	fields := execution.RequestFields()
	for _, name := range fields {
		p, ok := s.Properties[name]
		switch {
		case name == "mainModule" || name == "script":
			if ok {
				t.Errorf("the schema has %s: code is the main module, and run_script runs scripts", name)
			}
		case !ok:
			t.Errorf("the schema lacks request field %q", name)
		case strings.TrimSpace(p.Description) == "" && name != "request":
			t.Errorf("field %q has no description", name)
		}
	}
	for name := range s.Properties {
		if !slices.Contains(fields, name) {
			t.Errorf("the schema has %q, which is no request field (%v)", name, fields)
		}
	}
	if !slices.Equal(s.Required, []string{"code"}) || s.AdditionalProperties == nil || *s.AdditionalProperties || s.OneOf != nil || s.AnyOf != nil || s.AllOf != nil {
		t.Errorf("required %v, additionalProperties %v, combinators %v %v %v", s.Required, s.AdditionalProperties, s.OneOf, s.AnyOf, s.AllOf)
	}
	timeout := s.Properties["timeoutMs"]
	if timeout.Default != 7000.0 || timeout.Maximum != 42000.0 || !strings.Contains(timeout.Description, "default 7000, at most 42000") {
		t.Errorf("timeoutMs = %+v, want the server's bounds", timeout)
	}
	if !strings.Contains(s.Properties["compatibilityDate"].Description, "2026-01-02") || !strings.Contains(s.Properties["env"].Description, "1000 bytes") {
		t.Errorf("compatibilityDate %q, env %q: want the server's default and bound", s.Properties["compatibilityDate"].Description, s.Properties["env"].Description)
	}
	for _, want := range []string{"plain script", "export default", "returnValue"} {
		if !strings.Contains(s.Properties["code"].Description, want) {
			t.Errorf("code's description lacks %q", want)
		}
	}
	raw, err = scriptSchema(testBounds, false)
	if err != nil {
		t.Fatal(err)
	}
	var rs testSchema
	_ = json.Unmarshal(raw, &rs)
	if _, ok := rs.Properties["script"]; !ok || !slices.Equal(rs.Required, []string{"script"}) || rs.Properties["code"].Description != "" || rs.Properties["env"].Description == "" {
		t.Errorf("run_script's schema = %s, want script required, env, and no code", raw)
	}
	raw, _ = inputSchema(testBounds, false)
	if strings.Contains(string(raw), `"capabilities"`) {
		t.Errorf("with no capabilities the schema still offers them")
	}
}

// TestOutputSchemaDescribesResults: a lean result and a refusal both
// have exactly the members the output schema names.
func TestOutputSchemaDescribesResults(t *testing.T) {
	t.Parallel()
	schema, err := outputSchema()
	if err != nil {
		t.Fatal(err)
	}
	res := &execution.Result{ID: "ex", Success: false, Mode: "worker", Stdout: "o", Stderr: "e", ReturnValue: []byte("1"),
		Response: &execution.Response{Status: 200, Headers: map[string]string{"a": "b"}, Body: "x"},
		Error:    &execution.Error{Code: execution.CodeException, Message: "m", Stack: "s"},
		Outbound: []execution.Outgoing{{Method: "GET", URL: "https://x/"}}, Truncated: true, DurationMs: 1}
	for _, v := range []any{leanResult(res), &toolResult{Problem: &execution.Problem{Type: "t", Title: "t", Status: 422, Code: "invalid_request"}}} {
		resolved, err := schema.Resolve(nil)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		b, _ := json.Marshal(v)
		_ = json.Unmarshal(b, &doc)
		if err := resolved.Validate(doc); err != nil {
			t.Errorf("%s does not match the output schema: %v", b, err)
		}
		for name := range doc.(map[string]any) {
			if _, ok := schema.Properties[name]; !ok {
				t.Errorf("member %q is not in the output schema", name)
			}
		}
	}
}

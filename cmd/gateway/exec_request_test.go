package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestExecRequest checks the request exec builds from its flags.
func TestExecRequest(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"plugin.ts": "export default {}", "types.ts": "export type T = 1", "main.js": "m", "sub/a.txt": "a"})
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  execution.Request
	}{
		{"stdin", []string{}, "code", execution.Request{Code: "code"}},
		{
			"allow-outbound alone", []string{"--allow-outbound", "-"}, "c",
			execution.Request{Code: "c", AllowOutbound: execution.Outbound{All: true}},
		},
		{
			"allow-outbound hosts", []string{"--allow-outbound=api.example.com, *.example.net", "-"}, "c",
			execution.Request{Code: "c", AllowOutbound: execution.Outbound{Hosts: []string{"api.example.com", "*.example.net"}}},
		},
		{"allow-outbound false", []string{"--allow-outbound=false"}, "c", execution.Request{Code: "c"}},
		{
			"capabilities", []string{"--capability", "inventory", "--capability=orders"}, "c",
			execution.Request{Code: "c", Capabilities: []string{"inventory", "orders"}},
		},
		{
			"options", []string{"--compat-date", "2026-01-02", "--compat-flag", "nodejs_compat", "--compat-flag=a,b", "--timeout", "1500us", "--language", "typescript"}, "c",
			execution.Request{Code: "c", CompatibilityDate: "2026-01-02", CompatibilityFlags: []string{"nodejs_compat", "a", "b"}, TimeoutMs: 2, Language: "typescript"},
		},
		{
			"env values", []string{"--env", "A=1.50", "--env", "B=[1]", "--env", "C=", "--env", "D=x=y", "--secret", "S=2"}, "c",
			execution.Request{Code: "c", Env: map[string]any{"A": json.Number("1.50"), "B": []any{json.Number("1")}, "C": "", "D": "x=y"}, Secrets: map[string]string{"S": "2"}},
		},
		{"typescript inferred", []string{filepath.Join(dir, "plugin.ts")}, "", execution.Request{Code: "export default {}", Language: "typescript"}},
		{
			"modules", []string{filepath.Join(dir, "plugin.ts"), "--module", filepath.Join(dir, "types.ts"), "--module", filepath.Join(dir, "sub", "a.txt")}, "",
			execution.Request{Modules: map[string]execution.ModuleSource{"plugin.ts": execution.Text("export default {}"), "types.ts": execution.Text("export type T = 1"), "sub/a.txt": execution.Text("a")}, MainModule: "plugin.ts"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts, err := parseExec(tt.args, func(string) string { return "" }, &bytes.Buffer{})
			if err != nil {
				t.Fatalf("parseExec(%q) = %v", tt.args, err)
			}
			got, err := opts.request(strings.NewReader(tt.stdin))
			if err != nil {
				t.Fatalf("request(%q) = %v", tt.args, err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("request(%q) = %+v, want %+v", tt.args, *got, tt.want)
			}
		})
	}
}

// TestExecModulesFromStdin names modules relative to the working directory
// when the main module comes from standard input.
func TestExecModulesFromStdin(t *testing.T) {
	t.Chdir(writeFiles(t, map[string]string{"lib/util.js": "u"}))
	opts, err := parseExec([]string{"--language=typescript", "--module", "lib/util.js"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := opts.request(strings.NewReader("s"))
	if err != nil {
		t.Fatal(err)
	}
	want := execution.Request{Modules: map[string]execution.ModuleSource{"main.ts": execution.Text("s"), "lib/util.js": execution.Text("u")}, MainModule: "main.ts"}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("request() = %+v, want %+v", *got, want)
	}
}

package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/transpile"
	"github.com/dynamic-workers/gateway/internal/transpile/transpiletest"
)

// TestTypeScriptNestingTooDeep sends TypeScript nested 200,000 levels deep,
// in the families dense enough to fit the request (each of which overflowed
// the gateway's stack in esbuild and killed the process), and nesting that
// makes esbuild take about an hour. Each ends as syntax_error naming no
// internals, and the gateway serves on.
func TestTypeScriptNestingTooDeep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		family string
		depth  int
		want   string
	}{
		{"not", 200_000, "nesting too deep"},
		{"minus plus", 200_000, "nesting too deep"},
		{"parens", 200_000, "nesting too deep"},
		{"brackets", 200_000, "nesting too deep"},
		{"assignments", 200_000, "nesting too deep"},
		{"members", 200_000, "nesting too deep"},
		{"call chain", 200_000, "nesting too deep"},
		{"blocks", 200_000, "nesting too deep"},
		{"arrows", 100_000, "nesting too deep"},
		{"templates", 100_000, "nesting too deep"},
		{"namespaces", 8_000, "took longer than 10s"},
	}
	for _, tt := range tests {
		f := transpiletest.Named(t, tt.family)
		t.Run(tt.family, func(t *testing.T) {
			t.Parallel()
			res := execute(t, map[string]any{"modules": f.Modules(tt.depth), "mainModule": "main.ts"})
			wantError(t, res, execution.CodeSyntaxError, tt.want)
			if res.Error.Stack != res.Error.Message || strings.ContainsAny(res.Error.Message, "/\\") {
				t.Errorf("error = %+v, want a stack that is the message, with no paths", res.Error)
			}
			wantSuccess(t, execute(t, map[string]any{"language": "typescript",
				"code": `export default { fetch(): Response { return new Response("still here" as string); } };`}))
		})
	}
}

// TestJSONNestingTooDeep: a JSON module is parsed by the gateway before any
// compiler sees it, and Go's decoder refuses nesting past 10,000 levels.
func TestJSONNestingTooDeep(t *testing.T) {
	t.Parallel()
	resp, data := post(t, "/execute", "application/json", map[string]any{
		"modules": transpiletest.Named(t, "json").Modules(200_000), "mainModule": "main.ts"})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), "data.json") {
		t.Errorf("POST /execute = %d %s, want 422 naming data.json", resp.StatusCode, data)
	}
}

// TestTypeScriptNestingAroundThreshold runs nesting just small enough to
// compile in the gateway's process and just too large, for several
// families: both run.
func TestTypeScriptNestingAroundThreshold(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"not", "parens", "templates", "ternaries", "arrows", "else if", "namespaces", "json"} {
		f := transpiletest.Named(t, name)
		depth := 0
		for size(f.Modules(depth+1)) <= transpile.MaxInProcessBytes {
			depth++
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, d := range []int{depth, depth + 1} {
				res := execute(t, map[string]any{"modules": f.Modules(d), "mainModule": "main.ts"})
				if !res.Success {
					t.Errorf("%s × %d: error = %+v, want success", name, d, res.Error)
				}
			}
		})
	}
}

func size(modules map[string]string) int {
	n := 0
	for _, src := range modules {
		n += len(src)
	}
	return n
}

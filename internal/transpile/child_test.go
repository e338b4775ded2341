package transpile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/transpile/transpiletest"
)

// largeSource returns valid TypeScript of at least n bytes.
func largeSource(n int) string {
	var b strings.Builder
	b.WriteString("type N = number;\nlet total: N = 0;\n")
	for b.Len() < n {
		b.WriteString("total += [1, 2, 3].map((x: N): N => x * 2).length;\n")
	}
	b.WriteString("export default { fetch(): Response { return new Response(String(total)); } };\n")
	return b.String()
}

func TestChildMatchesInProcess(t *testing.T) {
	t.Parallel()
	modules := map[string]string{
		"main.ts": "import { fail } from \"./lib\";\nexport default { fetch(): Response { return fail(); } };\n",
		"lib.ts":  "enum E { A = 1 }\nexport function fail(): never {\n  throw new Error(\"bad \" + E.A);\n}\n",
	}
	local := build(modules, "main.ts", nil)
	child, err := runChild(t.Context(), modules, "main.ts", nil)
	if err != nil {
		t.Fatal(err)
	}
	if child.Module != local.Module || child.Code != local.Code || string(child.Map) != string(local.Map) || child.Error != nil {
		t.Errorf("runChild = %+v, want %+v", child, local)
	}
	// A syntax error comes back from the child with its position.
	modules["lib.ts"] = "export const x = ;\n"
	child, err = runChild(t.Context(), modules, "main.ts", nil)
	if err != nil || child.Error == nil || child.Error.File != "lib.ts" || child.Error.Line != 1 {
		t.Errorf("runChild(syntax error) = %+v, %v, want an error at lib.ts:1", child, err)
	}
}

func TestBundleLargeSourceInChild(t *testing.T) {
	t.Parallel()
	src := largeSource(MaxInProcessBytes + 1)
	modules := map[string]string{"main.ts": src}
	if fitsInProcess(modules) {
		t.Fatalf("fitsInProcess(%d bytes) = true, want false", len(src))
	}
	out, err := Bundle(modules, "main.ts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.Code, ": N") || !strings.Contains(out.Code, "total") {
		t.Errorf("Bundle(large source) = %.200s…, want the types stripped", out.Code)
	}
	// The first "total +=" is on line 3 of main.ts.
	for i, line := range strings.Split(out.Code, "\n") {
		if col := strings.Index(line, "total +="); col >= 0 {
			frame := fmt.Sprintf("at main.js:%d:%d", i+1, col+1)
			if got := out.MapStack(frame); got != "at main.ts:3:1" {
				t.Errorf("MapStack(%q) = %q, want at main.ts:3:1", frame, got)
			}
			break
		}
	}
}

func TestFitsInProcess(t *testing.T) {
	t.Parallel()
	half := strings.Repeat("x", MaxInProcessBytes/2)
	tests := []struct {
		modules map[string]string
		want    bool
	}{
		{map[string]string{"a.ts": half, "b.ts": half}, true},
		{map[string]string{"a.ts": half, "b.ts": half + "x"}, false},
		{map[string]string{"a.ts": half, "b.json": half, "c.js": "x"}, false},
		{map[string]string{"a.ts": strings.Repeat("!", MaxInProcessBytes+1)}, false},
	}
	for _, tt := range tests {
		if got := fitsInProcess(tt.modules); got != tt.want {
			t.Errorf("fitsInProcess(%d modules) = %v, want %v", len(tt.modules), got, tt.want)
		}
	}
}

// TestChildCrashIsAnError drives the compiler past its stack in the child,
// with nesting of several families 200,000 levels deep: each ends as an
// *Error, and this process lives on.
func TestChildCrashIsAnError(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"not", "parens", "templates", "else if"} {
		f := transpiletest.Named(t, name)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Bundle(f.Modules(200_000), "main.ts")
			var e *Error
			if !errors.As(err, &e) || e.Message != msgTooDeep || e.File != "" {
				t.Errorf("Bundle(%s × 200000) = %v, want %q", name, err, msgTooDeep)
			}
		})
	}
}

func TestChildTimeout(t *testing.T) {
	// Not parallel: it checks that this process is left with no children.
	// Nested namespaces that reuse one name: esbuild takes about an hour,
	// so only the deadline ends the child, and msgTooSlow says it did.
	modules := transpiletest.Named(t, "namespaces").Modules(8000)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := runChild(ctx, modules, "main.ts", nil)
	var e *Error
	if !errors.As(err, &e) || e.Message != msgTooSlow {
		t.Errorf("runChild = %v, want %q", err, msgTooSlow)
	}
	if kids := children(t); kids != "" {
		t.Errorf("after the timeout this process still has children %q", kids)
	}
}

// children lists this process's child processes (Linux).
func children(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil || len(files) == 0 {
		t.Fatalf("no /proc/self/task/*/children: %v", err)
	}
	var all []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, strings.Fields(string(b))...)
	}
	return strings.Join(all, " ")
}

// TestBusyCompilersAreNotTheSourcesFault fills every compiler slot: a
// large source then waits its turn and gets ErrBusy, not a syntax error,
// and the wait does not count against the compile's own time limit.
func TestBusyCompilersAreNotTheSourcesFault(t *testing.T) {
	saved := childQueueWait
	childQueueWait = 50 * time.Millisecond
	defer func() { childQueueWait = saved }()
	for range cap(childSlots) {
		childSlots <- struct{}{}
	}
	modules := map[string]string{"main.ts": "export default { fetch() { return new Response('x'); } };\n" + strings.Repeat("// pad\n", MaxInProcessBytes)}
	_, err := Bundle(modules, "main.ts")
	var syntax *Error
	if !errors.Is(err, ErrBusy) || errors.As(err, &syntax) {
		t.Errorf("Bundle(every slot taken) = %v, want ErrBusy", err)
	}
	for range cap(childSlots) {
		<-childSlots
	}
	if _, err := Bundle(modules, "main.ts"); err != nil {
		t.Errorf("Bundle(slots free) = %v, want success", err)
	}
}

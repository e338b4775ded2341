package transpile

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// benchSource is about 10 KB of TypeScript, under MaxInProcessBytes.
func benchSource() string {
	var src strings.Builder
	src.WriteString("interface Item { id: number; name: string }\nenum Kind { A, B, C }\n")
	for i := 0; src.Len() < 10<<10; i++ {
		fmt.Fprintf(&src, "export function f%d(items: Item[], k: Kind): string[] { return items.filter((x): x is Item => x.id > %d).map((x) => x.name + Kind[k]); }\n", i, i)
	}
	src.WriteString("export default { fetch(): Response { return new Response(String(f0([], Kind.A))); } };\n")
	return src.String()
}

const helloSource = `export default { fetch(): Response { return new Response("hi" as string); } };`

// BenchmarkBundle measures transpiling about 10 KB of TypeScript, per KB of
// source: over MaxInProcessBytes, so in a child process.
// Run: go test -run '^$' -bench Bundle ./internal/transpile
func BenchmarkBundle(b *testing.B) {
	src := benchSource()
	modules := map[string]string{"main.ts": src}
	kb := float64(len(src)) / 1024
	for b.Loop() {
		if _, err := Bundle(modules, "main.ts"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/kb, "µs/KB")
}

// BenchmarkBundleInProcess compiles the same source in this process,
// without a child: the difference to BenchmarkBundle is the child's cost.
func BenchmarkBundleInProcess(b *testing.B) {
	modules := map[string]string{"main.ts": benchSource()}
	for b.Loop() {
		if _, err := build(modules, "main.ts", nil).output(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBundleHello compiles a one-line module, in this process.
func BenchmarkBundleHello(b *testing.B) {
	modules := map[string]string{"main.ts": helloSource}
	for b.Loop() {
		if _, err := Bundle(modules, "main.ts"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBundleChildHello compiles the one-line module in a child.
func BenchmarkBundleChildHello(b *testing.B) {
	modules := map[string]string{"main.ts": helloSource}
	for b.Loop() {
		built, err := runChild(context.Background(), modules, "main.ts", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := built.output(); err != nil {
			b.Fatal(err)
		}
	}
}

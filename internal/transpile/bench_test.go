package transpile

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkBundle measures transpiling TypeScript, per KB of source.
// Run: go test -run '^$' -bench Bundle ./internal/transpile
func BenchmarkBundle(b *testing.B) {
	var src strings.Builder
	src.WriteString("interface Item { id: number; name: string }\nenum Kind { A, B, C }\n")
	for i := 0; src.Len() < 10<<10; i++ {
		fmt.Fprintf(&src, "export function f%d(items: Item[], k: Kind): string[] { return items.filter((x): x is Item => x.id > %d).map((x) => x.name + Kind[k]); }\n", i, i)
	}
	src.WriteString("export default { fetch(): Response { return new Response(String(f0([], Kind.A))); } };\n")
	modules := map[string]string{"main.ts": src.String()}
	kb := float64(src.Len()) / 1024
	for b.Loop() {
		if _, err := Bundle(modules, "main.ts"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/kb, "µs/KB")
}

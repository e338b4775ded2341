package transpile

import (
	"errors"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/transpile/transpiletest"
)

// FuzzBundle compiles sources built as open×depth + middle + close×depth:
// the seeds are the nesting families, and the fuzzer mutates the brackets,
// the middle and the depth. Whatever the source, Bundle must return (never
// crash this process) with an output or an *Error, never another error.
// Brief run: make test. Longer: see docs/security.md.
func FuzzBundle(f *testing.F) {
	for _, fam := range transpiletest.Families {
		src := fam.Module(3)
		f.Add(src, "", "", uint32(0))
	}
	f.Add("", "!", "1", uint32(100_000))
	f.Add("", "(", ")", uint32(300))
	f.Add("", "${`", "`}", uint32(50_000))
	f.Add(" { export const x = 1; }", "namespace N", ".N", uint32(300))
	f.Fuzz(func(t *testing.T, middle, open, close string, depth uint32) {
		depth %= 200_001
		if per := len(open) + len(close); per > 0 {
			depth = min(depth, uint32(1<<20/per)) // at most about 1 MB
		}
		src := strings.Repeat(open, int(depth)) + middle + strings.Repeat(close, int(depth))
		out, err := Bundle(map[string]string{"main.ts": src}, "main.ts")
		var e *Error
		switch {
		case err != nil && !errors.As(err, &e):
			t.Errorf("Bundle(%d bytes) = %v, want an output or an *Error", len(src), err)
		case err == nil:
			out.MapStack("at main.js:1:1")
		}
	})
}

package transpile

import (
	"runtime/debug"
	"testing"

	"github.com/dynamic-workers/gateway/internal/transpile/transpiletest"
)

// inProcessStackBudget is the stack the largest in-process source must fit
// in: a 64th of Go's 1 GB maximum.
const inProcessStackBudget = 16 << 20

// deepestInProcess returns the deepest nesting of f whose modules still
// compile in process.
func deepestInProcess(f transpiletest.Family) int {
	lo, hi := 0, MaxInProcessBytes
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fitsInProcess(f.Modules(mid)) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// TestNestingStackCost compiles every nesting family as deep as an
// in-process source can nest it, with the goroutine stack limit lowered
// from 1 GB to inProcessStackBudget: if esbuild ever needed more (a new
// family, a new esbuild), this test binary dies of a stack overflow, and
// MaxInProcessBytes must come down. Measured with esbuild 0.28 by bisecting
// the depth that overflows an 8 MB stack, the worst family costs ~3.3 KB of
// stack per byte of source ("!!!…1", "-+-+…1"), so 1 KiB needs ~3.4 MB;
// parentheses cost ~1.2 KB per byte, arrows ~2.2 KB, namespaces ~2.3 KB,
// JSON arrays ~0.7 KB, type syntax well under 0.2 KB.
func TestNestingStackCost(t *testing.T) {
	// Not parallel: the stack limit is the whole process's.
	defer debug.SetMaxStack(debug.SetMaxStack(inProcessStackBudget))
	for _, f := range transpiletest.Families {
		depth := deepestInProcess(f)
		if depth < MaxInProcessBytes/16 {
			t.Errorf("%s: only %d levels fit in process, want the family to nest densely", f.Name, depth)
		}
		if _, err := Bundle(f.Modules(depth), "main.ts"); err != nil {
			t.Errorf("Bundle(%s × %d) = %v, want it compiled", f.Name, depth, err)
		}
	}
}

// TestNestingAroundThreshold compiles every family just under and just
// over the in-process size: the same source compiles on both paths.
func TestNestingAroundThreshold(t *testing.T) {
	t.Parallel()
	for _, f := range transpiletest.Families {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			depth := deepestInProcess(f)
			for _, d := range []int{depth, depth + 1} {
				if _, err := Bundle(f.Modules(d), "main.ts"); err != nil {
					t.Errorf("Bundle(%s × %d) = %v, want it compiled", f.Name, d, err)
				}
			}
		})
	}
}

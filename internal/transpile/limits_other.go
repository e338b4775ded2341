//go:build !unix

package transpile

import "runtime/debug"

// limitChild bounds the child's goroutine stacks; this system has no
// resource limits to set, so the parent's timeout bounds the rest.
func limitChild() {
	debug.SetMaxStack(childMaxStack)
}

//go:build unix

package transpile

import (
	"runtime/debug"
	"syscall"
)

// limitChild bounds the child process before it reads any source: its
// goroutine stacks, its data segment (the Go heap and the stacks in it) and
// its CPU time. A limit the system refuses is skipped; the parent's timeout
// still applies.
func limitChild() {
	debug.SetMaxStack(childMaxStack)
	_ = syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: childMaxData, Max: childMaxData})
	_ = syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: childMaxCPU, Max: childMaxCPU})
}

package transpile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"time"
)

// esbuild parses, visits and prints by recursive descent, so deeply nested
// source drives it deep into the Go stack, and a Go stack overflow is a
// fatal error no recover can catch. Every level of nesting costs at least one
// byte of source; the worst measured cost is about 3.3 KB of stack per byte
// (a run of prefix operators such as "!!!…1"; see TestNestingStackCost), so
// a 16 KiB source would need ~54 MB, far under Go's 1 GB maximum. Time is the
// tighter bound: some shapes cost esbuild more than quadratic time (nested
// namespaces or arrow functions that reuse one name make its renamer cubic:
// 1 KiB of "namespace N.N.N…" takes ~1.4 s, 2 KiB ~10 s, 16 KiB about an
// hour), and a compile in this process cannot be stopped. So only sources of
// at most MaxInProcessBytes compile in this process; larger ones compile in
// a child process that is killed after childTimeout, and where running out of
// stack or memory ends only the child.
const (
	// MaxInProcessBytes is the largest total of module sizes Bundle compiles
	// in this process: hello-world sized sources, which are the most common.
	// Being a total, it bounds the sum of the stacks of esbuild's per-module
	// goroutines too, not only the deepest one.
	MaxInProcessBytes = 1 << 10

	// childEnv, set to "1" in a process's environment, makes
	// MaybeServeChild serve one compile and exit. Only runChild sets it.
	childEnv = "GATEWAY_TRANSPILE_CHILD"

	childTimeout   = 10 * time.Second // wall-clock limit of one compile, once it has a slot
	childMaxStack  = 128 << 20        // per goroutine: ~40,000 levels of the costliest nesting
	childMaxData   = 2 << 30          // RLIMIT_DATA: heap and stacks (a 10 MB source compiled in ~1 GB)
	childMaxCPU    = 30               // RLIMIT_CPU in seconds, a backstop should the parent be gone
	childMaxInput  = 256 << 20        // request read by the child
	childMaxOutput = 256 << 20        // answer read by the parent; past it the child is ended
)

// The messages of a source the child could not compile; transpile errors
// reach the user, so they name no paths or internals.
const (
	msgTooDeep = "the TypeScript could not be compiled: nesting too deep or source too large for the compiler"
	msgTooSlow = "the TypeScript could not be compiled: the compiler took longer than 10s"
)

var (
	// childServed records that MaybeServeChild ran in this process, so the
	// running binary answers as a child when re-executed. Without it,
	// re-executing a binary (a test binary, say) would run it from the top.
	childServed atomic.Bool

	// childQueueWait is the longest wait for a slot; then ErrBusy.
	childQueueWait = 30 * time.Second

	// childSlots bounds the child processes running at once: each may use
	// up to childMaxData of memory.
	childSlots = make(chan struct{}, min(4, runtime.GOMAXPROCS(0)))

	errNoChild = errors.New("this binary cannot compile large TypeScript: its main does not call transpile.MaybeServeChild")

	// ErrBusy means every compiler process was busy for childQueueWait:
	// the server is overloaded, which is not the source's fault.
	ErrBusy = errors.New("every TypeScript compiler process is busy")
)

// childRequest is what the parent sends the child on its stdin.
type childRequest struct {
	Modules map[string]string `json:"modules"`
	Main    string            `json:"main"`
	Binary  []string          `json:"binary,omitempty"` // the binary modules' names
	// Packages, if set, asks for a bundle of npm packages instead.
	Packages *packagesRequest `json:"packages,omitempty"`
}

// MaybeServeChild lets Bundle compile large sources in a child process, a
// re-execution of the running binary. Call it first thing in main, and in
// the TestMain of every package whose tests bundle large sources. In the
// child, which Bundle starts with GATEWAY_TRANSPILE_CHILD=1 in an otherwise
// empty environment, it compiles the request read from stdin, writes the
// answer to stdout and exits; in any other process it returns at once.
func MaybeServeChild() {
	if os.Getenv(childEnv) != "1" {
		childServed.Store(true)
		return
	}
	os.Exit(serveChild(os.Stdin, os.Stdout))
}

// serveChild is the child's whole life: limit itself, compile, answer. A
// non-zero exit status (or death by signal) means no answer.
func serveChild(in io.Reader, out io.Writer) int {
	limitChild()
	var req childRequest
	if err := json.NewDecoder(io.LimitReader(in, childMaxInput)).Decode(&req); err != nil {
		return 3
	}
	var answer any
	if req.Packages != nil {
		answer = buildPackages(req.Packages.Dir, req.Packages.Entries)
	} else {
		answer = build(req.Modules, req.Main, req.Binary)
	}
	if err := json.NewEncoder(out).Encode(answer); err != nil {
		return 3
	}
	return 0
}

// fitsInProcess reports whether modules are small enough to compile in
// this process.
func fitsInProcess(modules map[string]string) bool {
	total := 0
	for _, src := range modules {
		total += len(src)
	}
	return total <= MaxInProcessBytes
}

// buildInChild waits up to childQueueWait for a slot, then compiles in a
// child process within childTimeout.
func buildInChild(modules map[string]string, main string, binary []string) (*built, error) {
	if !childServed.Load() {
		return nil, errNoChild
	}
	wait := time.NewTimer(childQueueWait)
	defer wait.Stop()
	select {
	case childSlots <- struct{}{}:
		defer func() { <-childSlots }()
	case <-wait.C:
		return nil, ErrBusy
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	return runChild(ctx, modules, main, binary)
}

// runChild compiles in a child process, which is killed when ctx ends and
// always reaped. A child that dies or is killed is an *Error: the source is
// what drove it there. The caller holds a slot.
func runChild(ctx context.Context, modules map[string]string, main string, binary []string) (*built, error) {
	if !childServed.Load() {
		return nil, errNoChild
	}
	req, err := json.Marshal(childRequest{Modules: modules, Main: main, Binary: binary})
	if err != nil {
		return nil, fmt.Errorf("encode the compile request: %w", err)
	}
	out := &cappedBuffer{max: childMaxOutput}
	cmd := exec.CommandContext(ctx, selfPath())
	cmd.Env = []string{childEnv + "=1", "GOTRACEBACK=none"}
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(req)
	cmd.Stdout = out // stderr goes to the null device: it holds only the child's crash report
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, &Error{Message: msgTooSlow}
	case errors.As(err, &exit):
		return nil, &Error{Message: msgTooDeep}
	case err != nil:
		return nil, fmt.Errorf("run the compiler process: %w", err)
	}
	var b built
	if err := json.Unmarshal(out.Bytes(), &b); err != nil {
		return nil, fmt.Errorf("read the compiler process's answer: %w", err)
	}
	return &b, nil
}

// selfPath names the running binary. On Linux /proc/self/exe still works
// when the file on disk has been replaced (an upgrade in place).
func selfPath() string {
	if runtime.GOOS == "linux" {
		return "/proc/self/exe"
	}
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return os.Args[0]
}

// cappedBuffer is a buffer that refuses to grow past max bytes.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.Len()+len(p) > c.max {
		return 0, errors.New("compiler answer too large")
	}
	return c.Buffer.Write(p)
}

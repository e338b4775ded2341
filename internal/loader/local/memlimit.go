package local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// How the pool holds each workerd process to its memory limit.
const (
	boundOff      = "off"      // no limit
	boundCgroup2  = "cgroup2"  // a child cgroup per process with memory.max
	boundCgroup1  = "cgroup1"  // a child memory cgroup per process with memory.limit_in_bytes
	boundWatchdog = "watchdog" // the watcher kills a process whose resident memory is past the limit
)

// memBound is the hard memory bound of the pool's processes. The kernel
// enforces it through a cgroup where the gateway may create one, counting
// everything the process holds (ArrayBuffers, wasm memory, strings outside
// the V8 heap); elsewhere the watcher samples resident memory at probe
// frequency and kills (SIGKILL) a process past it.
type memBound struct {
	kind  string
	dir   string // the cgroup directory under which each process gets its group
	limit int64  // bytes; 0 when off
}

// cgroupFS is where detectMemBound looks: the process's cgroup file and the
// cgroup mount. Tests point it at a temporary directory.
type cgroupFS struct {
	self  string // /proc/self/cgroup
	mount string // /sys/fs/cgroup
}

var systemCgroups = cgroupFS{self: "/proc/self/cgroup", mount: "/sys/fs/cgroup"}

// detectMemBound picks how to enforce limit bytes: cgroup v2 if the
// gateway's own group is on the unified hierarchy with the memory controller
// delegated to its children, else cgroup v1 if its memory group is writable,
// else the watchdog.
func detectMemBound(fs cgroupFS, limit int64, name string) memBound {
	if limit <= 0 {
		return memBound{kind: boundOff}
	}
	data, err := os.ReadFile(fs.self)
	if err != nil {
		return memBound{kind: boundWatchdog, limit: limit}
	}
	v1, v2 := "", ""
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	if _, err := os.Stat(filepath.Join(fs.mount, "cgroup.controllers")); err == nil && v2 != "" {
		dir := filepath.Join(fs.mount, v2)
		if delegatesMemory(dir) && canCreate(dir, name) {
			return memBound{kind: boundCgroup2, dir: dir, limit: limit}
		}
	}
	if v1 != "" {
		dir := filepath.Join(fs.mount, "memory", v1)
		if _, err := os.Stat(filepath.Join(dir, "memory.limit_in_bytes")); err == nil && canCreate(dir, name) {
			return memBound{kind: boundCgroup1, dir: dir, limit: limit}
		}
	}
	return memBound{kind: boundWatchdog, limit: limit}
}

// delegatesMemory reports whether children of the v2 group dir get the
// memory controller, enabling it if the group allows.
func delegatesMemory(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err == nil && hasWord(string(data), "memory") {
		return true
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0o644) == nil
}

func hasWord(s, w string) bool {
	for f := range strings.FieldsSeq(s) {
		if f == w {
			return true
		}
	}
	return false
}

// canCreate reports whether a child group can be made (and removed) in dir.
func canCreate(dir, name string) bool {
	probe := filepath.Join(dir, name+"-probe")
	if err := os.Mkdir(probe, 0o755); err != nil {
		return false
	}
	return os.Remove(probe) == nil
}

// cgroup is the group one workerd process runs in.
type cgroup struct {
	kind string
	dir  string
}

// newGroup makes the group name under b's directory with b's limit.
func (b memBound) newGroup(name string) (*cgroup, error) {
	if b.kind != boundCgroup1 && b.kind != boundCgroup2 {
		return nil, nil
	}
	g := &cgroup{kind: b.kind, dir: filepath.Join(b.dir, name)}
	if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("make cgroup: %w", err)
	}
	limit := []byte(strconv.FormatInt(b.limit, 10))
	file := "memory.limit_in_bytes"
	if b.kind == boundCgroup2 {
		file = "memory.max"
		_ = os.WriteFile(filepath.Join(g.dir, "memory.swap.max"), []byte("0"), 0o644) // absent without swap accounting
	}
	if b.kind == boundCgroup1 {
		// Charge what workerd allocated before it joined the group to it.
		_ = os.WriteFile(filepath.Join(g.dir, "memory.move_charge_at_immigrate"), []byte("1"), 0o644)
	}
	if err := os.WriteFile(filepath.Join(g.dir, file), limit, 0o644); err != nil {
		g.remove()
		return nil, fmt.Errorf("set cgroup memory limit: %w", err)
	}
	return g, nil
}

// add moves process pid into the group.
func (g *cgroup) add(pid int) error {
	return os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

// oomKilled reports whether the kernel killed a process of the group for
// reaching its limit: its oom_kill count, or, on kernels without one, a
// SIGKILL (sigkilled) after the group reached its limit.
func (g *cgroup) oomKilled(sigkilled bool) bool {
	if g.kind == boundCgroup2 {
		events := filepath.Join(g.dir, "memory.events")
		return counter(events, "oom_kill") > 0 || sigkilled && counter(events, "max") > 0
	}
	if counter(filepath.Join(g.dir, "memory.oom_control"), "oom_kill") > 0 {
		return true
	}
	data, err := os.ReadFile(filepath.Join(g.dir, "memory.failcnt"))
	return err == nil && sigkilled && strings.TrimSpace(string(data)) != "0"
}

// peak is the most memory the group held, in bytes (0 if unknown).
func (g *cgroup) peak() int64 {
	file := "memory.max_usage_in_bytes"
	if g.kind == boundCgroup2 {
		file = "memory.peak"
	}
	data, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n
}

// remove deletes the group once its processes are gone; the kernel may
// take a moment to release an exited process (EBUSY meanwhile).
func (g *cgroup) remove() error {
	var err error
	for range 50 {
		if err = os.Remove(g.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// removeGroups removes what is left of the groups named prefix-N (each is
// removed when its process exits; this catches any that could not be).
func (b memBound) removeGroups(prefix string) {
	if b.dir == "" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(b.dir, prefix+"-*"))
	for _, d := range dirs {
		_ = (&cgroup{dir: d}).remove()
	}
}

// removeOrLog removes g, if any, logging a failure.
func (g *cgroup) removeOrLog(log zerolog.Logger) {
	if g == nil {
		return
	}
	if err := g.remove(); err != nil {
		log.Warn().Err(err).Str("cgroup", g.dir).Msg("could not remove a runtime's memory cgroup")
	}
}

// counter reads "name N" from a cgroup key-value file.
func counter(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == name {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

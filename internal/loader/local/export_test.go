package local

import (
	"path/filepath"

	"github.com/rs/zerolog"
)

// Reruns counts the executions run again after losing their process.
func (l *Pool) Reruns() int64 { return l.reruns.Load() }

// MemoryBound says how the pool bounds its processes' memory: "off",
// "cgroup1", "cgroup2" or "watchdog".
func (l *Pool) MemoryBound() string { return l.bound.kind }

// NewWithoutCgroups starts a pool that finds no cgroup to use, so a
// memory limit falls to the watchdog.
func NewWithoutCgroups(cfg Config, log zerolog.Logger, empty string) (*Pool, error) {
	return newPool(cfg, log, cgroupFS{self: empty + "/cgroup", mount: empty})
}

// Cgroups lists the memory cgroups of the pool's processes on disk.
func (l *Pool) Cgroups() []string {
	if l.bound.dir == "" {
		return nil
	}
	dirs, _ := filepath.Glob(filepath.Join(l.bound.dir, l.prefix+"-*"))
	return dirs
}

// SparePID is the process id of the spare process waiting to be taken, or
// 0 while there is none.
func (l *Pool) SparePID() int {
	if p := l.spare.Load(); p != nil {
		return p.pid()
	}
	return 0
}

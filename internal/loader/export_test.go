package loader

import (
	"path/filepath"

	"github.com/rs/zerolog"
)

// ShimURL returns the URL of one running shim, and the secret the gateway
// signs its calls with, for tests that call the shim directly.
func (l *Local) ShimURL() (url, secret string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.slots {
		if s.proc != nil {
			return s.proc.url, l.secret
		}
	}
	return "", l.secret
}

// Reruns counts the executions run again after losing their process.
func (l *Local) Reruns() int64 { return l.reruns.Load() }

// MemoryBound says how the pool bounds its processes' memory: "off",
// "cgroup1", "cgroup2" or "watchdog".
func (l *Local) MemoryBound() string { return l.bound.kind }

// NewLocalWithoutCgroups starts a pool that finds no cgroup to use, so a
// memory limit falls to the watchdog.
func NewLocalWithoutCgroups(cfg LocalConfig, log zerolog.Logger, empty string) (*Local, error) {
	return newLocal(cfg, log, cgroupFS{self: empty + "/cgroup", mount: empty})
}

// Cgroups lists the memory cgroups of the pool's processes on disk.
func (l *Local) Cgroups() []string {
	if l.bound.dir == "" {
		return nil
	}
	dirs, _ := filepath.Glob(filepath.Join(l.bound.dir, l.prefix+"-*"))
	return dirs
}

package config

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Machine is what the runtime's derived defaults follow: the CPUs, the
// memory the gateway may use and the files it may open.
type Machine struct {
	CPUs int
	// MemoryBytes is the smaller of the machine's physical memory and the
	// limit of the gateway's own memory cgroup (a container's), if any.
	MemoryBytes int64
	// OpenFiles is the gateway's limit of open files (its hard limit: Go
	// raises the soft one to it at start).
	OpenFiles int
}

// ThisMachine is the machine the gateway runs on, read once.
var ThisMachine = sync.OnceValue(func() Machine {
	return Machine{CPUs: runtime.NumCPU(), MemoryBytes: memoryBytes("/proc/meminfo", "/proc/self/cgroup", "/sys/fs/cgroup"), OpenFiles: openFiles()}
})

// Fallbacks where the machine does not say.
const (
	fallbackMemory    = 4 << 30
	fallbackOpenFiles = 4096
)

// memoryBytes is MemTotal from meminfo, lowered to the memory limit of the
// gateway's own cgroup or any above it (v2 memory.max, v1
// memory.limit_in_bytes) read under mount.
func memoryBytes(meminfo, self, mount string) int64 {
	total := memTotal(meminfo)
	if total <= 0 {
		total = fallbackMemory
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return total
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = filepath.Join(mount, parts[2]), "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = filepath.Join(mount, "memory", parts[2]), "memory.limit_in_bytes"
		default:
			continue
		}
		for d := dir; strings.HasPrefix(d, mount); d = filepath.Dir(d) {
			if n := limitIn(filepath.Join(d, file)); n > 0 && n < total {
				total = n
			}
			if d == mount {
				break
			}
		}
	}
	return total
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// memTotal reads MemTotal (kB) from a meminfo file, in bytes; 0 if it cannot.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// limitIn reads a cgroup memory limit file in bytes; 0 when absent or
// "max".
func limitIn(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n
}

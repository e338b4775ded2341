package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMemoryBytes: the machine's memory is its physical memory, lowered to
// the smallest limit of the gateway's own memory cgroup and those above it.
func TestMemoryBytes(t *testing.T) {
	t.Parallel()
	const meminfo = "MemTotal:       24683744 kB\nMemFree:        1000 kB\n"
	const total = int64(24683744) << 10
	tests := []struct {
		name  string
		self  string
		files map[string]string
		want  int64
	}{
		{"no cgroup", "", nil, total},
		{"v2, unlimited", "0::/svc\n", map[string]string{"svc/memory.max": "max\n"}, total},
		{"v2, limited", "0::/svc\n", map[string]string{"svc/memory.max": "2147483648\n"}, 2 << 30},
		{"v2, limited above", "0::/a/b\n", map[string]string{"a/b/memory.max": "max\n", "a/memory.max": "1073741824\n"}, 1 << 30},
		{"v2, namespaced root", "0::/\n", map[string]string{"memory.max": "536870912\n"}, 512 << 20},
		{"v1, unlimited", "4:memory:/box\n", map[string]string{"memory/box/memory.limit_in_bytes": "9223372036854771712\n"}, total},
		{"v1, limited", "5:cpu:/\n4:memory:/box\n", map[string]string{"memory/box/memory.limit_in_bytes": "3221225472\n"}, 3 << 30},
		{"v1 among others", "4:cpuacct,memory:/box\n", map[string]string{"memory/box/memory.limit_in_bytes": "3221225472\n"}, 3 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			write := func(path, content string) {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(root, "meminfo"), meminfo)
			write(filepath.Join(root, "self"), tt.self)
			mount := filepath.Join(root, "mnt")
			for name, content := range tt.files {
				write(filepath.Join(mount, name), content)
			}
			if got := memoryBytes(filepath.Join(root, "meminfo"), filepath.Join(root, "self"), mount); got != tt.want {
				t.Errorf("memoryBytes() = %d, want %d", got, tt.want)
			}
		})
	}
	if m := ThisMachine(); m.CPUs < 1 || m.MemoryBytes <= 0 || m.OpenFiles <= 0 {
		t.Errorf("ThisMachine() = %+v, want every figure positive", m)
	}
}

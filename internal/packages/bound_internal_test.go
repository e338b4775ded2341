package packages

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecsPerSet: a set spelled more ways than maxSpecs keeps the last
// maxSpecs resolutions, and the count of its bytes stays what its
// directory takes, as a restart would walk it.
func TestSpecsPerSet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := strings.Repeat("ab", 32)
	for _, sub := range []string{"node_modules", "specs", "bundles"} {
		if err := os.MkdirAll(filepath.Join(dir, "sets", key, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeJSON(filepath.Join(dir, "sets", key, "set.json"), Set{Key: key}); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	set := &Set{Key: key, Versions: map[string]string{"a": "1.0.0"}}
	for i := range maxSpecs + 36 {
		m.remember(fmt.Sprintf("%064x", i), set)
	}
	specs, _ := filepath.Glob(filepath.Join(dir, "sets", key, "specs", "*.json"))
	if len(specs) != maxSpecs || len(m.specOf) != maxSpecs {
		t.Errorf("%d spec files, %d known; want the last %d", len(specs), len(m.specOf), maxSpecs)
	}
	if _, ok := m.specOf[fmt.Sprintf("%064x", 0)]; ok {
		t.Errorf("the oldest spelling is still known")
	}
	walked, err := treeUsage(filepath.Join(dir, "sets", key))
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Bytes != walked {
		t.Errorf("Stats().Bytes = %d, want %d (what the set's directory takes)", s.Bytes, walked)
	}
}

// TestSpecRefreshed: a resolution written again (its refresh passed) is
// counted once, in a set an earlier layout kept (no specs/ of its own).
func TestSpecRefreshed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := strings.Repeat("cd", 32)
	for _, sub := range []string{"node_modules"} { // as sets were kept before they had specs/ and bundles/
		if err := os.MkdirAll(filepath.Join(dir, "sets", key, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeJSON(filepath.Join(dir, "sets", key, "set.json"), Set{Key: key}); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	set := &Set{Key: key, Versions: map[string]string{"a": "1.0.0"}}
	for range 10 {
		m.remember(strings.Repeat("0", 64), set)
	}
	if m.specOf[strings.Repeat("0", 64)] != key {
		t.Fatalf("the resolution of a set kept by an earlier layout was not remembered")
	}
	walked, err := treeUsage(filepath.Join(dir, "sets", key))
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Bytes != walked {
		t.Errorf("Stats().Bytes = %d, want %d (what the set's directory takes)", s.Bytes, walked)
	}
}

package packages

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The cache's bound. Every set on disk is an entry counting the bytes its
// directory takes (its packages, its resolutions, its bundles), as the
// file system allocates them; the total is known from a walk at startup
// and kept as sets come and go. A new set is admitted, counted before it
// is moved in (so that resolutions finishing side by side cannot both
// pass the bound), by evicting the sets least recently used that no one
// has pinned: a resolution's caller pins the set until its context ends
// (the execution, or the submission, that asked for it), a bundling for
// as long as it reads the set.

// entry is one set in the cache.
type entry struct {
	bytes int64
	used  time.Time
	// touched is when set.json's time last said used, which orders the
	// sets after a restart.
	touched time.Time
	pins    int
	ready   bool     // moved in; until then only counted
	specs   []string // spec keys that name the set, oldest first
	// What its files say, read once: set.json's packages and the specs.
	packages []Package
	resolved map[string]*spec
}

// CacheStats is what the cache holds now.
type CacheStats struct {
	Bytes     int64 // on disk, the sets being moved in counted
	Sets      int
	Evictions int64 // sets evicted since the manager started
}

// Stats says what the cache holds now.
func (m *Manager) Stats() CacheStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return CacheStats{Bytes: m.total, Sets: len(m.entries), Evictions: m.evictions}
}

// admit counts a new set of size bytes, pinned, evicting what it must.
// A set larger than the whole cache is TooLarge; one that fits only in
// the room of sets in use is Unavailable (they end, and it may fit).
func (m *Manager) admit(key string, size int64) error {
	if size > m.o.CacheMaxBytes {
		return &Error{Kind: TooLarge, Message: fmt.Sprintf("the packages take %d bytes on disk, more than the whole dependency cache, packages.cache_max_bytes, %d bytes", size, m.o.CacheMaxBytes)}
	}
	m.mu.Lock()
	victims, ok := m.roomLocked(size)
	if ok {
		m.entries[key] = &entry{bytes: size, used: time.Now(), pins: 1, resolved: map[string]*spec{}}
		m.total += size
	}
	m.mu.Unlock()
	m.remove(victims)
	if !ok {
		return &Error{Kind: Unavailable, Message: fmt.Sprintf("the dependency cache (packages.cache_max_bytes, %d bytes) is full of sets in use", m.o.CacheMaxBytes)}
	}
	return nil
}

// withdraw forgets a set admitted but never moved in.
func (m *Manager) withdraw(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[key]; e != nil {
		m.total -= e.bytes
		delete(m.entries, key)
	}
}

// grow counts size more bytes of set key (a file written beside its
// packages), if there is room; the set must be in the cache.
func (m *Manager) grow(key string, size int64) bool {
	m.mu.Lock()
	e := m.entries[key]
	if e == nil || !e.ready {
		m.mu.Unlock()
		return false
	}
	e.pins++ // not its own victim
	victims, ok := m.roomLocked(size)
	if ok {
		e.bytes += size
		m.total += size
	}
	e.pins--
	m.mu.Unlock()
	m.remove(victims)
	return ok
}

// shrink uncounts what grow counted, the file not written.
func (m *Manager) shrink(key string, size int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[key]; e != nil {
		e.bytes -= size
		m.total -= size
	}
}

// roomLocked makes room for size more bytes by evicting the sets least
// recently used that are not pinned, and returns their directories, moved
// aside, for remove; if that is not room enough it evicts none.
func (m *Manager) roomLocked(size int64) ([]string, bool) {
	need := m.total + size - m.o.CacheMaxBytes
	if need <= 0 {
		return nil, true
	}
	var free []string
	for key, e := range m.entries {
		if e.ready && e.pins == 0 {
			free = append(free, key)
		}
	}
	sort.Slice(free, func(i, j int) bool { return m.entries[free[i]].used.Before(m.entries[free[j]].used) })
	var victims []string
	for _, key := range free {
		if need <= 0 {
			break
		}
		victims = append(victims, key)
		need -= m.entries[key].bytes
	}
	if need > 0 {
		return nil, false
	}
	aside := make([]string, 0, len(victims))
	for _, key := range victims {
		e := m.entries[key]
		for _, s := range e.specs {
			delete(m.specOf, s)
		}
		m.total -= e.bytes
		delete(m.entries, key)
		m.evictions++
		// Moved aside at once (into work/, emptied at startup): no one
		// finds half of it, and the set may be moved in again.
		dir, err := os.MkdirTemp(filepath.Join(m.o.Dir, "work"), "evicted-")
		if err == nil {
			err = os.Rename(filepath.Join(m.o.Dir, "sets", key), filepath.Join(dir, "set"))
		}
		if err != nil {
			dir = filepath.Join(m.o.Dir, "sets", key)
		}
		aside = append(aside, dir)
	}
	return aside, true
}

// remove deletes the directories of sets evicted, without the lock.
func (m *Manager) remove(dirs []string) {
	for _, dir := range dirs {
		_ = os.RemoveAll(dir)
	}
}

// pin keeps set key from eviction until unpin, if it is in the cache.
func (m *Manager) pin(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[key]
	if e == nil || !e.ready {
		return false
	}
	e.pins++
	e.used = time.Now()
	if e.used.Sub(e.touched) > time.Minute {
		e.touched = e.used
		_ = os.Chtimes(filepath.Join(m.o.Dir, "sets", key, "set.json"), e.used, e.used)
	}
	return true
}

// unpin undoes a pin.
func (m *Manager) unpin(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[key]; e != nil && e.pins > 0 {
		e.pins--
		e.used = time.Now()
	}
}

// load counts the sets a previous process left, deletes what is not one
// (a set half moved in, or the files of an older layout), and evicts
// down to the bound if it was lowered.
func (m *Manager) load() error {
	for _, old := range []string{"specs", "bundles"} { // before sets kept their own
		_ = os.RemoveAll(filepath.Join(m.o.Dir, old))
	}
	dir := filepath.Join(m.o.Dir, "sets")
	list, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, d := range list {
		path := filepath.Join(dir, d.Name())
		info, err := os.Stat(filepath.Join(path, "set.json"))
		if !d.IsDir() || !validKey(d.Name()) || err != nil {
			_ = os.RemoveAll(path)
			continue
		}
		for _, sub := range []string{"specs", "bundles"} { // a set kept before they were
			if err := os.MkdirAll(filepath.Join(path, sub), 0o700); err != nil {
				return err
			}
		}
		size, err := treeUsage(path)
		if err != nil {
			return err
		}
		e := &entry{bytes: size, used: info.ModTime(), ready: true, resolved: map[string]*spec{}} // touched when first used
		specs, _ := filepath.Glob(filepath.Join(path, "specs", "*.json"))
		for _, s := range specs {
			key := strings.TrimSuffix(filepath.Base(s), ".json")
			e.specs = append(e.specs, key)
			m.specOf[key] = d.Name()
		}
		m.entries[d.Name()] = e
		m.total += size
	}
	m.mu.Lock()
	victims, _ := m.roomLocked(0)
	m.mu.Unlock()
	m.remove(victims)
	return nil
}

// validKey reports whether name is a set key (a sha-256 in hex).
func validKey(name string) bool {
	if len(name) != 64 {
		return false
	}
	return strings.Trim(name, "0123456789abcdef") == ""
}

// treeUsage is the bytes root and everything under it take on disk.
func treeUsage(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += usage(info)
		return nil
	})
	return total, err
}

// usage is what a file takes on disk: its blocks, or its size if more
// (a sparse file is counted whole: it may be filled).
func usage(info fs.FileInfo) int64 {
	n := blocks(info.Size())
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int64(st.Blocks)*512 > n {
		n = int64(st.Blocks) * 512
	}
	return n
}

// blocks is size rounded up to whole 4 KiB blocks, at least one: what a
// file of size bytes takes on most file systems.
func blocks(size int64) int64 {
	return max(1, (size+4095)/4096) * 4096
}

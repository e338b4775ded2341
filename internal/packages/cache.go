package packages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The cache directory:
//
//	sets/<set key>/node_modules            a resolved set as npm installed it
//	sets/<set key>/set.json                its packages
//	sets/<set key>/specs/<spec key>.json   what a request's dependencies resolved to
//	sets/<set key>/bundles/<key>.json      modules bundled from the set
//	work/                                  resolutions under way, sets being deleted
//
// Everything of a set lives under its directory, so that evicting the set
// (bound.go) takes its resolutions and bundles with it.

// spec is what a spec key resolved to: the set, and the version of each
// package asked for.
type spec struct {
	Set      string            `json:"set"`
	Versions map[string]string `json:"versions"`
	Resolved time.Time         `json:"resolved"`
}

// cached returns the set of spec key, if it is kept and may be reused
// (always for exact versions and offline, else within Refresh), pinned
// until unpinned.
func (m *Manager) cached(key string, deps map[string]string) *Set {
	m.mu.Lock()
	setKey, ok := m.specOf[key]
	var s *spec
	var pkgs []Package
	if e := m.entries[setKey]; ok && e != nil {
		s, pkgs = e.resolved[key], e.packages
	}
	m.mu.Unlock()
	if !ok {
		return nil
	}
	dir := filepath.Join(m.o.Dir, "sets", setKey)
	if s == nil {
		s = new(spec)
		if readJSON(filepath.Join(dir, "specs", key+".json"), s) != nil {
			return nil
		}
		m.mu.Lock()
		if e := m.entries[setKey]; e != nil && m.specOf[key] == setKey {
			e.resolved[key] = s
		}
		m.mu.Unlock()
	}
	if !m.o.Offline && !exact(deps) && time.Since(s.Resolved) > m.o.Refresh {
		return nil
	}
	if !m.pin(setKey) {
		return nil
	}
	if pkgs == nil {
		var set Set
		if err := readJSON(filepath.Join(dir, "set.json"), &set); err != nil || set.Key != setKey {
			m.unpin(setKey)
			return nil
		}
		pkgs = set.Packages
		m.mu.Lock()
		m.entries[setKey].packages = pkgs // pinned: still there
		m.mu.Unlock()
	}
	return &Set{Key: setKey, Versions: s.Versions, Packages: pkgs, Resolved: s.Resolved, dir: dir}
}

// remember records that spec key resolved to set, if the cache has room
// for the record; a set keeps at most maxSpecs, the oldest dropped.
func (m *Manager) remember(key string, set *Set) {
	s := &spec{Set: set.Key, Versions: set.Versions, Resolved: set.Resolved}
	data, err := json.Marshal(s)
	if err != nil {
		return
	}
	if !m.writeCounted(set.Key, filepath.Join(m.o.Dir, "sets", set.Key, "specs", key+".json"), data) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[set.Key]
	if e == nil {
		return // evicted meanwhile; its files went with it
	}
	if old, ok := m.specOf[key]; ok && old != set.Key {
		m.dropSpecLocked(old, key)
	}
	m.specOf[key] = set.Key
	e.resolved[key] = s
	e.specs = append(slices.DeleteFunc(e.specs, func(k string) bool { return k == key }), key)
	for len(e.specs) > maxSpecs {
		m.dropSpecLocked(set.Key, e.specs[0])
	}
}

// maxSpecs is how many spellings of dependencies one set keeps resolved:
// "^1.2.0", "1.x", "latest", … of the same packages are each a spec, and
// a tenant can write many.
const maxSpecs = 64

// dropSpecLocked forgets spec key of set setKey and deletes its file.
func (m *Manager) dropSpecLocked(setKey, key string) {
	delete(m.specOf, key)
	e := m.entries[setKey]
	if e == nil {
		return
	}
	e.specs = slices.DeleteFunc(e.specs, func(k string) bool { return k == key })
	delete(e.resolved, key)
	file := filepath.Join(m.o.Dir, "sets", setKey, "specs", key+".json")
	if info, err := os.Stat(file); err == nil {
		e.bytes -= blocks(info.Size())
		m.total -= blocks(info.Size())
	}
	_ = os.Remove(file)
}

// keep moves the packages npm installed in work into the cache as set,
// unless the cache has that set already, after checking what npm left:
// files and directories only, within the byte bound. The set is admitted
// against the cache's bound (admit) and comes back pinned once.
func (m *Manager) keep(set *Set, work string) error {
	if err := m.checkTree(filepath.Join(work, "node_modules")); err != nil {
		return err
	}
	set.dir = filepath.Join(m.o.Dir, "sets", set.Key)
	for range 3 {
		// Resolutions of other specs may end in the same set at once:
		// one moves it in, pinned; the others pin it after.
		led := false
		_, err, _ := m.flights.Do("set:"+set.Key, func() (any, error) {
			led = true
			if m.pin(set.Key) {
				return nil, nil
			}
			return nil, m.move(set, work)
		})
		if err != nil || led || m.pin(set.Key) {
			return err
		}
	}
	return &Error{Kind: Unavailable, Message: fmt.Sprintf("the dependency cache (packages.cache_max_bytes, %d bytes) is too busy to keep the set", m.o.CacheMaxBytes)}
}

// move makes work's packages the cache's set, counted against the bound
// and pinned.
func (m *Manager) move(set *Set, work string) error {
	tmp, err := os.MkdirTemp(filepath.Join(m.o.Dir, "work"), "new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Rename(filepath.Join(work, "node_modules"), filepath.Join(tmp, "node_modules")); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Mkdir(filepath.Join(tmp, "node_modules"), 0o700); err != nil {
			return err // a set of no packages
		}
	}
	if err := writeJSON(filepath.Join(tmp, "set.json"), Set{Key: set.Key, Packages: set.Packages}); err != nil {
		return err
	}
	for _, sub := range []string{"specs", "bundles"} { // made now, to be counted
		if err := os.Mkdir(filepath.Join(tmp, sub), 0o700); err != nil {
			return err
		}
	}
	size, err := treeUsage(tmp)
	if err != nil {
		return err
	}
	if err := m.admit(set.Key, size); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(m.o.Dir, "sets", set.Key)); err != nil {
		m.withdraw(set.Key)
		return err
	}
	m.mu.Lock()
	e := m.entries[set.Key]
	e.ready, e.packages = true, set.Packages
	m.mu.Unlock()
	return nil
}

// checkTree checks what npm installed: regular files and directories
// only (no links, whatever npm's version does), at most MaxBytes.
func (m *Manager) checkTree(root string) error {
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == root {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			return &Error{Kind: Denied, Message: fmt.Sprintf("npm left %s, which is neither a file nor a directory", rel)}
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			total += info.Size()
		}
		if total > m.o.MaxBytes {
			return &Error{Kind: TooLarge, Message: fmt.Sprintf("the packages take more than packages.max_bytes, %d bytes", m.o.MaxBytes)}
		}
		return nil
	})
	return err
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFile(path, data)
}

// writeCounted writes data to file, under the directory of set, if the
// cache has room for it, and counts it (with what its directory grew).
func (m *Manager) writeCounted(set, file string, data []byte) bool {
	size := blocks(int64(len(data)))
	if !m.grow(set, size) {
		return false
	}
	var before, replaced int64
	if info, err := os.Stat(filepath.Dir(file)); err == nil {
		before = usage(info)
	}
	if info, err := os.Stat(file); err == nil {
		replaced = blocks(info.Size()) // a resolution refreshed, say
	}
	if writeFile(file, data) != nil {
		m.shrink(set, size)
		return false
	}
	m.shrink(set, replaced)
	if info, err := os.Stat(filepath.Dir(file)); err == nil && usage(info) > before {
		m.shrink(set, before-usage(info)) // a directory grows, and never shrinks
	}
	return true
}

// writeFile writes data to path whole or not at all.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

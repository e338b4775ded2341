package packages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The cache directory:
//
//	sets/<set key>/node_modules   a resolved set as npm installed it
//	sets/<set key>/set.json       its packages
//	specs/<spec key>.json         what a request's dependencies resolved to
//	bundles/<bundle key>.json     modules bundled from a set
//	work/                         resolutions under way

// cached returns the set of spec key, if it is kept and may be reused:
// always for exact versions and offline, else within Refresh.
func (m *Manager) cached(key string, deps map[string]string) *Set {
	m.mu.Lock()
	set := m.specs[key]
	m.mu.Unlock()
	if set == nil {
		var s Set
		if readJSON(filepath.Join(m.o.Dir, "specs", key+".json"), &s) != nil {
			return nil
		}
		set = &s
	}
	if !m.installed(set) {
		return nil
	}
	if !m.o.Offline && !exact(deps) && time.Since(set.Resolved) > m.o.Refresh {
		return nil
	}
	m.mu.Lock()
	m.specs[key] = set
	m.mu.Unlock()
	return set
}

// installed reports whether set's packages are on disk, and sets its dir.
func (m *Manager) installed(set *Set) bool {
	dir := filepath.Join(m.o.Dir, "sets", set.Key)
	m.mu.Lock()
	_, known := m.sets[set.Key]
	m.mu.Unlock()
	if !known {
		if _, err := os.Stat(filepath.Join(dir, "set.json")); err != nil {
			return false
		}
		m.mu.Lock()
		m.sets[set.Key] = struct{}{}
		m.mu.Unlock()
	}
	set.dir = dir
	return true
}

// remember records that spec key resolved to set.
func (m *Manager) remember(key string, set *Set) {
	m.mu.Lock()
	m.specs[key] = set
	m.mu.Unlock()
	_ = writeJSON(filepath.Join(m.o.Dir, "specs", key+".json"), set)
}

// keep moves the packages npm installed in work into the cache as set,
// unless the cache has that set already, after checking what npm left:
// files and directories only, within the byte bound.
func (m *Manager) keep(set *Set, work string) error {
	if err := m.checkTree(filepath.Join(work, "node_modules")); err != nil {
		return err
	}
	if m.installed(set) {
		return nil
	}
	dest := filepath.Join(m.o.Dir, "sets", set.Key)
	tmp, err := os.MkdirTemp(filepath.Join(m.o.Dir, "sets"), ".new-")
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
	if err := writeJSON(filepath.Join(tmp, "set.json"), set); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil && !m.installed(set) {
		return err
	}
	set.dir = dest
	m.mu.Lock()
	m.sets[set.Key] = struct{}{}
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

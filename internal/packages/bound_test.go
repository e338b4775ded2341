package packages_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// diskUsage is what the sets in dir take on disk, walked here apart from
// the manager's own count: the blocks the file system allocated.
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if path == dir {
			return err
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += int64(info.Sys().(*syscall.Stat_t).Blocks) * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// entries lists dir's entries' names (none: nil).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list {
		names = append(names, d.Name())
	}
	return names
}

// setBytes is what one set of a package of one data file of n bytes
// takes in the cache, measured in a cache of its own.
func setBytes(t *testing.T, reg *packagestest.Registry, name string) int64 {
	t.Helper()
	m := manager(t, reg.URL())
	if _, _, err := m.Resolve(t.Context(), map[string]string{name: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	return m.Stats().Bytes
}

// TestCacheBound: the ways a tenant fills the cache — many small distinct
// sets, a few large ones, the same package at many versions, the same
// set spelled many ways — each leave it within packages.cache_max_bytes,
// counted and on disk, with the sets least recently used evicted and the
// one just resolved kept.
func TestCacheBound(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	small, large := strings.Repeat("s", 20<<10), strings.Repeat("l", 300<<10)
	for i := range 12 {
		reg.Add(t, fmt.Sprintf("small-%d", i), "1.0.0", nil, map[string]string{"index.js": small})
		reg.Add(t, "versions", fmt.Sprintf("1.0.%d", i), nil, map[string]string{"index.js": small})
	}
	for i := range 5 {
		reg.Add(t, fmt.Sprintf("large-%d", i), "1.0.0", nil, map[string]string{"data.bin": large})
	}
	one := setBytes(t, reg, "small-0")
	bound := 3*one + one/2
	cases := []struct {
		name   string
		deps   func(i int) map[string]string
		count  int
		evicts bool // else one set, spelled count ways
	}{
		{"many small distinct sets", func(i int) map[string]string { return map[string]string{fmt.Sprintf("small-%d", i): "1.0.0"} }, 12, true},
		{"combinations of the same packages", func(i int) map[string]string {
			return map[string]string{fmt.Sprintf("small-%d", i): "1.0.0", fmt.Sprintf("small-%d", (i+1)%12): "1.0.0"}
		}, 8, true},
		{"one package at many versions", func(i int) map[string]string { return map[string]string{"versions": fmt.Sprintf("1.0.%d", i)} }, 12, true},
		{"one set by many ranges and tags", func(i int) map[string]string {
			if i == 0 {
				return map[string]string{"versions": "latest"}
			}
			return map[string]string{"versions": fmt.Sprintf("~1.0.%d || 9.9.%d", i%3, i)}
		}, 9, false},
		{"a few large sets", func(i int) map[string]string { return map[string]string{fmt.Sprintf("large-%d", i): "1.0.0"} }, 5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := bound
			if strings.HasPrefix(tc.name, "a few large") {
				b = 2*setBytes(t, reg, "large-0") + one
			}
			m := manager(t, reg.URL(), func(o *packages.Options) { o.CacheMaxBytes = b })
			for i := range tc.count {
				ctx, cancel := context.WithCancel(t.Context())
				set, _, err := m.Resolve(ctx, tc.deps(i))
				if err != nil {
					t.Fatalf("Resolve(%v) = %v", tc.deps(i), err)
				}
				if _, err := m.Bundle(ctx, set, nil); err != nil {
					t.Fatalf("Bundle = %v", err)
				}
				cancel()
				if s := m.Stats(); s.Bytes > b {
					t.Fatalf("after %d sets the cache counts %d bytes, more than its bound %d", i+1, s.Bytes, b)
				}
			}
			s := m.Stats()
			if du := diskUsage(t, filepath.Join(m.Dir(), "sets")); du > b || du > s.Bytes {
				t.Errorf("the sets take %d bytes on disk; counted %d, bound %d", du, s.Bytes, b)
			}
			if tc.evicts && (s.Evictions == 0 || s.Sets == 0) || !tc.evicts && s.Sets != 1 {
				t.Errorf("Stats = %+v, want evictions %v and sets kept", s, tc.evicts)
			}
			if w := entries(t, filepath.Join(m.Dir(), "work")); len(w) != 0 {
				t.Errorf("work/ holds %v after the resolutions ended", w)
			}
			last := tc.deps(tc.count - 1)
			if _, cached, err := m.Resolve(t.Context(), last); err != nil || !cached {
				t.Errorf("the set resolved last = %v, cached %v; want it kept", err, cached)
			}
		})
	}
}

// TestCacheSetTooLarge: a set taking more than the whole cache is refused,
// naming the bound, and evicts nothing.
func TestCacheSetTooLarge(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	reg.Add(t, "kept", "1.0.0", nil, map[string]string{"index.js": ""})
	reg.Add(t, "huge", "1.0.0", nil, map[string]string{"data.bin": strings.Repeat("h", 1<<20)})
	m := manager(t, reg.URL(), func(o *packages.Options) { o.CacheMaxBytes = 512 << 10 })
	if _, _, err := m.Resolve(t.Context(), map[string]string{"kept": "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := m.Resolve(t.Context(), map[string]string{"huge": "1.0.0"})
	var e *packages.Error
	if !errors.As(err, &e) || e.Kind != packages.TooLarge || !strings.Contains(e.Message, "packages.cache_max_bytes, 524288 bytes") {
		t.Fatalf("Resolve(huge) = %v, want too_large naming packages.cache_max_bytes", err)
	}
	if s := m.Stats(); s.Evictions != 0 || s.Sets != 1 {
		t.Errorf("Stats = %+v, want the one set kept, none evicted", s)
	}
	if w := entries(t, filepath.Join(m.Dir(), "work")); len(w) != 0 {
		t.Errorf("work/ holds %v after a refusal", w)
	}
}

// TestCacheRace: resolutions of distinct sets finishing together, each
// pinned by a caller still running, are admitted as they come: those that
// fit are kept, the rest refused as unavailable (the room is in use), and
// the bound holds throughout. Once the callers end, their sets make room.
func TestCacheRace(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	for i := range 6 {
		reg.Add(t, fmt.Sprintf("race-%d", i), "1.0.0", nil, map[string]string{"index.js": strings.Repeat("r", 40<<10)})
	}
	one := setBytes(t, reg, "race-0")
	bound := 2*one + one/2
	m := manager(t, reg.URL(), func(o *packages.Options) { o.CacheMaxBytes = bound; o.Concurrency = 6 })
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var kept, full []string
	for i := range 6 {
		wg.Go(func() {
			name := fmt.Sprintf("race-%d", i)
			_, _, err := m.Resolve(ctx, map[string]string{name: "1.0.0"})
			var e *packages.Error
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				kept = append(kept, name)
			case errors.As(err, &e) && e.Kind == packages.Unavailable && strings.Contains(e.Message, "in use"):
				full = append(full, name)
			default:
				t.Errorf("Resolve = %v, want a set or unavailable", err)
			}
			if s := m.Stats(); s.Bytes > bound {
				t.Errorf("the cache counts %d bytes, past its bound %d", s.Bytes, bound)
			}
		})
	}
	wg.Wait()
	if len(kept) != 2 || len(full) != 4 {
		t.Fatalf("sets kept %v, refused %v; want 2 and 4 (the bound holds two)", kept, full)
	}
	if s := m.Stats(); s.Evictions != 0 {
		t.Errorf("a set in use was evicted: %+v", s)
	}
	cancel() // the callers end: their sets may go (their pins drop soon after)
	var err error
	testwait.Until(30*time.Second, func() bool {
		_, _, err = m.Resolve(t.Context(), map[string]string{full[0]: "1.0.0"})
		return err == nil
	})
	if err != nil {
		t.Fatalf("Resolve(%s) after the callers ended = %v", full[0], err)
	}
	if s := m.Stats(); s.Evictions != 1 || s.Bytes > bound {
		t.Errorf("Stats = %+v, want one eviction within %d", s, bound)
	}
}

// TestCacheRestart: a manager on a cache an earlier one left counts its
// sets, deletes what is not a set (a set half moved in, a resolution
// under way, files of the layout before), reuses the sets, and evicts
// down to a bound lowered meanwhile, least recently used first.
func TestCacheRestart(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	for i := range 3 {
		reg.Add(t, fmt.Sprintf("restart-%d", i), "1.0.0", nil, map[string]string{"index.js": strings.Repeat("x", 30<<10)})
	}
	dir := t.TempDir()
	at := func(bound int64) *packages.Manager {
		return manager(t, reg.URL(), func(o *packages.Options) { o.Dir = dir; o.CacheMaxBytes = bound })
	}
	m := at(1 << 30)
	for i := range 3 {
		if _, _, err := m.Resolve(t.Context(), map[string]string{fmt.Sprintf("restart-%d", i): "1.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	before := m.Stats()
	for _, junk := range []string{"work/resolve-1/node_modules/x", "sets/.new-1/node_modules", "sets/not-a-key/node_modules", "specs/x", "bundles/y"} {
		if err := os.MkdirAll(filepath.Join(dir, junk), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	again := at(1 << 30)
	if s := again.Stats(); s.Bytes != before.Bytes || s.Sets != 3 {
		t.Errorf("after a restart Stats = %+v, want %+v", s, before)
	}
	for _, gone := range []string{"work/resolve-1", "sets/.new-1", "sets/not-a-key", "specs", "bundles"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there after a restart (%v)", gone, err)
		}
	}
	if _, cached, err := again.Resolve(t.Context(), map[string]string{"restart-0": "1.0.0"}); err != nil || !cached {
		t.Errorf("a set of the earlier run = %v, cached %v; want it from the cache", err, cached)
	}
	// restart-0 was used last (its set.json's time says so after a
	// restart too), restart-1 least recently. A bound of one set and a
	// half keeps the most recent only.
	lowered := at(before.Bytes / 2)
	if s := lowered.Stats(); s.Sets != 1 || s.Evictions != 2 || s.Bytes > before.Bytes/2 {
		t.Errorf("under a lowered bound Stats = %+v, want one set, two evicted", s)
	}
	if _, cached, err := lowered.Resolve(t.Context(), map[string]string{"restart-0": "1.0.0"}); err != nil || !cached {
		t.Errorf("the set used last = %v, cached %v; want it kept", err, cached)
	}
}

// BenchmarkCacheLoad: what a gateway's start spends walking a cache of
// sets (the fixtures' packages, copied under 20 keys) to count it.
func BenchmarkCacheLoad(b *testing.B) {
	reg := packagestest.Upstream(b)
	dir := b.TempDir()
	m, err := packages.New(packages.Options{Registry: reg.URL(), Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	set, _, err := m.Resolve(b.Context(), map[string]string{"hono": "4.6.3", "zod": "3.23.8", "date-fns": "4.1.0", "nanoid": "5.0.9"})
	if err != nil {
		b.Fatal(err)
	}
	src := os.DirFS(filepath.Join(dir, "sets", set.Key))
	for i := range 20 {
		if err := os.CopyFS(filepath.Join(dir, "sets", fmt.Sprintf("%064x", i)), src); err != nil {
			b.Fatal(err)
		}
	}
	files := 0
	_ = filepath.WalkDir(filepath.Join(dir, "sets"), func(string, fs.DirEntry, error) error { files++; return nil })
	b.ResetTimer()
	for b.Loop() {
		m, err := packages.New(packages.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(m.Stats().Bytes)/(1<<20), "MiB")
	}
	b.ReportMetric(float64(files), "files")
}

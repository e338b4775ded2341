package packages_test

import (
	"archive/tar"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// TestHostileTarballs: a tarball with an entry outside its package, in any
// spelling, or a link or device of any kind is refused, naming the
// package, and nothing of it is unpacked anywhere.
func TestHostileTarballs(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	escape := filepath.Join(outside, "escaped.txt")
	pj := packagestest.Entry{Name: "package/package.json", Body: `{"name":"x","version":"1.0.0"}`}
	for name, bad := range map[string]packagestest.Entry{
		"dotdot":          {Name: "package/../../../../../../../../.." + escape, Body: "x"},
		"dotdot-first":    {Name: "../escaped.txt", Body: "x"},
		"dotdot-deep":     {Name: "package/a/b/../../../../escaped.txt", Body: "x"},
		"dotdot-backs":    {Name: `package\..\..\escaped.txt`, Body: "x"},
		"absolute":        {Name: escape, Body: "x"},
		"drive":           {Name: `C:\escaped.txt`, Body: "x"},
		"symlink":         {Name: "package/link", Type: tar.TypeSymlink, Link: escape},
		"symlink-dotdot":  {Name: "package/link", Type: tar.TypeSymlink, Link: "../../../../../etc/passwd"},
		"hardlink":        {Name: "package/hard", Type: tar.TypeLink, Link: "/etc/passwd"},
		"char-device":     {Name: "package/dev", Type: tar.TypeChar},
		"fifo":            {Name: "package/fifo", Type: tar.TypeFifo},
		"pax-long-escape": {Name: "package/" + strings.Repeat("a/", 50) + strings.Repeat("../", 60) + "escaped.txt", Body: "x", PAX: map[string]string{"comment": "a long name goes in a PAX record"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := packagestest.New(t)
			reg.AddTarball("hostile", "1.0.0", map[string]any{}, packagestest.Tarball(t, pj, bad))
			m := manager(t, reg.URL())
			_, _, err := m.Resolve(t.Context(), map[string]string{"hostile": "1.0.0"})
			wantKind(t, err, packages.Denied, "hostile@1.0.0")
			if _, err := os.Stat(escape); err == nil {
				t.Errorf("a file was written outside the package")
			}
		})
	}
}

// TestCompressionBomb: a tarball that unpacks far past the byte bound
// stops at the bound, and is refused as too large, naming the package; the
// files of a set are counted together.
func TestCompressionBomb(t *testing.T) {
	t.Parallel()
	zeros := strings.Repeat("\x00", 64<<20) // 64 MiB of zeros: 64 KiB gzipped
	reg := packagestest.New(t)
	reg.AddTarball("bomb", "1.0.0", map[string]any{}, packagestest.Tarball(t,
		packagestest.Entry{Name: "package/package.json", Body: `{"name":"bomb","version":"1.0.0"}`},
		packagestest.Entry{Name: "package/zeros.bin", Body: zeros}))
	half := strings.Repeat("\x00", 600<<10)
	for _, name := range []string{"half-a", "half-b"} {
		reg.Add(t, name, "1.0.0", nil, map[string]string{"data.bin": half})
	}
	m := manager(t, reg.URL(), func(o *packages.Options) { o.MaxBytes = 1 << 20 })
	start := time.Now()
	_, _, err := m.Resolve(t.Context(), map[string]string{"bomb": "1.0.0"})
	wantKind(t, err, packages.TooLarge, "bomb@1.0.0")
	t.Logf("refused in %v", time.Since(start))
	_, _, err = m.Resolve(t.Context(), map[string]string{"half-a": "1.0.0", "half-b": "1.0.0"})
	wantKind(t, err, packages.TooLarge, "half-")
}

// TestTooManyPackages: a set of 10,000 packages (one package depending on
// them all) is refused once it passes the bound, naming the package that
// passed it, without fetching the rest; a request naming 10,000
// dependencies is refused before anything is fetched.
func TestTooManyPackages(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	deps := map[string]string{}
	leaf := packagestest.Tarball(t, packagestest.Entry{Name: "package/index.js", Body: "module.exports = 1"})
	for i := range 10000 {
		name := fmt.Sprintf("leaf-%d", i)
		deps[name] = "1.0.0"
		reg.AddTarball(name, "1.0.0", map[string]any{}, leaf)
	}
	reg.Add(t, "wide", "1.0.0", map[string]any{"dependencies": deps}, map[string]string{"index.js": ""})
	m := manager(t, reg.URL(), func(o *packages.Options) { o.MaxPackages = 100 })
	_, _, err := m.Resolve(t.Context(), map[string]string{"wide": "1.0.0"})
	wantKind(t, err, packages.TooLarge, "leaf-")
	if n := reg.Requests.Load(); n > 400 {
		t.Errorf("the registry was asked for %d packages; the bound is 100", n)
	}
	before := reg.Requests.Load()
	_, _, err = m.Resolve(t.Context(), deps)
	wantKind(t, err, packages.TooLarge, "")
	if reg.Requests.Load() != before {
		t.Errorf("a request over the bound asked the registry")
	}
}

// TestSlowRegistry: a registry that never answers, stalls mid-answer, or
// trickles its answer ends the resolution at its timeout as Unavailable,
// naming the package it waited for; meanwhile a cached set resolves and
// another resolution runs, untouched.
func TestSlowRegistry(t *testing.T) {
	t.Parallel()
	reg := packagestest.New(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the registry closes: it waits for its answers
	reg.Add(t, "cached", "1.0.0", nil, map[string]string{"index.js": ""})
	reg.Add(t, "quick", "1.0.0", nil, map[string]string{"index.js": ""})
	for _, name := range []string{"never", "stall", "trickle"} {
		reg.Add(t, name, "1.0.0", nil, map[string]string{"index.js": ""})
	}
	reg.Intercept = func(w http.ResponseWriter, r *http.Request) bool {
		switch strings.TrimPrefix(r.URL.Path, "/") {
		case "never":
			<-release
			return true
		case "stall": // headers, a little JSON, then nothing
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"stall","versions":{`))
			w.(http.Flusher).Flush()
			<-release
			return true
		case "trickle": // a byte per 100 ms: the hostile peer's pacing is the attack
			w.Header().Set("Content-Type", "application/json")
			for range 1000 {
				if _, err := w.Write([]byte(" ")); err != nil {
					return true
				}
				w.(http.Flusher).Flush()
				select {
				case <-release:
					return true
				case <-time.After(100 * time.Millisecond):
				}
			}
			return true
		}
		return false
	}
	// The stalled resolutions hold their slots until the timeout; what
	// runs beside them must end while they still hang (an order, not a
	// time: a loaded machine slows npm, never the order).
	m := manager(t, reg.URL(), func(o *packages.Options) { o.ResolveTimeout = 20 * time.Second; o.Concurrency = 4 })
	if _, _, err := m.Resolve(t.Context(), map[string]string{"cached": "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ended atomic.Int32
	for _, name := range []string{"never", "stall", "trickle"} {
		wg.Go(func() {
			_, _, err := m.Resolve(t.Context(), map[string]string{name: "1.0.0"})
			ended.Add(1)
			wantKind(t, err, packages.Unavailable, name)
		})
	}
	if _, cached, err := m.Resolve(t.Context(), map[string]string{"cached": "1.0.0"}); err != nil || !cached {
		t.Errorf("cached set during a stalled resolution = %v, cached %v", err, cached)
	}
	if _, _, err := m.Resolve(t.Context(), map[string]string{"quick": "1.0.0"}); err != nil {
		t.Errorf("another resolution during stalled ones = %v", err)
	}
	if n := ended.Load(); n != 0 {
		t.Errorf("%d stalled resolutions ended before the cached and the quick one: they waited for them", n)
	}
	wg.Wait()
}

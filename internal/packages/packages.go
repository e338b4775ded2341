// Package packages gives executions npm dependencies: it resolves a set of
// them with npm itself, checks every package on its way in, keeps each
// resolved set on disk by its content, and bundles from it, for workerd,
// the modules a guest imports.
//
// A resolution runs npm (--ignore-scripts) against a guard on loopback
// (guard.go) that stands in for the registry: it applies the operator's
// allow and deny lists and the bounds to every package of the set,
// transitive ones too, and unpacks each tarball before npm may (links,
// paths outside the package, compression bombs). The set npm installed is
// named by its packages (name@version and integrity) and kept under the
// cache directory; every later execution with the same dependencies finds
// it there without asking the registry (ranges again after Refresh), and
// concurrent executions needing the same set wait for one resolution. The
// cache is bounded on disk (CacheMaxBytes, bound.go): past it the sets
// least recently used that no caller is using are evicted.
package packages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Kind says why a set of dependencies could not be had.
type Kind string

// Kinds of Error.
const (
	NotFound    Kind = "not_found"   // no such package or version
	Denied      Kind = "denied"      // the policy refuses it, or its tarball is unsafe
	TooLarge    Kind = "too_large"   // over a bound: packages, bytes
	Unavailable Kind = "unavailable" // the registry failed or was too slow; retry
	Invalid     Kind = "invalid"     // it does not install or bundle
)

// Error is why dependencies could not be had, naming the package at fault.
type Error struct {
	Kind    Kind
	Package string // name or name@version; empty if no one package is at fault
	Message string
}

func (e *Error) Error() string {
	if e.Package == "" {
		return e.Message
	}
	return e.Package + ": " + e.Message
}

// Options configure a Manager.
type Options struct {
	// NPM is the npm binary (default "npm", from PATH).
	NPM string
	// Registry is the registry's base URL; empty: npm's own default.
	Registry string
	// Token, if set, is sent to the registry as a bearer token.
	Token string
	// Dir keeps the resolved sets and bundles.
	Dir string
	Policy
	// MaxPackages bounds the packages of a set (default 500); MaxBytes
	// what they unpack to, headers included (default 100 MiB).
	MaxPackages int
	MaxBytes    int64
	// CacheMaxBytes bounds what the cache takes on disk, every set with
	// its resolutions and bundles (default 2 GiB): past it the sets least
	// recently used and not in use are evicted.
	CacheMaxBytes int64
	// ResolveTimeout bounds one resolution (default 60s).
	ResolveTimeout time.Duration
	// Refresh is how long a resolution of ranges and dist-tags is reused
	// (default 10m); a set of exact versions is reused for as long as it
	// is kept.
	Refresh time.Duration
	// Offline resolves nothing: only sets in the cache are used.
	Offline bool
	// Concurrency bounds the resolutions running at once (default 2).
	Concurrency int
	// Client reaches the registry (default: one with no timeout but
	// ResolveTimeout's).
	Client *http.Client
}

// Package is one package of a set, by where npm put it.
type Package struct {
	Path      string `json:"path"` // node_modules/a/node_modules/b
	Name      string `json:"name"`
	Version   string `json:"version"`
	Integrity string `json:"integrity"`
}

// Set is a resolved set of dependencies, installed in the cache.
type Set struct {
	// Key names the set: a hash of its packages (name@version, integrity).
	Key string `json:"key"`
	// Versions is the version of each package asked for.
	Versions map[string]string `json:"versions"`
	Packages []Package         `json:"packages"`
	// Resolved is when the registry was asked.
	Resolved time.Time `json:"resolved"`
	dir      string
}

// Manager resolves, keeps and bundles sets of dependencies. It is safe for
// concurrent use.
type Manager struct {
	o       Options
	slots   chan struct{}
	flights singleflight.Group
	mu      sync.Mutex
	bundles map[string]*Bundle // by set and entries, in memory
	order   []string           // bundles, oldest first
	// The cache on disk (bound.go): its sets by key, the set of each spec
	// key, the bytes they take and how many sets were evicted.
	entries   map[string]*entry
	specOf    map[string]string
	total     int64
	evictions int64

	registryOnce sync.Once
	registry     string // Options.Registry, or npm's default
	registryErr  error
}

// upstream is the registry's URL: the configured one, or the one npm uses
// with no configuration, asked of npm once.
func (m *Manager) upstream(ctx context.Context) (string, error) {
	m.registryOnce.Do(func() {
		m.registry = m.o.Registry
		if m.registry == "" {
			m.registry, m.registryErr = npmDefaultRegistry(ctx, m.o.NPM, filepath.Join(m.o.Dir, "work"))
		}
	})
	return m.registry, m.registryErr
}

// NPMPresent says whether the npm that resolves dependencies is installed:
// without it every resolution fails as Unavailable, saying so, rather than
// with npm's absence dressed as the request's fault.
func (m *Manager) NPMPresent() error {
	if _, err := exec.LookPath(m.o.NPM); err != nil {
		return fmt.Errorf("the gateway cannot resolve dependencies: its npm (packages.npm %q) is not installed", m.o.NPM)
	}
	return nil
}

// New returns a manager keeping its sets under o.Dir.
func New(o Options) (*Manager, error) {
	if o.NPM == "" {
		o.NPM = "npm"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	// The zero values would refuse everything: the defaults are the
	// packages.* settings' own.
	if o.MaxPackages <= 0 {
		o.MaxPackages = 500
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 100 << 20
	}
	if o.CacheMaxBytes <= 0 {
		o.CacheMaxBytes = 2 << 30
	}
	if o.ResolveTimeout <= 0 {
		o.ResolveTimeout = time.Minute
	}
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	for _, sub := range []string{"sets", "work"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	// What a previous process left half done.
	_ = os.RemoveAll(filepath.Join(o.Dir, "work"))
	_ = os.MkdirAll(filepath.Join(o.Dir, "work"), 0o700)
	m := &Manager{o: o, slots: make(chan struct{}, o.Concurrency), bundles: map[string]*Bundle{},
		entries: map[string]*entry{}, specOf: map[string]string{}}
	if err := m.load(); err != nil {
		return nil, fmt.Errorf("reading the dependency cache: %w", err)
	}
	return m, nil
}

// Check says what is wrong with deps before anything is resolved: a name
// or spec that is not one, a name the policy refuses, more packages than
// the bound. Its errors are each an *Error.
func (m *Manager) Check(deps map[string]string) []*Error {
	var errs []*Error
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		if err := CheckName(name); err != nil {
			errs = append(errs, &Error{Kind: Invalid, Package: name, Message: err.Error()})
			continue
		}
		if err := CheckSpec(name, deps[name]); err != nil {
			errs = append(errs, &Error{Kind: Invalid, Package: name, Message: err.Error()})
			continue
		}
		if err := m.o.Policy.Check(name); err != nil {
			errs = append(errs, &Error{Kind: Denied, Package: name, Message: err.Error()})
		}
	}
	if len(deps) > m.o.MaxPackages {
		errs = append(errs, &Error{Kind: TooLarge, Message: fmt.Sprintf("%d dependencies is more than packages.max_packages, %d", len(deps), m.o.MaxPackages)})
	}
	return errs
}

// Resolve returns the set deps (name → range, version or dist-tag)
// resolve to, and whether it came from the cache. Concurrent calls for
// the same deps share one resolution. The set stays in the cache (no
// eviction takes it) until ctx ends. Its error is an *Error, or ctx's.
func (m *Manager) Resolve(ctx context.Context, deps map[string]string) (*Set, bool, error) {
	if errs := m.Check(deps); len(errs) > 0 {
		return nil, false, errs[0]
	}
	key := m.specKey(deps)
	for attempt := 0; ; attempt++ {
		set, release, cached, err := m.resolveOnce(ctx, key, deps)
		if err != nil {
			return nil, false, err
		}
		kept := cached || m.pin(set.Key)
		if release != nil {
			release() // the resolution's pin, now that this caller has its own
		}
		if !kept {
			// Evicted between its resolution and now, by sets
			// admitted since: resolved again, or refused.
			if attempt < 2 {
				continue
			}
			return nil, false, &Error{Kind: Unavailable, Message: fmt.Sprintf("the dependency cache (packages.cache_max_bytes, %d bytes) is too busy to keep the set", m.o.CacheMaxBytes)}
		}
		context.AfterFunc(ctx, func() { m.unpin(set.Key) })
		if err := m.allowed(set); err != nil {
			return nil, false, err
		}
		return set, cached, nil
	}
}

// resolved is a set a resolution kept, pinned until release.
type resolved struct {
	set     *Set
	release func()
}

// resolveOnce is the set of deps: from the cache, pinned for the caller,
// or resolved, pinned until release (which its callers call once each has
// its own pin, or a minute passes: a caller may have left).
func (m *Manager) resolveOnce(ctx context.Context, key string, deps map[string]string) (*Set, func(), bool, error) {
	if set := m.cached(key, deps); set != nil {
		return set, nil, true, nil
	}
	if m.o.Offline {
		return nil, nil, false, &Error{Kind: Unavailable, Message: "this gateway resolves no new dependencies (packages.offline), and these are not in its cache"}
	}
	ch := m.flights.DoChan(key, func() (any, error) {
		// Not the caller's context: another caller may be waiting for it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.ResolveTimeout)
		defer cancel()
		set, err := m.resolve(ctx, key, deps)
		if err != nil {
			return nil, err
		}
		release := sync.OnceFunc(func() { m.unpin(set.Key) })
		time.AfterFunc(time.Minute, release)
		return &resolved{set: set, release: release}, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, nil, false, r.Err
		}
		res := r.Val.(*resolved)
		return res.set, res.release, false, nil
	case <-ctx.Done():
		return nil, nil, false, ctx.Err()
	}
}

// allowed checks every package of a set against the policy now: the
// lists may have changed since it was resolved.
func (m *Manager) allowed(set *Set) error {
	for _, p := range set.Packages {
		if err := m.o.Policy.Check(p.Name); err != nil {
			return &Error{Kind: Denied, Package: p.Name + "@" + p.Version, Message: err.Error()}
		}
	}
	return nil
}

// specKey names what was asked: the registry and each name@spec.
func (m *Manager) specKey(deps map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", m.o.Registry)
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		fmt.Fprintf(h, "%s@%s\n", name, strings.TrimSpace(deps[name]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// setKey names a set by its packages.
func setKey(pkgs []Package) string {
	lines := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		lines = append(lines, p.Path+" "+p.Name+"@"+p.Version+" "+p.Integrity)
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}

// resolve runs one resolution: npm through a guard, in a work directory,
// then the set moved into the cache.
func (m *Manager) resolve(ctx context.Context, key string, deps map[string]string) (*Set, error) {
	select {
	case m.slots <- struct{}{}:
		defer func() { <-m.slots }()
	case <-ctx.Done():
		return nil, &Error{Kind: Unavailable, Message: fmt.Sprintf("other resolutions kept this one waiting past %v", m.o.ResolveTimeout)}
	}
	work, err := os.MkdirTemp(filepath.Join(m.o.Dir, "work"), "resolve-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := writePackageJSON(work, deps); err != nil {
		return nil, err
	}
	if err := m.NPMPresent(); err != nil {
		return nil, &Error{Kind: Unavailable, Message: err.Error()}
	}
	opts := m.o
	if opts.Registry, err = m.upstream(ctx); err != nil {
		return nil, &Error{Kind: Unavailable, Message: "npm does not say which registry it uses: " + err.Error()}
	}
	g, err := startGuard(ctx, &opts, work)
	if err != nil {
		return nil, err
	}
	defer g.close()
	npmCtx, stop := context.WithCancel(ctx)
	defer stop()
	g.mu.Lock()
	g.stop = stop
	g.mu.Unlock()
	started := time.Now()
	npmErr := runNPM(npmCtx, m.o.NPM, g.url(), work)
	if ctx.Err() != nil {
		g.close() // its answers under way record what they waited for
	}
	if err := g.failed(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		msg := fmt.Sprintf("the registry did not answer within packages.resolve_timeout, %v", m.o.ResolveTimeout)
		if w := g.waiting(); len(w) > 0 {
			return nil, &Error{Kind: Unavailable, Package: strings.Join(w, ", "), Message: msg}
		}
		return nil, &Error{Kind: Unavailable, Message: msg}
	}
	if npmErr != nil {
		return nil, npmError(npmErr)
	}
	pkgs, err := readLock(work)
	if err != nil {
		return nil, err
	}
	set := &Set{Key: setKey(pkgs), Versions: map[string]string{}, Packages: pkgs, Resolved: started}
	for name := range deps {
		for _, p := range pkgs {
			if p.Path == "node_modules/"+name {
				set.Versions[name] = p.Version
			}
		}
	}
	if err := m.keep(set, work); err != nil {
		return nil, err
	}
	m.remember(key, set)
	return set, nil
}

// notarget is npm's message for a version no release matches.
var notarget = regexp.MustCompile(`No matching version found for (\S+?)\.?(\s|$)`)

// npmError is npm's failure as an *Error: a version that does not exist is
// NotFound, naming it; anything else (a peer conflict, say) Invalid.
func npmError(err error) *Error {
	if m := notarget.FindStringSubmatch(err.Error()); m != nil {
		return &Error{Kind: NotFound, Package: m[1], Message: "the registry has no version that matches"}
	}
	return &Error{Kind: Invalid, Message: "the dependencies could not be installed: " + err.Error()}
}

// writePackageJSON writes the package.json npm installs from: nothing but
// the dependencies (never a guest's scripts).
func writePackageJSON(dir string, deps map[string]string) error {
	doc := map[string]any{"name": "dw-dependencies", "version": "0.0.0", "private": true, "dependencies": deps}
	return writeJSON(filepath.Join(dir, "package.json"), doc)
}

// ErrDisabled is a request for dependencies at a gateway that has none.
var ErrDisabled = errors.New("this gateway does not install dependencies (packages.enabled is false)")

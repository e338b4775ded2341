package packages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/dynamic-workers/gateway/internal/transpile"
)

// Bundle is what a guest's imports of a set need, as Worker modules: each
// entry (a bare specifier the guest imports) named as imported, the chunks
// they share and their wasm files (see transpile.Packages).
type Bundle struct {
	// Key names the bundle: its set and entries.
	Key      string            `json:"key"`
	Modules  map[string]string `json:"modules"`
	Wasm     map[string][]byte `json:"wasm"`
	Entries  []string          `json:"entries"`
	Defaults []string          `json:"defaults"`
	Bytes    int64             `json:"bytes"`
}

// bundleFormat changes when what a bundle holds changes, so that bundles
// made before are not reused.
const bundleFormat = "1"

// maxBundles is how many bundles are kept in memory (on disk, each is kept
// with its set, within the cache's bound).
const maxBundles = 128

// Bundle returns the modules of set that entries (from Entries) need,
// bundled once per set and entries and kept. A package that does not
// bundle is an *Error of kind Invalid, naming the package and its file.
func (m *Manager) Bundle(ctx context.Context, set *Set, entries []string) (*Bundle, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s", bundleFormat, set.Key, strings.Join(entries, "\n"))
	key := hex.EncodeToString(h.Sum(nil))
	m.mu.Lock()
	b := m.bundles[key]
	m.mu.Unlock()
	if b != nil {
		return b, nil
	}
	v, err, _ := m.flights.Do("bundle:"+key, func() (any, error) {
		if !m.pin(set.Key) {
			return nil, &Error{Kind: Unavailable, Message: "the set's packages are no longer in the cache"}
		}
		defer m.unpin(set.Key)
		var kept Bundle
		file := filepath.Join(m.o.Dir, "sets", set.Key, "bundles", key+".json")
		if readJSON(file, &kept) == nil {
			return &kept, nil
		}
		set.dir = filepath.Join(m.o.Dir, "sets", set.Key)
		p, err := transpile.BundlePackages(ctx, set.dir, entries)
		var te *transpile.Error
		switch {
		case errors.As(err, &te):
			return nil, &Error{Kind: Invalid, Package: packageOf(te.File), Message: "does not bundle: " + te.Error()}
		case errors.Is(err, transpile.ErrBusy):
			return nil, &Error{Kind: Unavailable, Message: "every compiler process is busy"}
		case err != nil:
			return nil, err
		}
		b := &Bundle{Key: key, Modules: p.Modules, Wasm: p.Wasm, Defaults: p.Defaults}
		for _, e := range entries {
			if !slices.Contains(p.Dropped, e) {
				b.Entries = append(b.Entries, e)
			}
		}
		for _, code := range b.Modules {
			b.Bytes += int64(len(code))
		}
		for _, w := range b.Wasm {
			b.Bytes += int64(len(w))
		}
		m.keepBundle(set.Key, file, b)
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	b = v.(*Bundle)
	m.mu.Lock()
	if _, ok := m.bundles[key]; !ok {
		m.bundles[key] = b
		m.order = append(m.order, key)
		if len(m.order) > maxBundles {
			delete(m.bundles, m.order[0])
			m.order = m.order[1:]
		}
	}
	m.mu.Unlock()
	return b, nil
}

// keepBundle writes b to file beside its set's packages, if the cache has
// room for it.
func (m *Manager) keepBundle(set, file string, b *Bundle) {
	data, err := json.Marshal(b)
	if err != nil {
		return
	}
	m.writeCounted(set, file, data)
}

// packageOf names the package a bundled file belongs to.
func packageOf(file string) string {
	i := strings.LastIndex(file, "node_modules/")
	if i < 0 {
		return ""
	}
	parts := strings.SplitN(file[i+len("node_modules/"):], "/", 3)
	if strings.HasPrefix(parts[0], "@") && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

// specifierPattern finds string literals that may be import specifiers:
// every static import's specifier is one (a few others may match too; an
// entry that names nothing in the packages is dropped when bundling).
var specifierPattern = regexp.MustCompile("[\"'`]((?:@[a-z0-9~-][a-z0-9._~-]*/)?[a-zA-Z0-9~-][a-zA-Z0-9._~-]*(?:/[A-Za-z0-9._~@+-]+)*)[\"'`]")

// Entries lists the bare specifiers in sources that name one of the
// packages names or a subpath of one, sorted: what a bundle for them
// must hold.
func Entries(sources map[string]string, names map[string]string) []string {
	seen := map[string]bool{}
	for _, src := range sources {
		for _, m := range specifierPattern.FindAllStringSubmatch(src, -1) {
			spec := m[1]
			name := spec
			if parts := strings.SplitN(spec, "/", 3); strings.HasPrefix(spec, "@") && len(parts) >= 2 {
				name = parts[0] + "/" + parts[1]
			} else {
				name = parts[0]
			}
			if _, ok := names[name]; !ok {
				continue
			}
			if sub := strings.TrimPrefix(strings.TrimPrefix(spec, name), "/"); sub != "" && !validSubpath(sub) {
				continue
			}
			seen[spec] = true
		}
	}
	out := make([]string, 0, len(seen))
	for spec := range seen {
		out = append(out, spec)
	}
	sort.Strings(out)
	return out
}

// validSubpath reports whether sub may follow a package's name: no part
// is "." or "..".
func validSubpath(sub string) bool {
	if !subpathPattern.MatchString(sub) {
		return false
	}
	for part := range strings.SplitSeq(sub, "/") {
		if part == "." || part == ".." {
			return false
		}
	}
	return true
}

// Attach adds b's modules to pkgs and wasm, and for every directory of the
// guest's modules but the root, a module per entry that re-exports it
// there: workerd resolves a bare import relative to the importing module's
// directory, so "lib/a.js" importing "hono" loads "lib/hono". A guest
// module with the name of one of b's is a conflict.
func (b *Bundle) Attach(modules, pkgs map[string]string, wasm map[string][]byte) error {
	dirs := map[string]bool{}
	for name := range modules {
		if d := path.Dir(name); d != "." {
			dirs[d] = true
		}
	}
	for name := range b.Modules {
		if _, clash := modules[name]; clash {
			return fmt.Errorf("module %q has the name of a dependency's module", name)
		}
	}
	for name, code := range b.Modules {
		pkgs[name] = code
	}
	for name, data := range b.Wasm {
		wasm[name] = data
	}
	for d := range dirs {
		for _, e := range b.Entries {
			alias := d + "/" + e
			if _, clash := modules[alias]; clash {
				continue // the guest's own module wins, as it would without dependencies
			}
			rel := transpile.Relative(alias, e)
			code := "export * from " + quote(rel) + ";\n"
			if slices.Contains(b.Defaults, e) {
				code += "export { default } from " + quote(rel) + ";\n"
			}
			pkgs[alias] = code
		}
	}
	return nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

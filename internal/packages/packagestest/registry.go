// Package packagestest is an npm registry for tests: an httptest server
// that serves packuments and tarballs of real packages (packed once by
// `make fixtures` into internal/packages/testdata/tarballs) and of packages
// a test makes, hostile ones included.
package packagestest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Registry is a test npm registry. Add packages before npm asks for them.
type Registry struct {
	*httptest.Server
	mu       sync.Mutex
	versions map[string]map[string]version // name → version → its document
	tarballs map[string][]byte             // path → tarball
	// Hold, if set, is called before each answer with the request's path:
	// a test delays or stalls the registry there.
	Hold func(r *http.Request)
	// Intercept, if set, may answer a request itself (a hostile
	// registry's way): it reports whether it did.
	Intercept func(w http.ResponseWriter, r *http.Request) bool
	// Requests counts the packument requests served.
	Requests atomic.Int64
	// Auth, if set, is the Authorization header every request must carry.
	Auth string
}

type version struct {
	doc map[string]any
}

// New starts a registry, closed when the test ends.
func New(tb testing.TB) *Registry {
	r := &Registry{versions: map[string]map[string]version{}, tarballs: map[string][]byte{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	tb.Cleanup(r.Close)
	return r
}

// URL is the registry's base URL, as packages.registry takes it.
func (r *Registry) URL() string { return r.Server.URL + "/" }

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	if r.Hold != nil {
		r.Hold(req)
	}
	if r.Intercept != nil && r.Intercept(w, req) {
		return
	}
	if r.Auth != "" && req.Header.Get("Authorization") != r.Auth {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tb, ok := r.tarballs[req.URL.Path]; ok {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(tb)
		return
	}
	name, err := url.PathUnescape(strings.TrimPrefix(req.URL.EscapedPath(), "/"))
	if err != nil {
		http.NotFound(w, req)
		return
	}
	versions, ok := r.versions[name]
	if !ok {
		http.NotFound(w, req)
		return
	}
	r.Requests.Add(1)
	doc := map[string]any{"name": name, "versions": map[string]any{}}
	var latest string
	for v, ver := range versions {
		doc["versions"].(map[string]any)[v] = ver.doc
		if latest == "" || newer(v, latest) {
			latest = v
		}
	}
	doc["dist-tags"] = map[string]string{"latest": latest}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// newer compares two simple versions (x.y.z), enough for a test's latest.
func newer(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if len(pa[i]) != len(pb[i]) {
			return len(pa[i]) > len(pb[i])
		}
		if pa[i] != pb[i] {
			return pa[i] > pb[i]
		}
	}
	return len(pa) > len(pb)
}

// AddTarball serves tarball as name@version, whose package.json fields
// (dependencies, peerDependencies and the like) are given in manifest.
func (r *Registry) AddTarball(name, ver string, manifest map[string]any, tarball []byte) {
	sha := sha512.Sum512(tarball)
	sha1sum := sha1.Sum(tarball)
	file := strings.ReplaceAll(name, "/", "-") + "-" + ver + ".tgz"
	tbPath := "/" + name + "/-/" + strings.TrimPrefix(file, "@")
	doc := map[string]any{}
	for k, v := range manifest {
		doc[k] = v
	}
	doc["name"], doc["version"] = name, ver
	doc["dist"] = map[string]any{
		"tarball":   r.Server.URL + tbPath,
		"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha[:]),
		"shasum":    hex.EncodeToString(sha1sum[:]),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.versions[name] == nil {
		r.versions[name] = map[string]version{}
	}
	r.versions[name][ver] = version{doc: doc}
	r.tarballs[tbPath] = tarball
}

// Add serves a package made of files (paths under the package; its
// package.json is written from manifest, with name and version).
func (r *Registry) Add(tb testing.TB, name, ver string, manifest map[string]any, files map[string]string) {
	tb.Helper()
	pj := map[string]any{}
	for k, v := range manifest {
		pj[k] = v
	}
	pj["name"], pj["version"] = name, ver
	data, err := json.Marshal(pj)
	if err != nil {
		tb.Fatal(err)
	}
	entries := []Entry{{Name: "package/package.json", Body: string(data)}}
	for _, p := range slices.Sorted(mapsKeys(files)) {
		entries = append(entries, Entry{Name: "package/" + p, Body: files[p]})
	}
	r.AddTarball(name, ver, manifest, Tarball(tb, entries...))
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Entry is one entry of a tarball a test makes: a file unless Type says
// otherwise (tar.TypeSymlink with Link, say); PAX records go in PAX.
type Entry struct {
	Name string
	Body string
	Type byte
	Link string
	PAX  map[string]string
	// Size, if set, is the size the header claims instead of len(Body).
	Size int64
}

// Tarball makes a gzipped tarball of entries, as written.
func Tarball(tb testing.TB, entries ...Entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: 0o644, Size: int64(len(e.Body)), Typeflag: e.Type, Linkname: e.Link, PAXRecords: e.PAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if len(e.PAX) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, e.Body); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// Fixtures serves every real package packed in the fixture directory
// (FixtureDir), failing the test if one of fixtures.txt is missing.
func (r *Registry) Fixtures(tb testing.TB) {
	tb.Helper()
	dir := FixtureDir(tb)
	list, err := os.ReadFile(filepath.Join(dir, "fixtures.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(list), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := strings.LastIndex(line, "@")
		name, ver := line[:at], line[at+1:]
		file := filepath.Join(dir, "tarballs", strings.ReplaceAll(strings.TrimPrefix(name, "@"), "/", "-")+"-"+ver+".tgz")
		data, err := os.ReadFile(file)
		if err != nil {
			tb.Fatalf("fixture %s is not packed (run `make fixtures`, which `make test` runs): %v", line, err)
		}
		manifest, err := manifestOf(data)
		if err != nil {
			tb.Fatalf("fixture %s: %v", line, err)
		}
		r.AddTarball(name, ver, manifest, data)
	}
}

// manifestOf reads the package.json of a tarball.
func manifestOf(tarball []byte) (map[string]any, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, err
		}
		if h.Name == "package/package.json" {
			var m map[string]any
			err := json.NewDecoder(tr).Decode(&m)
			return m, err
		}
	}
}

// FixtureDir is internal/packages/testdata, found from the working
// directory up to go.mod.
func FixtureDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "internal", "packages", "testdata")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// UpstreamEnv names the environment variable that points the tests of
// real packages at a real registry instead of the fixtures (its base URL;
// `npm config get registry` prints npm's own).
const UpstreamEnv = "PACKAGES_TEST_REGISTRY"

// Upstream is where the tests of real packages resolve them: the real
// registry UpstreamEnv names, or else a Registry serving the fixtures.
// Its Requests count only with the fixtures.
func Upstream(tb testing.TB) *Registry {
	tb.Helper()
	if u := os.Getenv(UpstreamEnv); u != "" {
		r := New(tb)
		r.Server.URL = strings.TrimSuffix(u, "/")
		return r
	}
	r := New(tb)
	r.Fixtures(tb)
	return r
}

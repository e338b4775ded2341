package packages

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxPackumentBytes bounds one package's metadata from the registry (the
// abbreviated document npm asks for; the largest real ones are a few MiB).
const maxPackumentBytes = 32 << 20

// guard is the registry as npm sees it during one resolution: a server on
// loopback between npm and the real registry, which enforces what npm
// cannot be told. Every package's metadata and tarball passes through it:
// it refuses names the policy denies and a set growing past maxPackages,
// sends the registry token (npm never holds it), and unpacks each tarball
// itself before npm may have it (see inspect), counting the set's bytes.
// Its first refusal is the resolution's error, naming the package.
type guard struct {
	upstream    *url.URL
	token       string
	client      *http.Client
	policy      Policy
	maxPackages int
	maxBytes    int64
	spool       string // directory for tarballs being checked
	prefix      string // "/<random>/": only the npm given the URL may use it
	timeout     time.Duration
	ctx         context.Context

	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	names    map[string]bool
	unpacked int64
	tarballs map[string]tarball // by the path npm asks for
	inflight map[string]int     // packages with a request to the registry open
	failure  *Error
	// stop is called with the first refusal: npm goes on asking for the
	// rest of the set after one package is refused, so it is stopped.
	stop func()
}

// tarball is one version's tarball on the registry.
type tarball struct {
	pkg string // name@version
	url string
}

// startGuard starts a guard; close it when the resolution ends.
func startGuard(ctx context.Context, o *Options, spool string) (*guard, error) {
	up, err := url.Parse(o.Registry)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(up.Path, "/") {
		up.Path += "/"
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	g := &guard{upstream: up, token: o.Token, client: o.Client, policy: o.Policy, maxPackages: o.MaxPackages,
		maxBytes: o.MaxBytes, spool: spool, timeout: o.ResolveTimeout, prefix: "/" + hex.EncodeToString(b[:]) + "/", ctx: ctx,
		names: map[string]bool{}, tarballs: map[string]tarball{}, inflight: map[string]int{}}
	g.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: o.ResolveTimeout}
	go g.srv.Serve(g.ln)
	return g, nil
}

// url is the registry URL to give npm.
func (g *guard) url() string { return "http://" + g.ln.Addr().String() + g.prefix }

// close stops the guard once its answers under way have ended (their
// registry requests end with the resolution's context).
func (g *guard) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if g.srv.Shutdown(ctx) != nil {
		g.srv.Close()
	}
}

// fail records err as the resolution's error, if it is the first, and
// returns it.
func (g *guard) fail(err *Error) *Error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failure == nil {
		g.failure = err
		if g.stop != nil {
			g.stop()
		}
	}
	return g.failure
}

// failed is the first refusal, or nil.
func (g *guard) failed() *Error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failure
}

// waiting names the packages whose registry requests are open.
func (g *guard) waiting() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var names []string
	for name, n := range g.inflight {
		if n > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), g.prefix)
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	if g.failed() != nil {
		http.Error(w, "the resolution has failed", http.StatusForbidden)
		return
	}
	if key, ok := strings.CutPrefix(rest, "-/tarball/"); ok {
		g.serveTarball(w, r, key)
		return
	}
	name, err := url.PathUnescape(rest)
	if err != nil || CheckName(name) != nil {
		http.NotFound(w, r)
		return
	}
	g.servePackument(w, r, name)
}

// admit counts name into the set and checks the policy.
func (g *guard) admit(name string) *Error {
	if err := g.policy.Check(name); err != nil {
		return g.fail(&Error{Kind: Denied, Package: name, Message: err.Error()})
	}
	g.mu.Lock()
	g.names[name] = true
	n := len(g.names)
	g.mu.Unlock()
	if n > g.maxPackages {
		return g.fail(&Error{Kind: TooLarge, Package: name, Message: fmt.Sprintf("the dependencies need more than packages.max_packages, %d packages", g.maxPackages)})
	}
	return nil
}

// servePackument passes on name's metadata, each version's tarball URL
// pointing back at the guard.
func (g *guard) servePackument(w http.ResponseWriter, r *http.Request, name string) {
	if err := g.admit(name); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	body, err := g.fetch(name, g.upstream.String()+escapeName(name), r.Header.Get("Accept"), maxPackumentBytes)
	if err != nil {
		http.Error(w, err.Error(), errStatus(err))
		return
	}
	body, err = g.rewrite(name, body)
	if err != nil {
		http.Error(w, err.Error(), errStatus(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// rewrite points the tarball of every version in doc at the guard.
func (g *guard) rewrite(name string, doc []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, g.fail(&Error{Kind: Unavailable, Package: name, Message: "the registry's answer is not JSON"})
	}
	var versions map[string]map[string]json.RawMessage
	if err := json.Unmarshal(top["versions"], &versions); err != nil {
		return nil, g.fail(&Error{Kind: NotFound, Package: name, Message: "the registry lists no versions of " + name})
	}
	for version, v := range versions {
		var dist map[string]json.RawMessage
		var src string
		if json.Unmarshal(v["dist"], &dist) != nil || json.Unmarshal(dist["tarball"], &src) != nil {
			delete(versions, version) // a version without a tarball cannot be installed
			continue
		}
		key := hex.EncodeToString([]byte(name + "@" + version))
		g.mu.Lock()
		g.tarballs[key] = tarball{pkg: name + "@" + version, url: src}
		g.mu.Unlock()
		dist["tarball"], _ = json.Marshal(g.url() + "-/tarball/" + key)
		v["dist"], _ = json.Marshal(dist)
	}
	top["versions"], _ = json.Marshal(versions)
	return json.Marshal(top)
}

// serveTarball fetches a tarball, checks it whole (inspect), and only
// then passes it on.
func (g *guard) serveTarball(w http.ResponseWriter, r *http.Request, key string) {
	g.mu.Lock()
	tb, ok := g.tarballs[key]
	left := g.maxBytes - g.unpacked
	g.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	src, err := url.Parse(tb.url)
	if err != nil || src.Scheme != g.upstream.Scheme || src.Host != g.upstream.Host {
		err := g.fail(&Error{Kind: Denied, Package: tb.pkg, Message: "its tarball is not on the registry: " + tb.url})
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	f, err := os.CreateTemp(g.spool, "tarball-*")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := g.fetchTo(f, tb.pkg, tb.url, left); err != nil {
		http.Error(w, err.Error(), errStatus(err))
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n, bad := inspect(f, tb.pkg, left)
	if bad != nil {
		err := g.fail(bad)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	// Tarballs are fetched side by side, each inspected against what was
	// left when it started: the one whose bytes pass the bound once counted
	// with the others is refused, named.
	g.mu.Lock()
	over := g.unpacked+n > g.maxBytes
	if !over {
		g.unpacked += n
	}
	g.mu.Unlock()
	if over {
		err := g.fail(&Error{Kind: TooLarge, Package: tb.pkg, Message: fmt.Sprintf("it unpacks to %d bytes, more than the packages fetched beside it left of packages.max_bytes, %d bytes", n, g.maxBytes)})
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	http.ServeContent(w, r, filepath.Base(tb.url), zeroTime, f)
}

// fetch reads what the registry answers at u for pkg, at most max bytes.
func (g *guard) fetch(pkg, u, accept string, max int64) ([]byte, error) {
	var buf strings.Builder
	if err := g.fetchTo(&buf, pkg, u, max, accept); err != nil {
		return nil, err
	}
	return []byte(buf.String()), nil
}

// fetchTo copies the registry's answer at u for pkg to w, at most max
// bytes. A 404 is NotFound, a refusal or failure of the registry
// Unavailable, more than max TooLarge.
func (g *guard) fetchTo(w io.Writer, pkg, u string, max int64, accept ...string) error {
	req, err := http.NewRequestWithContext(g.ctx, http.MethodGet, u, nil)
	if err != nil {
		return g.fail(&Error{Kind: Unavailable, Package: pkg, Message: err.Error()})
	}
	if len(accept) > 0 && accept[0] != "" {
		req.Header.Set("Accept", accept[0])
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	g.count(pkg, 1)
	defer g.count(pkg, -1)
	resp, err := g.client.Do(req)
	if err != nil && g.ctx.Err() != nil {
		return g.fail(g.timedOut(pkg))
	}
	if err != nil {
		// The error names the registry's URL, which may hold a
		// credential: it stays in the gateway.
		return g.fail(&Error{Kind: Unavailable, Package: pkg, Message: "the registry could not be reached"})
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return g.fail(&Error{Kind: NotFound, Package: pkg, Message: "the registry has no package " + pkg})
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return g.fail(&Error{Kind: Denied, Package: pkg, Message: fmt.Sprintf("the registry refused %s (%d)", pkg, resp.StatusCode)})
	case resp.StatusCode != http.StatusOK:
		return g.fail(&Error{Kind: Unavailable, Package: pkg, Message: fmt.Sprintf("the registry answered %d for %s", resp.StatusCode, pkg)})
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, max+1))
	switch {
	case err != nil && g.ctx.Err() != nil:
		return g.fail(g.timedOut(pkg))
	case n > max:
		return g.fail(&Error{Kind: TooLarge, Package: pkg, Message: fmt.Sprintf("what the registry holds for it is larger than the %d bytes left of the bound", max)})
	case err != nil:
		return g.fail(&Error{Kind: Unavailable, Package: pkg, Message: "reading from the registry failed: " + err.Error()})
	}
	return nil
}

// timeout is the resolution's bound, for its message.
func (g *guard) timedOut(pkg string) *Error {
	return &Error{Kind: Unavailable, Package: pkg, Message: fmt.Sprintf("the registry did not answer within packages.resolve_timeout, %v", g.timeout)}
}

func (g *guard) count(pkg string, d int) {
	g.mu.Lock()
	g.inflight[pkg] += d
	g.mu.Unlock()
}

// escapeName is name as a registry's URL path has it: a scoped name's
// slash escaped ("@scope%2Fname").
func escapeName(name string) string {
	if scope, rest, ok := strings.Cut(name, "/"); ok {
		return scope + "%2F" + url.PathEscape(rest)
	}
	return url.PathEscape(name)
}

// zeroTime tells http.ServeContent there is no modification time.
var zeroTime time.Time

// errStatus is the status npm gets for a refusal: one it does not retry.
func errStatus(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Kind == NotFound {
		return http.StatusNotFound
	}
	return http.StatusForbidden
}

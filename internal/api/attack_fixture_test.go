package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/store"
)

// attackService is the service behind the attack tests' capabilities: it
// records each request's method, URL and headers as they arrived. A call
// of /api/hold/NAME reports NAME on arrived, then waits until the test
// releases NAME.
type attackService struct {
	srv     *httptest.Server
	mu      sync.Mutex
	seen    []*http.Request
	holds   map[string]chan struct{}
	arrived chan string
}

// hold returns the channel whose closing releases NAME's calls.
func (s *attackService) hold(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.holds[name]
	if !ok {
		c = make(chan struct{})
		s.holds[name] = c
	}
	return c
}

// release lets NAME's calls answer.
func (s *attackService) release(name string) {
	c := s.hold(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

// releaseAll lets every call answer, now and later.
func (s *attackService) releaseAll() {
	s.mu.Lock()
	names := slices.Collect(maps.Keys(s.holds))
	s.mu.Unlock()
	for _, n := range names {
		s.release(n)
	}
}

func (s *attackService) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// closedURL is the origin of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// writeReason answers with a reason phrase made from ?as=, where AUTH
// stands for the Authorization header and TOKEN for its token: Go's server
// writes only standard reason phrases, so the status line is written on
// the connection itself.
func writeReason(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	reason := strings.NewReplacer("AUTH", auth, "TOKEN", strings.TrimPrefix(auth, "Bearer ")).Replace(r.URL.Query().Get("as"))
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = buf.WriteString("HTTP/1.1 200 " + reason + "\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	_ = buf.Flush()
}

// writeLong answers with ?bytes= bytes of filler: with a Content-Length
// (?as=length), without one (chunked), or gzip-encoded with the length of
// its few compressed bytes (gzip). It stops when the caller goes away.
func writeLong(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("bytes"))
	filler := bytes.Repeat([]byte("0"), 64<<10)
	write := func(out io.Writer) {
		for left := n; left > 0; left -= len(filler) {
			if _, err := out.Write(filler[:min(left, len(filler))]); err != nil {
				return
			}
		}
	}
	switch r.URL.Query().Get("as") {
	case "length":
		w.Header().Set("Content-Length", strconv.Itoa(n))
		write(w)
	case "gzip":
		var buf bytes.Buffer
		z := gzip.NewWriter(&buf)
		write(z)
		_ = z.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		_, _ = w.Write(buf.Bytes())
	default:
		write(w)
	}
}

// attackWorkers is how many queued executions the fixture runs at once.
const attackWorkers = 2

// attackFixture is a gateway with capabilities and execution records, on
// a workerd pool of its own whose capabilities' network reaches the
// service, with two API keys: alice (every capability) and bob (not
// "scoped").
type attackFixture struct {
	*historyGateway
	service *attackService
	logs    *loadertest.Buffer
}

// startAttackGateway starts the fixture, its options changed by each of
// tweak; it ends with the test.
func startAttackGateway(t *testing.T, tweak ...func(*apitest.Gateway)) *attackFixture {
	t.Helper()
	service := &attackService{holds: map[string]chan struct{}{}, arrived: make(chan string, 100)}
	service.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		service.mu.Lock()
		service.seen = append(service.seen, r.Clone(context.Background()))
		service.mu.Unlock()
		if code, ok := strings.CutPrefix(r.URL.Path, "/api/redirect/"); ok {
			w.Header().Set("Location", r.URL.Query().Get("to"))
			status, _ := strconv.Atoi(code)
			w.WriteHeader(status)
			return
		}
		if r.URL.Path == "/api/ranged" { // the echo, served with Range support
			http.ServeContent(w, r, "echo.txt", time.Time{}, strings.NewReader("auth="+r.Header.Get("Authorization")))
			return
		}
		if r.URL.Path == "/api/encoded" { // the echo, encoded as ?as= says
			as := r.URL.Query().Get("as")
			w.Header().Set("Content-Encoding", as)
			_, _ = w.Write(encodeAs(t, as, []byte("auth="+r.Header.Get("Authorization")+" "+strings.Repeat("filler ", 40))))
			return
		}
		if r.URL.Path == "/api/reason" { // the echo in the status line's reason phrase
			writeReason(w, r)
			return
		}
		if r.URL.Path == "/api/long" { // ?bytes= of filler, ?as= length, chunked or gzip
			writeLong(w, r)
			return
		}
		if name, ok := strings.CutPrefix(r.URL.Path, "/api/hold/"); ok {
			service.arrived <- name
			select {
			case <-service.hold(name):
			case <-r.Context().Done():
			}
		}
		_, _ = w.Write([]byte("auth=" + r.Header.Get("Authorization")))
	}))
	t.Cleanup(service.srv.Close)
	t.Cleanup(service.releaseAll) // before the service closes: it waits for held calls
	base := service.srv.URL + "/api/"
	secrets := []string{capToken, "Bearer " + capToken}
	caps := executions.Capabilities{
		"reader": {URL: base, Headers: map[string]string{"authorization": "Bearer " + capToken},
			Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 20, Secrets: secrets},
		"scoped": {URL: base, Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 5, Keys: []string{"alice"}},
		"few":    {URL: base, Methods: []string{"GET", "POST"}, TimeoutMs: 5000, MaxCalls: 3},
		"down":   {URL: closedURL(t) + "/svc/", Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 5},
	}
	logs := &loadertest.Buffer{}
	log := zerolog.New(logs)
	pool := loadertest.StartLocal(t, log, loadertest.Processes(1), func(c *local.Config) {
		c.CapabilityURLs = []string{base}
	})
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "executions.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the service's own cleanup
	g := &historyGateway{store: st, finished: make(chan *store.Execution, 100)}
	var aliceKey, bobKey auth.Key
	g.alice, aliceKey = apitest.NewKey(t, "alice")
	g.bob, bobKey = apitest.NewKey(t, "bob")
	o := apitest.Options()
	o.Keys = auth.NewKeyring([]auth.Key{aliceKey, bobKey})
	o.Store = st
	o.Records = executions.RecordOptions{Workers: attackWorkers, Finished: func(_ context.Context, e *store.Execution) { g.finished <- e }}
	o.Capabilities = caps
	for _, f := range tweak {
		f(&o)
	}
	h, svc := apitest.Handler(t, log, pool, o)
	g.history = svc
	srv := httptest.NewServer(h)
	g.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.history.Close(ctx)
	})
	return &attackFixture{historyGateway: g, service: service, logs: logs}
}

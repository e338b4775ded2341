package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/store"
)

// attackService is the service behind the attack tests' capabilities: it
// records each request's method, URL and headers as they arrived.
type attackService struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func (s *attackService) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

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
func startAttackGateway(t *testing.T, tweak ...func(*api.Options)) *attackFixture {
	t.Helper()
	service := &attackService{}
	service.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		service.mu.Lock()
		service.seen = append(service.seen, r.Clone(context.Background()))
		service.mu.Unlock()
		_, _ = w.Write([]byte("auth=" + r.Header.Get("Authorization")))
	}))
	t.Cleanup(service.srv.Close)
	base := service.srv.URL + "/api/"
	secrets := []string{capToken, "Bearer " + capToken}
	caps := api.Capabilities{
		"reader": {URL: base, Headers: map[string]string{"authorization": "Bearer " + capToken},
			Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 20, Secrets: secrets},
		"scoped": {URL: base, Methods: []string{"GET"}, TimeoutMs: 5000, MaxCalls: 5, Keys: []string{"alice"}},
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
	g := &historyGateway{store: st, finished: make(chan *store.Execution, 100)}
	g.history = api.NewHistory(st, api.HistoryOptions{Finished: func(_ context.Context, e *store.Execution) { g.finished <- e }})
	var aliceKey, bobKey auth.Key
	g.alice, aliceKey = apitest.NewKey(t, "alice")
	g.bob, bobKey = apitest.NewKey(t, "bob")
	o := apitest.Options()
	o.Keys = auth.NewKeyring([]auth.Key{aliceKey, bobKey})
	o.History = g.history
	o.Capabilities = caps
	for _, f := range tweak {
		f(&o)
	}
	srv := httptest.NewServer(api.NewHandler(log, pool, o))
	g.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.history.Close(ctx)
		st.Close()
	})
	return &attackFixture{historyGateway: g, service: service, logs: logs}
}

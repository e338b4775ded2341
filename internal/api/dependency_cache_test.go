package api_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// TestDependencyCacheBound: through POST /execute, distinct sets one after
// another run, each, while the dependency cache stays within its bound by
// evicting the sets least recently used (an evicted set runs again,
// resolved again); a set larger than the whole cache is 422
// dependency_too_large naming the bound.
func TestDependencyCacheBound(t *testing.T) {
	t.Parallel()
	gatewayURL(t) // the shared runtime
	reg := packagestest.New(t)
	for i := range 6 {
		reg.Add(t, fmt.Sprintf("part-%d", i), "1.0.0", map[string]any{"type": "module", "main": "index.js"},
			map[string]string{"index.js": fmt.Sprintf("export const n = %d; // %s", i, strings.Repeat("p", 40<<10))})
	}
	reg.Add(t, "huge", "1.0.0", nil, map[string]string{"index.js": strings.Repeat("h", 1<<20)})
	const bound = 400 << 10
	m, err := packages.New(packages.Options{Registry: reg.URL(), Dir: t.TempDir(), CacheMaxBytes: bound,
		ResolveTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := apitest.Options()
	g.Limits = testLimits
	g.Packages = m
	h, _ := apitest.Handler(t, zerolog.Nop(), shared.backend, g)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	run := func(name string) (int, string) {
		status, data := postTo(t, srv.URL, "/execute", map[string]any{
			"code":         fmt.Sprintf(`import { n } from %q; export default { fetch() { return new Response("n=" + n); } };`, name),
			"dependencies": map[string]string{name: "1.0.0"},
		})
		return status, string(data)
	}
	for _, i := range []int{0, 1, 2, 3, 4, 5, 0} {
		status, data := run(fmt.Sprintf("part-%d", i))
		if status != 200 || !strings.Contains(data, fmt.Sprintf(`"body":"n=%d"`, i)) {
			t.Fatalf("part-%d: POST /execute = %d %s", i, status, data)
		}
		if s := m.Stats(); s.Bytes > bound {
			t.Fatalf("after part-%d the cache counts %d bytes, past its bound %d", i, s.Bytes, bound)
		}
	}
	if s := m.Stats(); s.Evictions == 0 {
		t.Errorf("Stats = %+v, want sets evicted", s)
	}
	status, data := run("huge")
	if status != 422 || !strings.Contains(data, `"code":"dependency_too_large"`) || !strings.Contains(data, "packages.cache_max_bytes") {
		t.Errorf("a set larger than the cache = %d %s, want 422 dependency_too_large naming packages.cache_max_bytes", status, data)
	}
}

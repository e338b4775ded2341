package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/metrics"
)

// TestWatchDependencyCache: the dependency cache's gauges and evictions
// counter read what the cache says at each scrape.
func TestWatchDependencyCache(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	stats := metrics.DependencyCacheStats{Bytes: 12288, Sets: 2, Evictions: 1}
	m.WatchDependencyCache(func() metrics.DependencyCacheStats { return stats })
	for _, want := range []metrics.DependencyCacheStats{stats, {Bytes: 4096, Sets: 1, Evictions: 3}} {
		stats = want
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for _, line := range []string{
			"gateway_dependency_cache_bytes " + itoa(want.Bytes),
			"gateway_dependency_cache_sets " + itoa(int64(want.Sets)),
			"gateway_dependency_cache_evictions_total " + itoa(want.Evictions),
		} {
			if !strings.Contains(rec.Body.String(), "\n"+line+"\n") {
				t.Errorf("metrics have no line %q", line)
			}
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

package api_test

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
)

// BenchmarkFleetLimitsCost measures what counting a key's quotas in
// PostgreSQL (fleet-wide limits) costs a synchronous POST /execute: the
// same warm execution, one at a time, on two gateways with records on one
// PostgreSQL database, one with the caller unlimited (nothing counted) and
// one with a rate and concurrency quota it never reaches (counted in the
// database: CountStart, HoldSlot, FreeSlot), in alternating blocks of 50;
// it reports both p50s. Run:
// go test -run '^$' -bench FleetLimitsCost -benchtime 2000x ./internal/api
func BenchmarkFleetLimitsCost(b *testing.B) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		b.Fatalf("PostgreSQL for the benchmark: %v", err)
	}
	gatewayURL(b)
	url := pg.NewDatabase(b)
	serve := func(q executions.Quota) string {
		st, err := store.Open(b.Context(), url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		o := apitest.Options()
		o.Store, o.Quota = st, q
		srv := httptest.NewServer(apitest.Serve(b, zerolog.Nop(), shared.backend, o))
		b.Cleanup(srv.Close)
		return srv.URL
	}
	off := serve(executions.Quota{})
	on := serve(executions.Quota{Requests: 1 << 29, Window: time.Minute, Concurrency: 1 << 20})
	var offD, onD []time.Duration
	i := 0
	for b.Loop() {
		if (i/50)%2 == 0 {
			offD = append(offD, postOnce(b, off))
		} else {
			onD = append(onD, postOnce(b, on))
		}
		i++
	}
	p50 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	if len(onD) == 0 {
		b.Fatal("too few iterations: run with -benchtime 2000x")
	}
	b.ReportMetric(p50(offD), "p50-uncounted-ms")
	b.ReportMetric(p50(onD), "p50-counted-ms")
}

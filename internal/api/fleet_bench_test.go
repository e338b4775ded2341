package api_test

import (
	"net/http/httptest"
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
	alternate(b, off, on, "uncounted", "counted")
}

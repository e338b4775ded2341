package store_test

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/store/storetest"
)

// BenchmarkFleetLimits is what counting a key's quotas in PostgreSQL (the
// fleet-wide limits, with storage.url) costs each execution: one
// CountStart (its rate), and one HoldSlot and FreeSlot (its concurrency,
// for a synchronous one). Serial: one gateway's request alone; parallel:
// many requests of one key at once, from as many connections (several
// gateways), contending for its rows and locks.
func BenchmarkFleetLimits(b *testing.B) {
	pg, err := storetest.SharedPostgres()
	if err != nil {
		b.Fatalf("PostgreSQL for the benchmark: %v", err)
	}
	s, err := store.Open(b.Context(), pg.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Lease(b.Context(), "gw1", time.Now().Add(time.Hour), false); err != nil {
		b.Fatal(err)
	}
	const unbounded = 1 << 30
	var n atomic.Int64
	start := func(b *testing.B) {
		if err := s.CountStart(b.Context(), "bench", time.Now(), time.Minute, unbounded); err != nil {
			b.Error(err) // not Fatal: it runs on RunParallel's goroutines too
		}
	}
	slot := func(b *testing.B) {
		id := "ex_" + strconv.FormatInt(n.Add(1), 10)
		if err := s.HoldSlot(b.Context(), "bench", id, "gw1", unbounded); err != nil {
			b.Error(err)
		}
		if err := s.FreeSlot(b.Context(), id); err != nil {
			b.Error(err)
		}
	}
	for _, c := range []struct {
		name string
		op   func(*testing.B)
	}{{"CountStart", start}, {"HoldFreeSlot", slot}} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				c.op(b)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.op(b)
				}
			})
		})
	}
	// A key at its limit: the refusal costs one statement too.
	b.Run("CountStart/refused", func(b *testing.B) {
		for b.Loop() {
			if err := s.CountStart(b.Context(), "full", time.Now(), time.Hour, 0); !errors.Is(err, store.ErrLimited) {
				b.Fatalf("CountStart past the limit = %v, want ErrLimited", err)
			}
		}
	})
}

package executions

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
)

// leases holds this gateway's lease on the executions it runs, and keeps
// the store: it renews the lease, recovers what dead gateways left (their
// executions queued again or ended), forwards cancel requests to the
// executions running here, and purges records past their retention.
type leases struct {
	s      *Service
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func newLeases(s *Service) *leases { return &leases{s: s} }

// start takes the lease.
func (l *leases) start() {
	s := l.s
	if err := s.store.Lease(context.Background(), s.owner, time.Now().Add(s.opts.Records.LeaseTTL), false); err != nil {
		s.log.Error().Err(err).Msg("storage: cannot take the lease; will retry")
	}
}

// loop renews the lease every third of its time, and purges every tenth of
// the retention (at least every minute, at most every hour), until stop.
func (l *leases) loop() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	o := l.s.opts.Records
	l.done.Go(func() {
		tick := time.NewTicker(o.LeaseTTL / 3)
		defer tick.Stop()
		purge := time.NewTicker(min(time.Hour, max(time.Minute, o.Retention/10)))
		defer purge.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-purge.C:
				l.purge(ctx)
			case <-tick.C:
				l.renew(ctx)
				l.maintain(ctx)
			}
		}
	})
}

// stop ends the loop.
func (l *leases) stop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.done.Wait()
}

// renew renews the lease; if it was lost, another gateway may run this
// one's executions now: they stop here, and a new lease is taken.
func (l *leases) renew(ctx context.Context) {
	s := l.s
	err := s.store.Lease(ctx, s.owner, time.Now().Add(s.opts.Records.LeaseTTL), true)
	if errors.Is(err, store.ErrNoLease) {
		s.m.LeaseLost.Inc()
		s.log.Error().Msg("storage: the lease was lost; stopping the executions running here")
		s.running.cancelAll(errLeaseLost)
		err = s.store.Lease(ctx, s.owner, time.Now().Add(s.opts.Records.LeaseTTL), false)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("storage: cannot renew the lease")
	}
}

// maintain recovers abandoned executions and forwards cancel requests.
func (l *leases) maintain(ctx context.Context) {
	s := l.s
	rec, err := s.store.Recover(ctx, time.Now())
	if err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("storage: recovering abandoned executions failed")
	}
	for _, id := range rec.Requeued {
		s.m.Recovered.WithLabelValues("requeued").Inc()
		s.log.Warn().Str("execution_id", id).Msg("re-queued an execution whose gateway stopped")
		s.broker.notify(id)
		s.queue.signal()
	}
	for _, e := range rec.Crashed {
		// It ended here, not on the gateway that ran it (finished
		// runtime_crashed, or cancelled as asked): counted here.
		s.m.Recovered.WithLabelValues("ended").Inc()
		if e.Status == store.Finished {
			s.m.Executions.WithLabelValues(string(execution.CodeRuntimeCrashed)).Inc()
		}
		s.log.Warn().Str("execution_id", e.ID).Str("status", string(e.Status)).Msg("ended an execution whose gateway stopped")
		s.broker.notify(e.ID)
		s.ended(e)
	}
	if n, err := s.store.CountQueued(ctx); err == nil {
		s.m.QueueDepth.Set(float64(n))
	}
	ids, err := s.store.CancelRequests(ctx, s.owner)
	if err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("storage: reading cancel requests failed")
	}
	for _, id := range ids {
		s.running.cancel(id, errCancelled)
	}
}

// purge deletes the records past their retention, and the keys' rate
// windows that no longer count (older than the window before the current).
func (l *leases) purge(ctx context.Context) {
	s := l.s
	if s.limiter.fleet != nil && s.opts.Quota.Window > 0 {
		if err := s.store.PurgeRates(ctx, time.Now().Add(-2*s.opts.Quota.Window)); err != nil {
			s.log.Error().Err(err).Msg("storage: purging the keys' old rate windows failed")
		}
	}
	n, err := s.store.Purge(ctx, time.Now().Add(-s.opts.Records.Retention))
	if err != nil {
		s.log.Error().Err(err).Msg("storage: purging old records failed")
		return
	}
	if n > 0 {
		s.log.Info().Int("records", n).Msg("storage: purged records past their retention")
	}
}

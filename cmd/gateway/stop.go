package main

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/config"
	"github.com/dynamic-workers/gateway/internal/executions"
)

// stop hands over what the gateway runs (executions.Service.Shutdown and
// Handoff): it refuses new executions and reports not ready at once, but
// keeps its listener, for load balancers to notice, for
// http.shutdown_delay at least and until nothing runs or
// http.shutdown_grace ends; then it stops what still runs (queued
// executions go back to the queue), lets the HTTP server send the last
// answers, and closes the service (the runtimes are stopped by then).
func stop(svc *executions.Service, srv *http.Server, cfg *config.Config, log zerolog.Logger) {
	grace, delay := cfg.HTTP.ShutdownGrace, min(cfg.HTTP.ShutdownDelay, cfg.HTTP.ShutdownGrace)
	log.Info().Dur("grace", grace).Dur("delay", delay).Msg("shutting down")
	began := time.Now()
	svc.Shutdown()
	srv.SetKeepAlivesEnabled(false) // clients reconnect, through their load balancer
	tick := time.NewTicker(50 * time.Millisecond)
	for since := time.Duration(0); since < grace && (since < delay || !svc.Idle()); since = time.Since(began) {
		<-tick.C
	}
	tick.Stop()
	if !svc.Idle() {
		log.Info().Msg("grace period over; handing over what still runs")
	}
	svc.Handoff(context.Background())
	// Handlers send their last answers (a synchronous execution's result);
	// event streams have ended (Handoff): their clients resume elsewhere.
	finalCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(finalCtx)
	closeService(svc, grace, log)
}

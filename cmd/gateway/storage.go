package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/config"
	"github.com/dynamic-workers/gateway/internal/executions"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// openStore opens the configured store of execution records (PostgreSQL
// at storage.url, else the SQLite file storage.path). With neither it
// returns nil: no records, no /executions routes.
func openStore(ctx context.Context, cfg *config.Config, log zerolog.Logger) (store.Store, error) {
	location, kind := cfg.Storage.URL.Value(), "postgres"
	if location == "" {
		location, kind = cfg.Storage.Path, "sqlite"
	}
	if location == "" {
		log.Info().Msg("storage: off (no storage.path or storage.url); executions are not recorded")
		return nil, nil
	}
	st, err := store.OpenWith(ctx, location, store.Options{MaxFileBytes: cfg.Storage.MaxFileBytes})
	if err != nil {
		return nil, err
	}
	log.Info().Str("storage", kind).Msg("storage: execution records and the async queue are ready")
	return st, nil
}

// recordOptions are the settings of the records, the queue and callbacks.
func recordOptions(cfg *config.Config) executions.RecordOptions {
	perKey := map[string]int64{}
	for _, k := range cfg.Keys() {
		if k.MaxStoredBytes > 0 {
			perKey[k.Name] = k.MaxStoredBytes
		}
	}
	return executions.RecordOptions{
		Workers:              cfg.Storage.Workers,
		MaxQueued:            cfg.Storage.MaxQueued,
		MaxQueuedPerKey:      cfg.MaxQueuedPerKey(),
		Retention:            cfg.Storage.Retention,
		Callbacks:            callbackOptions(cfg),
		MaxStoredBytesPerKey: cfg.MaxStoredBytesPerKey(),
		StoredBytesPerKey:    perKey,
		MaxScriptBytesPerKey: cfg.Storage.MaxScriptBytesPerKey,
	}
}

// callbackOptions are the webhook settings: a key's callback_secret, else
// callbacks.secret, signs its callbacks; without either its callbackUrl is
// refused.
func callbackOptions(cfg *config.Config) executions.CallbackOptions {
	return executions.CallbackOptions{
		Secret: cfg.CallbackSecret,
		Webhook: webhook.Options{
			Reach:        cfg.CallbackReach(),
			Timeout:      cfg.Callbacks.Timeout,
			MaxRetryTime: cfg.Callbacks.MaxRetryTime,
		},
	}
}

// closeService waits for the queued executions running here, up to grace,
// then stops them and releases the gateway's lease.
func closeService(svc *executions.Service, grace time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := svc.Close(ctx); err != nil {
		log.Error().Err(err).Msg("storage: releasing the lease failed")
	}
}

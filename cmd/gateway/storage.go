package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/config"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// openHistory opens the configured store of execution records (PostgreSQL
// at storage.url, else the SQLite file storage.path) and the History on it.
// With neither it returns nil: no records, no /executions routes.
func openHistory(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*api.History, store.Store, error) {
	location, kind := cfg.Storage.URL.Value(), "postgres"
	if location == "" {
		location, kind = cfg.Storage.Path, "sqlite"
	}
	if location == "" {
		log.Info().Msg("storage: off (no storage.path or storage.url); executions are not recorded")
		return nil, nil, nil
	}
	st, err := store.OpenWith(ctx, location, store.Options{MaxFileBytes: cfg.Storage.MaxFileBytes})
	if err != nil {
		return nil, nil, err
	}
	log.Info().Str("storage", kind).Msg("storage: execution records and the async queue are ready")
	perKey := map[string]int64{}
	for _, k := range cfg.Keys() {
		if k.MaxStoredBytes > 0 {
			perKey[k.Name] = k.MaxStoredBytes
		}
	}
	h := api.NewHistory(st, api.HistoryOptions{
		Workers:              cfg.Storage.Workers,
		MaxQueued:            cfg.Storage.MaxQueued,
		MaxQueuedPerKey:      cfg.MaxQueuedPerKey(),
		Retention:            cfg.Storage.Retention,
		Callbacks:            callbackOptions(cfg),
		MaxStoredBytesPerKey: cfg.MaxStoredBytesPerKey(),
		StoredBytesPerKey:    perKey,
	})
	return h, st, nil
}

// callbackOptions are the webhook settings: a key's callback_secret, else
// callbacks.secret, signs its callbacks; without either its callbackUrl is
// refused.
func callbackOptions(cfg *config.Config) api.CallbackOptions {
	return api.CallbackOptions{
		Secret: cfg.CallbackSecret,
		Webhook: webhook.Options{
			Reach:        cfg.CallbackReach(),
			Timeout:      cfg.Callbacks.Timeout,
			MaxRetryTime: cfg.Callbacks.MaxRetryTime,
		},
	}
}

// closeHistory waits for the queued executions running here, up to grace,
// then stops them and releases the gateway's lease.
func closeHistory(h *api.History, grace time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		log.Error().Err(err).Msg("storage: releasing the lease failed")
	}
}

package executions

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/store"
)

// fleet counts each key's executions started per window and running in
// the store every gateway on the database shares (store.Shared), so that
// a key's quotas hold for all of them together: the same count whichever
// gateway a request reaches, through the database they already share.
// What the store cannot answer is refused as storage_unavailable: nothing
// runs uncounted.
type fleet struct {
	st    store.Store
	owner string // this gateway: its slots are freed when it stops
	log   zerolog.Logger

	mu sync.Mutex
	// refused holds, by key, until when this gateway refuses the key's
	// executions over its rate without asking the store (refusalHold): a
	// key flooding past its quota costs the database one statement per
	// hold per gateway, not one per request.
	refused map[string]time.Time
}

// refusalHold is how long a rate refusal is remembered, at most a tenth of
// the window: the sliding window frees little in that time.
const refusalHold = time.Second

// start counts an execution of key name started at now against its limit
// per window.
func (f *fleet) start(ctx context.Context, name string, limit int, window time.Duration, now time.Time) error {
	refused := rateLimited(limit, window-now.Sub(now.Truncate(window)))
	f.mu.Lock()
	until, held := f.refused[name]
	if held && !now.Before(until) {
		delete(f.refused, name)
		held = false
	}
	f.mu.Unlock()
	if held {
		return refused
	}
	err := f.st.CountStart(ctx, name, now, window, limit)
	switch {
	case errors.Is(err, store.ErrLimited):
		f.mu.Lock()
		if f.refused == nil {
			f.refused = map[string]time.Time{}
		}
		f.refused[name] = now.Add(min(refusalHold, window/10))
		f.mu.Unlock()
		return refused
	case err != nil:
		return f.unavailable(ctx, err, "counting a key's rate")
	}
	return nil
}

// hold takes a slot of key name's for synchronous execution id, unless it
// has limit executions running on the gateways together; free frees it.
func (f *fleet) hold(ctx context.Context, name, id string, limit int) (free func(), err error) {
	err = f.st.HoldSlot(ctx, name, id, f.owner, limit)
	switch {
	case errors.Is(err, store.ErrLimited):
		return nil, concurrencyLimited(limit)
	case err != nil:
		return nil, f.unavailable(ctx, err, "counting a key's executions")
	}
	return func() { f.free(id) }, nil
}

// freeTries bounds the tries to free a slot while the store fails: after
// them the slot is freed when this gateway stops, or by any gateway once
// its lease has expired.
const freeTries = 8

// free frees execution id's slot, trying again with backoff (from 100 ms
// up to 30 s, about two minutes in all) while the store fails.
func (f *fleet) free(id string) {
	err := f.freeOnce(id)
	if err == nil {
		return
	}
	go func() {
		wait := backoff.Policy{Min: 100 * time.Millisecond, Max: 30 * time.Second}
		for attempt := 0; err != nil && attempt < freeTries; attempt++ {
			_ = wait.Wait(context.Background(), attempt)
			err = f.freeOnce(id)
		}
		if err != nil {
			f.log.Error().Err(err).Str("execution_id", id).Msg("storage: freeing a key's slot failed; it stays taken until this gateway stops")
		}
	}()
}

func (f *fleet) freeOnce(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.st.FreeSlot(ctx, id)
}

// unavailable logs a failure of the store to count and refuses the
// execution: storage_unavailable, retry in a second (or ctx's error when
// its caller went away).
func (f *fleet) unavailable(ctx context.Context, err error, doing string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.log.Error().Err(err).Msg("storage: " + doing + " failed; the execution is refused")
	return execution.NewProblem(execution.ProblemStorageUnavailable,
		"the store that counts this API key's quota on every gateway does not answer; retry after Retry-After seconds").WithRetryAfter(1)
}

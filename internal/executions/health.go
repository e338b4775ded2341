package executions

import (
	"context"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// What the gateway does when the store refuses writes (a full disk, a
// database down): nothing that needs a record is started, nothing reports
// success without its record, and nothing already written for is dropped
// while there is room to keep it.
//
//   - A write the store refuses (not a refusal of its content: an existing
//     id, another gateway's execution) makes the writer failing: Ready
//     (/readyz) answers ProblemStorageUnavailable, and so do Run and Submit
//     (POST /execute, POST /executions, the MCP execute tool) before
//     running anything.
//   - The refused write is kept in a backlog, bounded in bytes, and tried
//     again every second, in order; past the bound the oldest are given up
//     (gateway_record_writes_lost_total, and the log). A synchronous
//     execution whose record could not be stored ends ProblemRecordNotStored
//     instead of its result: its result is not reported as if kept.
//   - The writer stops failing when the backlog has been written and a
//     probe write succeeds.

// errRecordLost ends a synchronous execution whose record the store
// refused: its result is not reported as if the record existed.
var errRecordLost = execution.NewProblem(execution.ProblemRecordNotStored,
	"the execution ran, but its record could not be stored (the store refuses writes), so its result is not reported; the gateway keeps trying to store it")

// maxBacklogBytes bounds the writes kept to be tried again while the store
// refuses them.
const maxBacklogBytes = 64 << 20

// retryEvery is how often a failing store is tried again.
const retryEvery = time.Second

// health is the writer's view of its store.
type health struct {
	mu      sync.Mutex
	failing bool
	since   time.Time
	backlog []write
	bytes   int
}

// failed keeps w, which the store refused with err, to try it again.
func (h *writer) failed(w write, err error) {
	if w.stored != nil {
		w.stored <- err
		w.stored = nil
	}
	h.health.mu.Lock()
	defer h.health.mu.Unlock()
	hl := &h.health
	h.m.RecordWritesFailed.Inc()
	if !hl.failing {
		hl.failing, hl.since = true, time.Now()
		h.m.StorageFailing.Set(1)
		h.log.Error().Err(err).Msg("storage: the store refuses writes; refusing executions until it takes them again")
	}
	hl.backlog = append(hl.backlog, w)
	hl.bytes += w.size()
	for hl.bytes > maxBacklogBytes && len(hl.backlog) > 1 {
		lost := hl.backlog[0]
		hl.backlog = hl.backlog[1:]
		hl.bytes -= lost.size()
		h.m.RecordsLost.Inc()
		h.log.Error().Str("execution_id", lost.recordID()).Msg("storage: gave up a write of a record; the backlog of refused writes is full")
	}
}

// size is about how many bytes w holds.
func (w write) size() int {
	n := 256
	for _, ev := range w.events {
		n += len(ev.Data)
	}
	if w.end != nil {
		n += len(w.end.resultJSON)
		for _, ev := range w.end.last {
			n += len(ev.Data)
		}
	}
	return n
}

func (w write) recordID() string {
	if w.create != nil {
		return w.create.ID
	}
	return w.id
}

// storeWorks is told that a write succeeded. The writer stops failing
// once its backlog is written (retry does that).
func (h *writer) storeWorks() {
	h.health.mu.Lock()
	defer h.health.mu.Unlock()
	if h.health.failing && len(h.health.backlog) == 0 {
		h.recovered()
	}
}

// recovered ends the failing state; h.health.mu is held.
func (h *writer) recovered() {
	h.health.failing = false
	h.m.StorageFailing.Set(0)
	h.log.Info().Dur("after", time.Since(h.health.since)).Msg("storage: the store takes writes again")
}

// retry tries the backlog again, in order, then a probe write; the first
// failure stops it until the next try. It runs on the writer's goroutine,
// as apply does.
func (h *writer) retry(ctx context.Context) {
	h.health.mu.Lock()
	failing := h.health.failing
	backlog := h.health.backlog
	h.health.backlog, h.health.bytes = nil, 0
	h.health.mu.Unlock()
	if !failing {
		return
	}
	for i, w := range backlog {
		if err := h.applyOne(ctx, w, true); err != nil {
			// applyOne kept w again (what of it was made is off it now):
			// the rest goes after it, in order.
			h.health.mu.Lock()
			h.health.backlog = append(h.health.backlog, backlog[i+1:]...)
			h.health.bytes = 0
			for _, w := range h.health.backlog {
				h.health.bytes += w.size()
			}
			h.health.mu.Unlock()
			return
		}
	}
	if err := h.store.Probe(ctx); err != nil {
		return
	}
	h.health.mu.Lock()
	defer h.health.mu.Unlock()
	if h.health.failing && len(h.health.backlog) == 0 {
		h.recovered()
	}
}

// Ready reports whether the store takes writes: ProblemStorageUnavailable
// if not.
func (h *writer) Ready() error {
	h.health.mu.Lock()
	defer h.health.mu.Unlock()
	if h.health.failing {
		return storageProblem()
	}
	return nil
}

// storageProblem is the answer to an execution that needs a record while
// the store refuses writes.
func storageProblem() *execution.Problem {
	return execution.NewProblem(execution.ProblemStorageUnavailable,
		"the store of execution records refuses writes (full, or unreachable), so no execution that needs a record is started; retry after Retry-After seconds").
		WithRetryAfter(int(retryEvery/time.Second) * 5)
}

// bound keeps each caller in grew (with about how many bytes its records
// grew by: an upper bound, write.size) under its storage bound: past it,
// its oldest ended records are deleted until it is back to nine tenths of
// it. The store's count is read only when the caller could be past its
// bound (what it read last, plus what was written since, is past it) or
// what it read last is older than usageRecheck: other writers (another
// gateway on the same database, Recover) add to it too, so it is read at
// least that often while the caller writes, and a caller is at most that
// much past its bound before its oldest records go.
func (h *writer) bound(ctx context.Context, grew map[string]int64) {
	now := time.Now()
	for caller, n := range grew {
		limit := h.storedBytesFor(caller)
		if limit <= 0 {
			continue
		}
		if u, ok := h.usage[caller]; ok && now.Sub(u.at) < usageRecheck && u.used+n <= limit {
			u.used += n
			h.usage[caller] = u
			continue
		}
		used, err := h.store.Usage(ctx, caller)
		if err != nil {
			delete(h.usage, caller)
			continue
		}
		h.seen(caller, usageSeen{used: used, at: now})
		if used <= limit {
			continue
		}
		delete(h.usage, caller) // read again after the eviction
		n, err := h.store.Evict(ctx, caller, limit-limit/10)
		if err != nil {
			h.log.Error().Err(err).Str("key", caller).Msg("storage: evicting old records failed")
			continue
		}
		if n > 0 {
			h.m.RecordsEvicted.Add(float64(n))
			h.log.Info().Str("key", caller).Int("records", n).Int64("bound_bytes", limit).Msg("storage: deleted the key's oldest records to keep it under its storage bound")
		}
	}
}

// usageRecheck is how old the writer's last reading of a caller's stored
// bytes may be before it reads them again.
const usageRecheck = time.Second

// usageSeen is a caller's stored bytes as the writer last read them, plus
// (an upper bound of) what it has written for the caller since.
type usageSeen struct {
	used int64
	at   time.Time // when read
}

// seen keeps u as caller's reading; the readings kept are bounded (those
// past usageRecheck are dropped first, then all, when there are too many).
func (h *writer) seen(caller string, u usageSeen) {
	if len(h.usage) >= maxUsageSeen {
		for c, old := range h.usage {
			if u.at.Sub(old.at) >= usageRecheck {
				delete(h.usage, c)
			}
		}
		if len(h.usage) >= maxUsageSeen {
			clear(h.usage)
		}
	}
	h.usage[caller] = u
}

// maxUsageSeen bounds the callers whose reading the writer keeps.
const maxUsageSeen = 4096

// storedBytesFor is caller's storage bound: its own, or the default; 0 for
// none.
func (h *writer) storedBytesFor(caller string) int64 {
	if n, ok := h.opts.StoredBytesPerKey[caller]; ok && n > 0 {
		return n
	}
	return h.opts.MaxStoredBytesPerKey
}

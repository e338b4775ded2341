package executions

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// Quota is the default per-key allowance; a key's own (execution.Caller)
// overrides it.
type Quota struct {
	Requests    int           // executions started per Window
	Window      time.Duration //
	Concurrency int           // executions running at once
}

// unlimited stands for "no bound" in a quota.
const unlimited = 1 << 30

// withDefaults is q with its zero fields unlimited (Window a minute).
func (q Quota) withDefaults() Quota {
	if q.Requests <= 0 {
		q.Requests = unlimited
	}
	if q.Window <= 0 {
		q.Window = time.Minute
	}
	if q.Concurrency <= 0 {
		q.Concurrency = unlimited
	}
	return q
}

// MaxEventStreamsPerKey bounds the event streams one key has open on a
// gateway: each holds a goroutine and reads the store every poll while its
// execution has not ended.
const MaxEventStreamsPerKey = 64

// MaxReadsPerKey bounds the record reads (Get, List) one key has in flight
// on a gateway: a read holds one record's result at most, so a key's reads
// hold at most this many; past it, ProblemConcurrencyLimited, and other
// keys' reads go on.
const MaxReadsPerKey = 16

// limiter is the one place each key's quotas are kept on a gateway: the
// executions it starts per window (a sliding window, as go-chi/httprate
// counts), the executions it has running (with the queued ones this
// gateway's workers run), its reads and its event streams in flight.
type limiter struct {
	quota   Quota
	queued  *running // the queued executions running here
	mu      sync.Mutex
	windows map[string]*window
	counts  map[countKind]map[string]int
}

// window counts one key's executions in the current window and the one
// before.
type window struct {
	start      time.Time
	curr, prev int
}

type countKind int

const (
	countRunning countKind = iota
	countReads
	countStreams
)

func newLimiter(q Quota, queued *running) *limiter {
	return &limiter{quota: q, queued: queued, windows: map[string]*window{},
		counts: map[countKind]map[string]int{countRunning: {}, countReads: {}, countStreams: {}}}
}

// start counts an execution c starts now, unless c has started its quota
// for the window: then ProblemRateLimited, with Retry-After and the quota.
func (l *limiter) start(c execution.Caller, now time.Time) error {
	limit := l.quota.Requests
	if c.Requests > 0 {
		limit = c.Requests
	}
	if limit >= unlimited {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[c.Name]
	if w == nil {
		w = &window{start: now.Truncate(l.quota.Window)}
		l.windows[c.Name] = w
	}
	if cur := now.Truncate(l.quota.Window); cur != w.start {
		if cur.Sub(w.start) == l.quota.Window {
			w.prev = w.curr
		} else {
			w.prev = 0
		}
		w.start, w.curr = cur, 0
	}
	elapsed := now.Sub(w.start)
	rate := float64(w.prev)*float64(l.quota.Window-elapsed)/float64(l.quota.Window) + float64(w.curr)
	if int(rate)+1 > limit {
		p := execution.NewProblem(execution.ProblemRateLimited,
			"this API key started its quota of executions for the current window; retry after Retry-After seconds")
		p.RetryAfter = max(1, int(math.Ceil((l.quota.Window - elapsed).Seconds())))
		p.Quota = limit
		return p
	}
	w.curr++
	return nil
}

// run counts an execution of c running, unless c has its concurrency
// quota running (with its queued executions running here): then
// ProblemConcurrencyLimited. done uncounts it.
func (l *limiter) run(c execution.Caller) (done func(), err error) {
	limit := l.quota.Concurrency
	if c.Concurrency > 0 {
		limit = c.Concurrency
	}
	done, ok := l.count(countRunning, c.Name, limit, l.queued.of(c.Name))
	if !ok {
		return nil, execution.NewProblem(execution.ProblemConcurrencyLimited,
			"this API key has "+strconv.Itoa(limit)+" executions running, its limit; retry when one ends").WithRetryAfter(1)
	}
	return done, nil
}

// read counts a read of c's records in flight, unless it has
// MaxReadsPerKey.
func (l *limiter) read(c execution.Caller) (done func(), err error) {
	return l.bounded(countReads, c, MaxReadsPerKey, " reads of its records in flight; retry when one has ended", 1)
}

// stream counts an event stream of c, unless it has MaxEventStreamsPerKey
// open.
func (l *limiter) stream(c execution.Caller) (done func(), err error) {
	return l.bounded(countStreams, c, MaxEventStreamsPerKey, " event streams open; close one first", 0)
}

// bounded counts one more of c's of kind, unless it has limit: then
// ProblemConcurrencyLimited, saying it has limit and what.
func (l *limiter) bounded(kind countKind, c execution.Caller, limit int, what string, retryAfter int) (done func(), err error) {
	done, ok := l.count(kind, c.Name, limit, 0)
	if !ok {
		return nil, execution.NewProblem(execution.ProblemConcurrencyLimited, "this API key has "+strconv.Itoa(limit)+what).WithRetryAfter(retryAfter)
	}
	return done, nil
}

// count counts one more of name's of kind, unless it has limit (with
// others counted elsewhere); done uncounts it.
func (l *limiter) count(kind countKind, name string, limit, others int) (done func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.counts[kind]
	if n[name]+others >= limit {
		return nil, false
	}
	n[name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if n[name]--; n[name] <= 0 {
				delete(n, name)
			}
		})
	}, true
}

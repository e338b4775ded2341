package executions

import (
	"context"
	"maps"
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
// gateway's workers run), its reads and its event streams in flight. With
// a store that other gateways share, the first two are counted in it, for
// every gateway together (fleet.go); reads and streams stay per gateway.
type limiter struct {
	quota   Quota
	queued  *running // the queued executions running here
	fleet   *fleet   // nil: rates and executions are counted here
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

func newLimiter(q Quota, queued *running, f *fleet) *limiter {
	return &limiter{quota: q, queued: queued, fleet: f, windows: map[string]*window{},
		counts: map[countKind]map[string]int{countRunning: {}, countReads: {}, countStreams: {}}}
}

// start counts an execution c starts now, unless c has started its quota
// for the window: then ProblemRateLimited, with Retry-After and the quota.
func (l *limiter) start(ctx context.Context, c execution.Caller, now time.Time) error {
	limit := l.quota.Requests
	if c.Requests > 0 {
		limit = c.Requests
	}
	if limit >= unlimited {
		return nil
	}
	if l.fleet != nil {
		return l.fleet.start(ctx, c.Name, limit, l.quota.Window, now)
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
		return rateLimited(limit, l.quota.Window-elapsed)
	}
	w.curr++
	return nil
}

// rateLimited is the refusal of a key that started its limit of executions
// in the window, which allows one more after wait.
func rateLimited(limit int, wait time.Duration) *execution.Problem {
	p := execution.NewProblem(execution.ProblemRateLimited,
		"this API key started its quota of executions for the current window; retry after Retry-After seconds")
	p.RetryAfter = max(1, int(math.Ceil(wait.Seconds())))
	p.Quota = limit
	return p
}

// run counts execution id of c running, unless c has its concurrency quota
// running (with its queued executions running here, or, with a fleet, on
// any gateway): then ProblemConcurrencyLimited. done uncounts it.
func (l *limiter) run(ctx context.Context, c execution.Caller, id string) (done func(), err error) {
	limit := l.quota.Concurrency
	if c.Concurrency > 0 {
		limit = c.Concurrency
	}
	if l.fleet == nil || limit >= unlimited {
		done, ok := l.count(countRunning, c.Name, limit, l.queued.of(c.Name))
		if !ok {
			return nil, concurrencyLimited(limit)
		}
		return done, nil
	}
	free, err := l.fleet.hold(ctx, c.Name, id, limit)
	if err != nil {
		return nil, err
	}
	// Counted here too, without a bound: what runs here (Idle).
	local, _ := l.count(countRunning, c.Name, unlimited, 0)
	var once sync.Once
	return func() { once.Do(func() { local(); free() }) }, nil
}

// concurrencyLimited is the refusal of a key that has its limit running.
func concurrencyLimited(limit int) *execution.Problem {
	return execution.NewProblem(execution.ProblemConcurrencyLimited,
		"this API key has "+strconv.Itoa(limit)+" executions running, its limit; retry when one ends").WithRetryAfter(1)
}

// busy is how many synchronous executions each key has running here, for
// claims of queued ones when no fleet counts them (nil with one).
func (l *limiter) busy() map[string]int {
	if l.fleet != nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.counts[countRunning])
}

// running counts the synchronous executions running here.
func (l *limiter) running() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.counts[countRunning] {
		n += c
	}
	return n
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

package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/webhook"
)

// CallbackOptions configure webhooks: the record of an execution submitted
// with a callbackUrl is POSTed there, signed, when it ends.
type CallbackOptions struct {
	// Secret returns the secret that signs the callbacks of caller's
	// executions (its key's own, else callbacks.secret). A caller without
	// one (or a nil Secret) cannot submit a callbackUrl: nothing is ever
	// sent unsigned.
	Secret func(caller string) []byte
	// Webhook configures the deliveries: Reach (also applied when a
	// callbackUrl is submitted), Timeout, MaxRetryTime, MaxInFlight (the
	// deliveries this gateway sends at once), Backoff.
	Webhook webhook.Options
	// Grace is how long an attempt under way may finish when the gateway
	// stops (default 2s); the delivery is then resumed after a restart.
	Grace time.Duration
}

// secretFor returns caller's callback secret, or nil.
func (o CallbackOptions) secretFor(caller string) []byte {
	if o.Secret == nil {
		return nil
	}
	return o.Secret(caller)
}

// callbacks is the History's webhook delivery: a loop claiming pending
// callbacks from the store (this gateway's and those a stopped gateway
// left), and one goroutine per delivery, at most Webhook.MaxInFlight, and
// at most perKey of them for one key: a key whose receiver holds every
// delivery it gets for the whole retry time (never answers, asks to retry
// later, fails) cannot hold up the other keys' callbacks.
type callbacks struct {
	deliverer  *webhook.Deliverer
	slots      chan struct{}
	wake       chan struct{}
	stopping   chan struct{} // closed when the gateway stops
	loopDone   chan struct{}
	deliveries sync.WaitGroup
	maxRetry   time.Duration
	perKey     int

	mu   sync.Mutex
	busy map[string]int // deliveries running, by key
}

// full returns the keys that have perKey deliveries running.
func (c *callbacks) full() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for k, n := range c.busy {
		if n >= c.perKey {
			keys = append(keys, k)
		}
	}
	return keys
}

// count adds d to key's running deliveries.
func (c *callbacks) count(key string, d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy[key] += d
	if c.busy[key] <= 0 {
		delete(c.busy, key)
	}
}

// startCallbacks starts the delivery loop.
func (h *History) startCallbacks() {
	o := h.opts.Callbacks.Webhook
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = webhook.DefaultMaxInFlight
	}
	if o.MaxRetryTime <= 0 {
		o.MaxRetryTime = webhook.DefaultMaxRetryTime
	}
	h.cb = &callbacks{
		deliverer: webhook.New(o),
		slots:     make(chan struct{}, o.MaxInFlight),
		wake:      make(chan struct{}, 1),
		stopping:  make(chan struct{}),
		loopDone:  make(chan struct{}),
		maxRetry:  o.MaxRetryTime,
		perKey:    max(1, o.MaxInFlight/2),
		busy:      map[string]int{},
	}
	go h.callbackLoop()
}

// stopCallbacks stops claiming, lets attempts under way finish for the
// grace, and leaves the deliveries it stopped pending, released, for the
// next gateway (or this one after a restart) to resume.
func (h *History) stopCallbacks() {
	if h.cb == nil {
		return
	}
	close(h.cb.stopping)
	<-h.cb.loopDone
	grace := h.opts.Callbacks.Grace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = h.cb.deliverer.Close(ctx)
	h.cb.deliveries.Wait()
}

// wakeCallbacks tells the loop a callback may have turned pending.
func (h *History) wakeCallbacks() {
	if h.cb == nil {
		return
	}
	select {
	case h.cb.wake <- struct{}{}:
	default:
	}
}

// callbackLoop claims pending callbacks while a delivery slot is free.
func (h *History) callbackLoop() {
	defer close(h.cb.loopDone)
	poll := time.NewTicker(h.opts.Poll)
	defer poll.Stop()
	for {
		select {
		case h.cb.slots <- struct{}{}:
		case <-h.cb.stopping:
			return
		}
		e, err := h.claimCallback()
		if err == nil {
			h.cb.count(e.Caller, 1)
			h.cb.deliveries.Add(1)
			go func() {
				defer h.cb.deliveries.Done()
				defer h.wakeCallbacks() // its key's others may be claimed now
				defer h.cb.count(e.Caller, -1)
				defer func() { <-h.cb.slots }()
				h.deliver(e)
			}()
			continue
		}
		<-h.cb.slots
		if !errors.Is(err, store.ErrEmpty) {
			h.log.Error().Err(err).Msg("storage: claiming a pending callback failed")
		}
		select {
		case <-h.cb.stopping:
			return
		case <-h.cb.wake:
		case <-poll.C:
		}
	}
}

func (h *History) claimCallback() (*store.Execution, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.store.ClaimCallback(ctx, h.owner, time.Now(), h.cb.full()...)
}

// deliver sends one claimed callback and keeps each attempt in the record.
// A delivery resumed after a restart keeps its earlier attempts, and its
// retry time still counts from the first of them.
func (h *History) deliver(e *store.Execution) {
	log := h.log.With().Str("execution_id", e.ID).Str("key", e.Caller).Logger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	attempts := e.Callback.Attempts
	if len(attempts) > 0 {
		ctx, cancel = context.WithDeadline(ctx, attempts[0].At.Add(h.cb.maxRetry))
		defer cancel()
	}
	secret := h.opts.Callbacks.secretFor(e.Caller)
	if len(secret) == 0 {
		h.saveCallback(e, store.Callback{State: store.CallbackFailed, Attempts: attempts,
			Reason: "not sent: no callback secret is configured for the key"}, false)
		return
	}
	body, err := renderRecord(e)
	if err != nil {
		log.Error().Err(err).Msg("callback: cannot encode the record")
		return
	}
	lost := false
	res := h.cb.deliverer.Deliver(ctx, webhook.Delivery{
		ID: e.ID, URL: e.CallbackURL, Body: body, Secret: secret, Earlier: len(attempts),
		OnAttempt: func(a webhook.Attempt) {
			attempts = append(attempts, attemptOf(a))
			logAttempt(log, len(attempts), a)
			if errors.Is(h.saveCallback(e, store.Callback{State: store.CallbackPending, Attempts: attempts}, false), store.ErrNotOwner) {
				lost = true
				cancel()
			}
		},
	})
	switch {
	case lost:
		log.Warn().Msg("callback: another gateway took the delivery over")
	case res.Delivered:
		h.saveCallback(e, store.Callback{State: store.CallbackDelivered, Attempts: attempts}, false)
	case h.stopped():
		h.saveCallback(e, store.Callback{State: store.CallbackPending, Attempts: attempts}, true)
	default:
		log.Warn().Int("attempts", len(attempts)).Str("reason", res.Reason).Msg("callback: not delivered")
		h.saveCallback(e, store.Callback{State: store.CallbackFailed, Attempts: attempts, Reason: res.Reason}, false)
	}
}

// logAttempt logs a failed attempt: the reason the record gives the
// tenant, and the full error (never the URL, whose query may hold a token)
// that the record leaves out.
func logAttempt(log zerolog.Logger, n int, a webhook.Attempt) {
	if a.Error == "" {
		return
	}
	ev := log.Info().Int("attempt", n).Str("reason", a.Error)
	if a.Status != 0 {
		ev = ev.Int("status", a.Status)
	}
	if a.Cause != nil {
		ev = ev.AnErr("cause", a.Cause)
	}
	ev.Msg("callback: attempt failed")
}

// stopped reports whether the gateway is stopping its deliveries.
func (h *History) stopped() bool {
	select {
	case <-h.cb.stopping:
		return true
	default:
		return false
	}
}

// saveCallback stores c as e's callback; its error is logged and returned.
func (h *History) saveCallback(e *store.Execution, c store.Callback, release bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.store.SaveCallback(ctx, e.ID, h.owner, c, release)
	if err != nil && !errors.Is(err, store.ErrNotOwner) {
		h.log.Error().Err(err).Str("execution_id", e.ID).Msg("storage: saving a callback attempt failed")
	}
	return err
}

// attemptOf is a webhook attempt as the record keeps it.
func attemptOf(a webhook.Attempt) execution.CallbackAttempt {
	ms := float64(a.Duration.Round(time.Microsecond)) / float64(time.Millisecond)
	return execution.CallbackAttempt{At: a.At, Status: a.Status, Error: a.Error, DurationMs: ms}
}

// callbackOf renders e's callback for its record; nil without a URL.
func callbackOf(e *store.Execution) *execution.Callback {
	if e.CallbackURL == "" {
		return nil
	}
	c := &execution.Callback{URL: e.CallbackURL, State: string(e.Callback.State), Reason: e.Callback.Reason,
		Attempts: e.Callback.Attempts}
	if c.State == "" {
		c.State = execution.CallbackWaiting
	}
	c.Delivered = c.State == execution.CallbackDelivered
	if c.Attempts == nil {
		c.Attempts = []execution.CallbackAttempt{}
	}
	return c
}

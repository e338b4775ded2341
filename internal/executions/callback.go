package executions

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/store"
	"github.com/dynamic-workers/gateway/internal/tracing"
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

// callbacks is the service's webhook delivery: a loop claiming pending
// callbacks from the store (this gateway's and those a stopped gateway
// left), and one goroutine per delivery, at most Webhook.MaxInFlight, and
// at most perKey of them for one key: a key whose receiver holds every
// delivery it gets for the whole retry time (never answers, asks to retry
// later, fails) cannot hold up the other keys' callbacks.
type callbacks struct {
	s          *Service
	deliverer  *webhook.Deliverer
	slots      chan struct{}
	wakeup     chan struct{}
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

func newCallbacks(s *Service) *callbacks {
	o := s.opts.Records.Callbacks.Webhook
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = webhook.DefaultMaxInFlight
	}
	if o.MaxRetryTime <= 0 {
		o.MaxRetryTime = webhook.DefaultMaxRetryTime
	}
	if o.Tracer == nil {
		o.Tracer = s.opts.Tracer
	}
	return &callbacks{
		s:         s,
		deliverer: webhook.New(o),
		slots:     make(chan struct{}, o.MaxInFlight),
		wakeup:    make(chan struct{}, 1),
		stopping:  make(chan struct{}),
		loopDone:  make(chan struct{}),
		maxRetry:  o.MaxRetryTime,
		perKey:    max(1, o.MaxInFlight/2),
		busy:      map[string]int{},
	}
}

// start starts the delivery loop.
func (c *callbacks) start() { go c.loop() }

// stop stops claiming, lets attempts under way finish for the grace, and
// leaves the deliveries it stopped pending, released, for the next gateway
// (or this one after a restart) to resume.
func (c *callbacks) stop() {
	close(c.stopping)
	<-c.loopDone
	grace := c.s.opts.Records.Callbacks.Grace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = c.deliverer.Close(ctx)
	c.deliveries.Wait()
}

// wake tells the loop a callback may have turned pending.
func (c *callbacks) wake() {
	select {
	case c.wakeup <- struct{}{}:
	default:
	}
}

// loop claims pending callbacks while a delivery slot is free.
func (c *callbacks) loop() {
	defer close(c.loopDone)
	poll := time.NewTicker(c.s.opts.Records.Poll)
	defer poll.Stop()
	for {
		select {
		case c.slots <- struct{}{}:
		case <-c.stopping:
			return
		}
		e, err := c.claim()
		if err == nil {
			c.count(e.Caller, 1)
			c.deliveries.Add(1)
			go func() {
				defer c.deliveries.Done()
				defer c.wake() // its key's others may be claimed now
				defer c.count(e.Caller, -1)
				defer func() { <-c.slots }()
				c.deliver(e)
			}()
			continue
		}
		<-c.slots
		if !errors.Is(err, store.ErrEmpty) {
			c.s.log.Error().Err(err).Msg("storage: claiming a pending callback failed")
		}
		select {
		case <-c.stopping:
			return
		case <-c.wakeup:
		case <-poll.C:
		}
	}
}

func (c *callbacks) claim() (*store.Execution, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.s.store.ClaimCallback(ctx, c.s.owner, time.Now(), c.full()...)
}

// deliver sends one claimed callback and keeps each attempt in the record.
// A delivery resumed after a restart keeps its earlier attempts, and its
// retry time still counts from the first of them.
func (c *callbacks) deliver(e *store.Execution) {
	log := c.s.log.With().Str("execution_id", e.ID).Str("key", e.Caller).Logger()
	// Its attempts' spans join the execution's trace.
	ctx, cancel := context.WithCancel(tracing.Continue(context.Background(), e.Trace))
	defer cancel()
	attempts := e.Callback.Attempts
	// Attempts started, also one a crash cut short (never in attempts):
	// the next is numbered after them.
	sent := max(e.Callback.Sent, len(attempts))
	if len(attempts) > 0 {
		ctx, cancel = context.WithDeadline(ctx, attempts[0].At.Add(c.maxRetry))
		defer cancel()
	}
	secret := c.s.opts.Records.Callbacks.secretFor(e.Caller)
	if len(secret) == 0 {
		c.saveCallback(e, store.Callback{State: store.CallbackFailed, Attempts: attempts, Sent: sent,
			Reason: "not sent: no callback secret is configured for the key"}, false)
		c.s.m.Callbacks.WithLabelValues(execution.CallbackFailed).Inc()
		return
	}
	body, err := storedRecord(e).MarshalJSON()
	if err != nil {
		log.Error().Err(err).Msg("callback: cannot encode the record")
		return
	}
	lost := false
	res := c.deliverer.Deliver(ctx, webhook.Delivery{
		ID: e.ID, URL: e.CallbackURL, Body: body, Secret: secret, Earlier: sent,
		BeforeAttempt: func(n int) error {
			sent = n
			err := c.saveCallback(e, store.Callback{State: store.CallbackPending, Attempts: attempts, Sent: sent}, false)
			if errors.Is(err, store.ErrNotOwner) {
				lost = true
				return err
			}
			return nil // a store refusing writes: sent anyway, numbered as far as known
		},
		OnAttempt: func(a webhook.Attempt) {
			attempts = append(attempts, attemptOf(a))
			c.s.m.CallbackAttempts.WithLabelValues(attemptResult(a)).Inc()
			logAttempt(log, sent, a)
			if errors.Is(c.saveCallback(e, store.Callback{State: store.CallbackPending, Attempts: attempts, Sent: sent}, false), store.ErrNotOwner) {
				lost = true
				cancel()
			}
		},
	})
	switch {
	case lost:
		log.Warn().Msg("callback: another gateway took the delivery over")
	case res.Delivered:
		c.saveCallback(e, store.Callback{State: store.CallbackDelivered, Attempts: attempts, Sent: sent}, false)
		c.s.m.Callbacks.WithLabelValues(execution.CallbackDelivered).Inc()
	case c.stopped():
		c.saveCallback(e, store.Callback{State: store.CallbackPending, Attempts: attempts, Sent: sent}, true)
	default:
		log.Warn().Int("attempts", len(attempts)).Str("reason", res.Reason).Msg("callback: not delivered")
		c.saveCallback(e, store.Callback{State: store.CallbackFailed, Attempts: attempts, Sent: sent, Reason: res.Reason}, false)
		c.s.m.Callbacks.WithLabelValues(execution.CallbackFailed).Inc()
	}
}

// attemptResult is an attempt's label in the metrics: its status class, or
// no_answer.
func attemptResult(a webhook.Attempt) string {
	if a.Status < 100 || a.Status > 599 {
		return "no_answer"
	}
	return strconv.Itoa(a.Status/100) + "xx"
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
func (c *callbacks) stopped() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// saveCallback stores cb as e's callback; its error is logged and returned.
func (c *callbacks) saveCallback(e *store.Execution, cb store.Callback, release bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.s.store.SaveCallback(ctx, e.ID, c.s.owner, cb, release)
	if err != nil && !errors.Is(err, store.ErrNotOwner) {
		c.s.log.Error().Err(err).Str("execution_id", e.ID).Msg("storage: saving a callback attempt failed")
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

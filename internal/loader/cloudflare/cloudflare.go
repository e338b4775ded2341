// Package cloudflare runs executions on the shim Worker deployed to
// Cloudflare: Relay sends each job over HTTPS (the wire protocol is
// internal/loader/shim's), verifies the shared secret in the background and
// fails fast through a circuit breaker while the shim keeps failing; Deploy
// uploads the shim with the Cloudflare API (`gateway deploy`).
package cloudflare

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// Config configures the cloudflare backend.
type Config struct {
	URL           string        // the deployed shim, e.g. https://dw-shim.team.workers.dev
	Secret        string        // the SHIM_SECRET it was deployed with
	MaxEventBytes int           // bound of one event line; default 4 MiB
	DialTimeout   time.Duration // default 5s
	// MaxTimeout is the longest an execution may run (execution.max_timeout;
	// default 60s): the wait for the shim's answer to a call lasts a little
	// longer, so an execution waiting for its reused isolate is never taken
	// for a dead connection before its own timeout ends it.
	MaxTimeout time.Duration
	// BreakerFailures consecutive failures to reach the shim open the
	// breaker (default 5); it stays open for BreakerCooldown (default 10s),
	// answering at once, then lets one execution through to test.
	BreakerFailures int
	BreakerCooldown time.Duration
	// VerifyInterval is how often the gateway checks, with a signed call,
	// that the shim shares its secret (default 30s).
	VerifyInterval time.Duration
	// TLS configures the connections to the shim; nil: the system's roots
	// (tests set it to trust a local TLS server in front of the shim).
	TLS *tls.Config
}

// Relay runs executions on the shim deployed to Cloudflare, over HTTPS
// with signed calls. It holds no state but its breaker: any number of
// gateways can share one shim.
type Relay struct {
	cfg     Config
	log     zerolog.Logger
	client  *http.Client
	breaker breaker
	warm    *warmSlots // the reuse keys' isolates this relay leases
	// redial is the wait before calling the shim again after the connection
	// was refused (tests give it a fake clock).
	redial backoff.Policy

	mu       sync.Mutex
	verified error // result of the last secret check; nil when it passed
	// lostConns holds the connections whose loss the breaker has counted,
	// and when: one connection reset fails every execution it carried, but
	// it is one failure of the shim, not one per execution.
	lostConns map[net.Conn]time.Time

	stop context.CancelFunc
	done chan struct{}
}

// New checks the shim once (logging a clear error if it refuses
// the gateway's signature) and keeps checking in the background.
func New(cfg Config, log zerolog.Logger) (*Relay, error) {
	if cfg.URL == "" || len(cfg.Secret) < 32 {
		return nil, errors.New("the cloudflare backend needs cloudflare.url and a cloudflare.shim_secret of at least 32 characters")
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = 4 << 20
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 60 * time.Second
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = 10 * time.Second
	}
	if cfg.VerifyInterval <= 0 {
		cfg.VerifyInterval = 30 * time.Second
	}
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	ctx, cancel := context.WithCancel(context.Background())
	c := &Relay{
		cfg:     cfg,
		log:     log.With().Str("component", "loader").Str("backend", "cloudflare").Logger(),
		client:  &http.Client{Transport: rateLimits{now: time.Now, next: newPool(cfg.DialTimeout, responseHeaderTimeout(cfg.MaxTimeout), cfg.TLS)}},
		breaker: breaker{failures: cfg.BreakerFailures, cooldown: cfg.BreakerCooldown},
		warm:    newWarmSlots(),
		redial:  backoff.Policy{Min: 50 * time.Millisecond, Max: 100 * time.Millisecond},
		stop:    cancel,
		done:    make(chan struct{}),
	}
	c.verify(ctx)
	go c.keepVerifying(ctx)
	return c, nil
}

// verify makes a signed call to the shim's /verify and records the outcome.
func (c *Relay) verify(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+"/verify", nil)
	shim.Sign(req, nil, c.cfg.Secret, time.Now())
	resp, doErr := c.client.Do(req)
	var limited *execution.RateLimitedError
	if errors.As(doErr, &limited) {
		return // Cloudflare is pacing the gateway: no news about the shim
	}
	switch {
	case doErr != nil:
		err = fmt.Errorf("%w: cannot reach the shim at %s: %v", execution.ErrUnavailable, c.cfg.URL, doErr)
	case resp.StatusCode == http.StatusUnauthorized:
		err = fmt.Errorf("%w: %w: set cloudflare.shim_secret to the secret the shim was deployed with, or deploy again", execution.ErrUnavailable, shim.ErrSecretMismatch)
	case resp.StatusCode != http.StatusNoContent:
		err = fmt.Errorf("%w: the shim at %s answered %s to a check; is cloudflare.url the deployed shim?", execution.ErrUnavailable, c.cfg.URL, resp.Status)
	}
	if resp != nil {
		resp.Body.Close()
	}
	if err == nil {
		c.breaker.reset() // the shim answers: executions may try it again
	}
	c.mu.Lock()
	changed := (err == nil) != (c.verified == nil)
	c.verified = err
	c.mu.Unlock()
	switch {
	case err != nil && (changed || errors.Is(err, shim.ErrSecretMismatch)):
		c.log.Error().Err(err).Msg("the cloudflare shim cannot take executions")
	case err == nil && changed:
		c.log.Info().Str("url", c.cfg.URL).Msg("the cloudflare shim accepts the gateway's calls")
	}
}

func (c *Relay) keepVerifying(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.cfg.VerifyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.verify(ctx)
		}
	}
}

// Ready reports whether the shim accepts the gateway's calls and the
// breaker is closed.
func (c *Relay) Ready(ctx context.Context) error {
	c.mu.Lock()
	err := c.verified
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if !c.breaker.allows(time.Now()) {
		return fmt.Errorf("%w: the shim failed %d times in a row; retrying after %v", execution.ErrUnavailable, c.cfg.BreakerFailures, c.cfg.BreakerCooldown)
	}
	return nil
}

// Drain does nothing: the cloudflare backend holds no executions of its own.
func (c *Relay) Drain() {}

// Close stops the background checks.
func (c *Relay) Close() error {
	c.stop()
	<-c.done
	c.client.CloseIdleConnections()
	return nil
}

// Execute relays job to the shim on Cloudflare.
func (c *Relay) Execute(ctx context.Context, job *execution.Job, emit func(execution.Event) error) error {
	trial, ok := c.breaker.enter(time.Now())
	if !ok {
		return fmt.Errorf("%w: the cloudflare shim is failing; retry after %v", execution.ErrUnavailable, c.cfg.BreakerCooldown)
	}
	// Every exit without a verdict (a rejection, the caller gone, an emit
	// error) gives the trial back.
	defer c.breaker.release(trial)
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, job.Timeout, shim.ErrTimeout)
	defer cancel()
	job.Tail = true // let the shim learn from the guest's tail why Cloudflare stopped it
	if job.ReuseKey != "" {
		id, release, err := c.warm.lease(ctx, job.ReuseKey)
		switch {
		case parent.Err() != nil:
			return parent.Err()
		case err != nil:
			return emit(execution.Failure(execution.CodeTimeout, "execution exceeded its timeout of %v waiting for one of its reused isolates", job.Timeout))
		}
		defer release()
		leased := *job
		leased.ReuseKey = id
		job = &leased
	}
	var conn net.Conn // the connection the call went over, once it has one
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		c.mu.Lock()
		conn = info.Conn
		c.mu.Unlock()
	}})
	call, err := c.run(traced, job, emit)
	var lost *shim.LostError
	var limited *execution.RateLimitedError
	switch {
	case errors.As(err, &limited):
		// Cloudflare pacing the gateway is no failure of the shim: the
		// caller waits, the breaker counts nothing.
		c.log.Warn().Str("id", job.ID).Dur("retry_after", limited.RetryAfter).Msg("cloudflare is rate limiting calls to the shim")
		return limited
	case err == nil:
		c.breaker.record(trial, true, time.Now())
		c.mu.Lock()
		c.verified = nil // the shim took a signed call: the secrets match
		c.mu.Unlock()
		return nil
	case errors.Is(err, shim.ErrSecretMismatch):
		c.breaker.record(trial, false, time.Now())
		c.mu.Lock()
		c.verified = fmt.Errorf("%w: %w", execution.ErrUnavailable, err)
		c.mu.Unlock()
		return c.verified
	case !errors.As(err, &lost):
		return err // rejected by the runtime, or the client went away
	case errors.Is(context.Cause(ctx), shim.ErrTimeout):
		return c.timedOut(trial, job, call, lost, emit)
	case parent.Err() != nil:
		return parent.Err()
	}
	c.mu.Lock()
	lostOn := conn
	c.mu.Unlock()
	if c.firstLoss(lostOn, time.Now()) {
		c.breaker.record(trial, false, time.Now())
	}
	if !lost.Answered {
		c.log.Warn().Str("id", job.ID).Err(lost.Err).Msg("cannot reach the cloudflare shim")
		return fmt.Errorf("%w: cannot reach the cloudflare shim: %v", execution.ErrUnavailable, lost.Err)
	}
	c.log.Warn().Str("id", job.ID).Err(lost.Err).Msg("lost the connection to the cloudflare shim")
	return emit(execution.Failure(execution.CodeRuntimeCrashed, "lost the connection to the Cloudflare shim; safe to retry"))
}

// run calls the shim, again only where no guest code can have started: a
// connection refused before anything was sent. The wait ends with ctx; the
// error then stays the refusal.
func (c *Relay) run(ctx context.Context, job *execution.Job, emit func(execution.Event) error) (*shim.Call, error) {
	for attempt := 0; ; attempt++ {
		call := &shim.Call{Client: c.client, Base: c.cfg.URL, Secret: c.cfg.Secret, MaxEvent: c.cfg.MaxEventBytes}
		err := call.Run(ctx, job, emit)
		var lost *shim.LostError
		if errors.As(err, &lost) && !lost.Answered && errors.Is(lost.Err, syscall.ECONNREFUSED) && attempt < 2 &&
			c.redial.Wait(ctx, attempt) == nil {
			continue
		}
		return call, err
	}
}

// stallAfter is how long the shim may send nothing on a stream before the
// relay holds Cloudflare, not the guest, to blame: the shim pings every
// 100 ms while the guest is silent.
const stallAfter = 2 * time.Second

// timedOut ends an execution that ran out of time. A guest that ran long is
// a success of the shim's; Cloudflare stalling (no answer to a fresh
// isolate's call, or a stream gone silent with no pings) is a failure. A
// reused isolate's call may wait for the isolate, so its silence before
// the answer proves nothing.
func (c *Relay) timedOut(trial uint64, job *execution.Job, call *shim.Call, lost *shim.LostError, emit func(execution.Event) error) error {
	stalled := lost.Answered && call.SilentFor() > stallAfter || !lost.Answered && job.ReuseKey == ""
	c.breaker.record(trial, !stalled, time.Now())
	if stalled {
		c.log.Warn().Str("id", job.ID).Msg("the cloudflare shim stalled until the execution's timeout")
		return emit(execution.Failure(execution.CodeTimeout, "execution exceeded its timeout of %v; the Cloudflare shim did not answer in time", job.Timeout))
	}
	return emit(execution.Failure(execution.CodeTimeout, "execution exceeded its timeout of %v", job.Timeout))
}

// lostConnMemory is how long a lost connection is remembered, so that the
// executions it carried count as one failure.
const lostConnMemory = time.Minute

// firstLoss reports whether a failure on conn is the first the breaker
// hears of that connection's loss: true for an unknown connection (nil:
// none was made), else once per connection.
func (c *Relay) firstLoss(conn net.Conn, now time.Time) bool {
	if conn == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, at := range c.lostConns {
		if now.Sub(at) > lostConnMemory {
			delete(c.lostConns, k)
		}
	}
	if _, seen := c.lostConns[conn]; seen {
		return false
	}
	if c.lostConns == nil {
		c.lostConns = map[net.Conn]time.Time{}
	}
	c.lostConns[conn] = now
	return true
}

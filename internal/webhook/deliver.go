package webhook

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dynamic-workers/gateway/internal/backoff"
)

// Headers sent with every delivery besides Header (the signature).
const (
	// DeliveryHeader carries the delivery's id, the same on every attempt,
	// so a receiver can drop a retry of a delivery it already took.
	DeliveryHeader = "Gateway-Delivery"
	// AttemptHeader carries the attempt's number, from 1.
	AttemptHeader = "Gateway-Delivery-Attempt"
)

// Defaults of Options.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxRetryTime = 10 * time.Minute
	DefaultMaxInFlight  = 8
	DefaultMaxQueued    = 1000
)

// maxResponseRead is how much of a receiver's answer is read (and
// dropped, never kept or logged) so the connection can be reused.
const maxResponseRead = 64 << 10

// Options configure a Deliverer. The zero value is usable: public
// addresses only, the defaults above, and a jittered backoff from 1 s to
// 1 min.
type Options struct {
	// Timeout bounds each attempt, from connecting to reading the status.
	Timeout time.Duration
	// MaxRetryTime bounds one delivery from its first attempt to its last:
	// no attempt starts, and no Retry-After is waited for, past it.
	MaxRetryTime time.Duration
	// MaxInFlight bounds the deliveries Submit runs at once; MaxQueued
	// bounds those waiting for a turn (Submit refuses more).
	MaxInFlight, MaxQueued int
	// Reach says which addresses callbacks may go to; the zero value is
	// public addresses only.
	Reach Reach
	// Backoff is the wait between attempts, unless the receiver sent
	// Retry-After.
	Backoff backoff.Policy
	// Resolver replaces the system resolver (tests).
	Resolver Resolver
	// UserAgent is sent as User-Agent.
	UserAgent string
	// TLSConfig, if set, replaces the default TLS settings, e.g. to trust
	// an internal receiver's certificate authority.
	TLSConfig *tls.Config
	// Tracer, if set, gives each attempt a span, under the span of the
	// context Deliver is given, whose traceparent the attempt sends.
	Tracer trace.Tracer
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRetryTime <= 0 {
		o.MaxRetryTime = DefaultMaxRetryTime
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	if o.Backoff.Min <= 0 && o.Backoff.Max <= 0 {
		o.Backoff = backoff.Policy{Min: time.Second, Max: time.Minute, Jitter: true}
	}
	if o.UserAgent == "" {
		o.UserAgent = "dynamic-workers-gateway-webhook"
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return o
}

// Delivery is one record to POST to one callback URL.
type Delivery struct {
	// ID goes out as DeliveryHeader; empty means a random one. Letters,
	// digits and "-_.:" only.
	ID string
	// URL is the callback URL (see ValidateCallbackURL).
	URL string
	// Body is the JSON sent; it is never logged or kept.
	Body []byte
	// Secret signs Body; PreviousSecrets, during a rotation, sign it too.
	Secret          []byte
	PreviousSecrets [][]byte
	// Earlier is how many attempts an earlier Deliver made (a delivery
	// resumed after a restart): AttemptHeader goes on from Earlier+1.
	Earlier int
	// BeforeAttempt, if set, is called with each attempt's number before it
	// is sent, from the goroutine running the delivery: a caller that keeps
	// the count where a restart finds it (Earlier) numbers the attempts of
	// a resumed delivery on from one a crash cut short. Its error stops the
	// delivery before the attempt.
	BeforeAttempt func(n int) error
	// OnAttempt, if set, is called after each attempt, in order, from the
	// goroutine running the delivery.
	OnAttempt func(Attempt)
}

// Attempt is one POST of a delivery, as kept in the execution record. In
// JSON: {"at", "status" (absent without an HTTP answer), "error" (absent
// on success), "durationMs"}.
type Attempt struct {
	At     time.Time
	Status int // 0: no HTTP answer
	// Error says why it failed, if it did, in the tenant's words: what
	// failed, never the gateway's resolver, the address a name resolved
	// to or Go's error text.
	Error    string
	Duration time.Duration
	// Cause is the full error of an attempt that got no HTTP answer, for
	// the gateway's log (never the URL, whose query may hold a token); it
	// is not kept in the record.
	Cause error
}

type attemptJSON struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMs float64   `json:"durationMs"`
}

// MarshalJSON writes the duration in milliseconds, to the microsecond.
func (a Attempt) MarshalJSON() ([]byte, error) {
	ms := float64(a.Duration.Round(time.Microsecond)) / float64(time.Millisecond)
	return json.Marshal(attemptJSON{a.At, a.Status, a.Error, ms})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var j attemptJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d := time.Duration(math.Round(j.DurationMs * float64(time.Millisecond)))
	*a = Attempt{At: j.At, Status: j.Status, Error: j.Error, Duration: d}
	return nil
}

// Result is how a delivery ended.
type Result struct {
	ID        string    `json:"id"`
	Delivered bool      `json:"delivered"`
	Reason    string    `json:"reason,omitempty"` // why not delivered
	Attempts  []Attempt `json:"attempts"`
}

// Deliverer POSTs records to callback URLs. It is safe for concurrent use.
type Deliverer struct {
	opts   Options
	client *http.Client
	dialer *dialer

	mu      sync.Mutex
	closed  bool
	queue   []pending
	workers int
	wg      sync.WaitGroup
	// soft ends on Close: no new attempt or wait starts. hard ends when
	// Close's grace is over: attempts still running are cut off.
	soft, hard         context.Context
	stopSoft, stopHard context.CancelFunc
}

// New returns a Deliverer with opts.
func New(opts Options) *Deliverer {
	opts = opts.withDefaults()
	d := &Deliverer{opts: opts, dialer: newDialer(opts.Resolver, opts.Reach)}
	transport := &http.Transport{
		Proxy:               nil, // a proxy would connect for us, past the address check
		DialContext:         d.dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        opts.MaxInFlight,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: opts.Timeout,
		TLSClientConfig:     opts.TLSConfig,
		// The receiver's head is read into memory: bound it as its body
		// is (the default is 10 MB, per delivery in flight).
		MaxResponseHeaderBytes: maxResponseRead,
	}
	d.client = &http.Client{
		Transport: transport,
		// Redirects are not followed: a 3xx ends the delivery.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.hard, d.stopHard = context.WithCancel(context.Background())
	d.soft, d.stopSoft = context.WithCancel(d.hard)
	return d
}

// Deliver POSTs dl.Body to dl.URL until it is taken (a 2xx), refused for
// good (a 3xx, or a 4xx other than 408 and 429), or the retry time is
// spent, waiting between attempts by the backoff policy or longer if the
// receiver's Retry-After asks. It returns when the delivery has ended, when
// ctx ends, or soon after Close, and reports every attempt made.
func (d *Deliverer) Deliver(ctx context.Context, dl Delivery) Result {
	if dl.ID == "" {
		dl.ID = newID()
	}
	res := Result{ID: dl.ID, Attempts: []Attempt{}}
	u, err := d.check(dl)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	deadline := time.Now().Add(d.opts.MaxRetryTime)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	defer context.AfterFunc(d.hard, cancel)()
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	defer context.AfterFunc(d.soft, cancelWait)()
	for n := 1; ; n++ {
		if d.soft.Err() != nil || ctx.Err() != nil {
			res.Reason = notDelivered(n-1, d.stopReason(ctx))
			return res
		}
		if dl.BeforeAttempt != nil {
			if err := dl.BeforeAttempt(dl.Earlier + n); err != nil {
				res.Reason = notDelivered(n-1, "stopped: "+err.Error())
				return res
			}
		}
		a, v, retryAfter := d.attempt(ctx, u, dl, dl.Earlier+n)
		res.Attempts = append(res.Attempts, a)
		if dl.OnAttempt != nil {
			dl.OnAttempt(a)
		}
		switch v {
		case delivered:
			res.Delivered = true
			return res
		case giveUp:
			res.Reason = a.Error
			return res
		}
		if reason := d.waitRetry(waitCtx, n, retryAfter, deadline); reason != "" {
			res.Reason = notDelivered(n, reason)
			return res
		}
	}
}

// check refuses a delivery that can never succeed.
func (d *Deliverer) check(dl Delivery) (string, error) {
	if !validID(dl.ID) {
		return "", errors.New("delivery id: letters, digits and -_.: only, at most 128")
	}
	if len(dl.Secret) == 0 {
		return "", fmt.Errorf("cannot sign the delivery: %w", ErrNoSecret)
	}
	u, err := parseCallbackURL(dl.URL, d.opts.Reach)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// waitRetry waits before attempt n+1 and returns "", or why there will be
// none. retryAfter < 0 means the receiver sent no Retry-After.
func (d *Deliverer) waitRetry(ctx context.Context, n int, retryAfter time.Duration, deadline time.Time) string {
	wait := d.opts.Backoff.Delay(n - 1)
	if retryAfter > wait {
		wait = retryAfter
	}
	if !time.Now().Add(wait).Before(deadline) {
		if retryAfter == wait {
			return fmt.Sprintf("the receiver asked to retry after %s, past the retry time of %s", wait, d.opts.MaxRetryTime)
		}
		return fmt.Sprintf("retry time of %s spent", d.opts.MaxRetryTime)
	}
	if err := d.opts.Backoff.Sleep(ctx, wait); err != nil {
		return d.stopReason(ctx)
	}
	return ""
}

// stopReason says why ctx, a delivery's context, ended.
func (d *Deliverer) stopReason(ctx context.Context) string {
	switch {
	case d.soft.Err() != nil:
		return "stopped: the deliverer was closed"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("retry time of %s spent", d.opts.MaxRetryTime)
	default:
		return "stopped: " + context.Cause(ctx).Error()
	}
}

func notDelivered(attempts int, reason string) string {
	plural := "s"
	if attempts == 1 {
		plural = ""
	}
	return fmt.Sprintf("not delivered after %d attempt%s: %s", attempts, plural, reason)
}

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "dlv_" + hex.EncodeToString(b)
}

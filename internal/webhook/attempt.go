package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// verdict is what an attempt's outcome means for the delivery.
type verdict int

const (
	retry verdict = iota
	delivered
	giveUp
)

// attempt makes attempt number n of dl to u. It returns the attempt as
// reported, what it means, and the receiver's Retry-After (-1 if none).
func (d *Deliverer) attempt(ctx context.Context, u string, dl Delivery, n int) (a Attempt, v verdict, retryAfter time.Duration) {
	start := time.Now()
	a = Attempt{At: start.UTC()}
	ctx, span := d.startSpan(ctx, u, dl, n)
	defer func() { endSpan(span, a) }()
	actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, u, bytes.NewReader(dl.Body))
	if err != nil {
		a.Error = "cannot build the request: " + urlErrorReason(err)
		return a, giveUp, -1
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.opts.UserAgent)
	req.Header.Set(Header, SignAll(append([][]byte{dl.Secret}, dl.PreviousSecrets...), start, dl.Body))
	req.Header.Set(DeliveryHeader, dl.ID)
	req.Header.Set(AttemptHeader, strconv.Itoa(n))
	if span.SpanContext().IsValid() {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may carry a token in its query
		}
		a.Duration = time.Since(start)
		v, reason := d.classifyError(ctx, actx, err)
		a.Error, a.Cause = reason, err
		return a, v, -1
	}
	// The answer is read, up to a cap, so the connection can be reused; it
	// is never kept or logged.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	_ = resp.Body.Close()
	a.Duration = time.Since(start)
	a.Status = resp.StatusCode
	v, reason := classifyStatus(resp.StatusCode)
	a.Error = reason
	retryAfter = time.Duration(-1)
	if v == retry {
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return a, v, retryAfter
}

// classifyStatus says what a receiver's status means, and why if it is not
// success.
func classifyStatus(code int) (verdict, string) {
	switch {
	case code >= 200 && code < 300:
		return delivered, ""
	case code >= 300 && code < 400:
		return giveUp, fmt.Sprintf("answered %d: redirects are not followed", code)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return retry, fmt.Sprintf("answered %d", code)
	case code >= 400 && code < 500:
		return giveUp, fmt.Sprintf("answered %d: a client error other than 408 or 429 is not retried", code)
	default:
		return giveUp, fmt.Sprintf("answered %d: not a final HTTP status", code)
	}
}

// classifyError says what a failed request means, and why it failed in
// the tenant's words. ctx is the delivery's, actx the attempt's.
func (d *Deliverer) classifyError(ctx, actx context.Context, err error) (verdict, string) {
	switch {
	case errors.Is(err, ErrRefusedAddress):
		return giveUp, tenantText(err)
	case ctx.Err() != nil:
		return giveUp, d.stopReason(ctx)
	case actx.Err() != nil:
		return retry, fmt.Sprintf("timed out: no answer within %s", d.opts.Timeout)
	default:
		return retry, tenantText(err)
	}
}

// maxRetryAfter bounds a Retry-After in seconds before it is converted, so
// that a huge number cannot overflow a Duration.
const maxRetryAfter = 366 * 24 * 3600

// parseRetryAfter reads a Retry-After value, seconds or an HTTP date, as a
// wait from now; -1 if there is none or it cannot be read.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(secs, maxRetryAfter)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// startSpan starts attempt n's span: the delivery's id and the attempt's
// number, and the receiver's host (never its URL: its query may hold a
// token).
func (d *Deliverer) startSpan(ctx context.Context, u string, dl Delivery, n int) (context.Context, trace.Span) {
	host := ""
	if pu, err := url.Parse(u); err == nil {
		host = pu.Hostname()
	}
	return d.opts.Tracer.Start(ctx, "webhook attempt", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("gateway.delivery_id", dl.ID),
		attribute.Int("gateway.delivery_attempt", n),
		attribute.String("http.request.method", http.MethodPost),
		attribute.String("server.address", host)))
}

// endSpan ends an attempt's span with its outcome.
func endSpan(span trace.Span, a Attempt) {
	if a.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", a.Status))
	}
	if a.Error != "" {
		span.SetStatus(codes.Error, a.Error)
	}
	span.End()
}

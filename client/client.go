// Package client calls a Dynamic Workers gateway: it runs Worker code with
// POST /execute and returns the result, or streams the execution's console
// output as it happens.
//
// The client speaks the wire types of package execution, the same types the
// gateway itself encodes, so the two cannot drift apart:
//
//	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(key))
//	res, err := c.Execute(ctx, &execution.Request{Code: code})
//
// An execution that ran is a result, not an error, whatever the guest did:
// check Result.Success and Result.Error. Errors are for requests the gateway
// refused (a *Error, decoded from its application/problem+json answer), a
// gateway that could not be reached, and cancelled contexts. Cancelling the
// context of a call hangs up, and the gateway then cancels the execution.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
)

// Media types of POST /execute.
const (
	mediaJSON    = "application/json"
	mediaNDJSON  = "application/x-ndjson"
	mediaProblem = "application/problem+json"
)

// userAgent identifies the client to the gateway.
const userAgent = "dynamic-workers-gateway-go-client"

// Client calls one gateway. Its zero value is not usable; make one with New.
// A Client is safe for concurrent use.
type Client struct {
	baseURL string
	apiKey  string
	hc      *http.Client
	retries int
}

// Option configures a Client made by New.
type Option func(*Client)

// New returns a client of the gateway at baseURL, such as
// "http://127.0.0.1:8080" (a path prefix is kept: "https://host/gw" calls
// "https://host/gw/execute").
func New(baseURL string, opts ...Option) *Client {
	c := &Client{baseURL: strings.TrimRight(baseURL, "/"), hc: http.DefaultClient}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// WithAPIKey sends key as a bearer token with every call. Without it the
// client sends no Authorization header, which a gateway with no keys
// configured accepts.
func WithAPIKey(key string) Option {
	return func(c *Client) { c.apiKey = key }
}

// WithHTTPClient makes the client send its requests with hc instead of
// http.DefaultClient. A timeout on hc also bounds streams; prefer deadlines
// on the context of each call.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithRetries makes the client try a call up to n more times when the
// gateway says a retry is safe: a 503 answer (runtime_unavailable: no
// runtime could take the execution, or storage_unavailable: nothing ran),
// after the wait its Retry-After header asks for, and, for Execute, a result
// whose error code is runtime_crashed (the runtime died under the
// execution) and whose outbound is empty (it had made no outbound request
// or capability call, which a retry would repeat). Nothing else is retried:
// not a record_not_stored (it ran), a guest's own failure, a timeout, or a
// quota refusal (429). A wait that would outlast the context's deadline is
// not started. The default is 0: no retries.
func WithRetries(n int) Option {
	return func(c *Client) { c.retries = max(n, 0) }
}

// Execute runs req and returns its result once the execution has ended.
// A result whose Success is false is returned with a nil error: the guest
// ran and failed, and Result.Error says how. The error is a *Error when the
// gateway refused the request, or the context's error when ctx ended first
// (which also cancels the execution on the gateway).
func (c *Client) Execute(ctx context.Context, req *execution.Request) (*execution.Result, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("client: encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		res, err := c.executeOnce(ctx, body)
		wait, retry := c.retryAfter(ctx, attempt, res, err)
		if !retry {
			return res, err
		}
		if err := retryBackoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *Client) executeOnce(ctx context.Context, body []byte) (*execution.Result, error) {
	resp, err := c.post(ctx, body, mediaJSON)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res execution.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("client: decode result: %w", err)
	}
	return &res, nil
}

// Stream runs req and returns its events as they happen: start, a log per
// console call, and exactly one result, last. The stream must be closed;
// closing it before the result hangs up, which cancels the execution, as
// does ending ctx. The error is a *Error when the gateway refused the
// request before the execution started.
//
// With WithRetries, opening the stream is retried on 503. A result with
// error code runtime_crashed is not: its events have been delivered.
func (c *Client) Stream(ctx context.Context, req *execution.Request) (*Stream, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("client: encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.post(ctx, body, mediaNDJSON)
		wait, retry := c.retryAfter(ctx, attempt, nil, err)
		if !retry {
			if err != nil {
				return nil, err
			}
			return newStream(ctx, resp), nil
		}
		if err := retryBackoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// post sends body to /execute asking for accept. Any answer but a 2xx one
// is returned as a *Error, its body read and closed.
func (c *Client) post(ctx context.Context, body []byte, accept string) (*http.Response, error) {
	return c.call(ctx, http.MethodPost, "/execute", body, accept)
}

// retryAfter decides whether attempt's outcome is retried, and after how long.
func (c *Client) retryAfter(ctx context.Context, attempt int, res *execution.Result, err error) (time.Duration, bool) {
	if attempt >= c.retries {
		return 0, false
	}
	var wait time.Duration
	var gwErr *Error
	switch {
	case errors.As(err, &gwErr) && gwErr.StatusCode == http.StatusServiceUnavailable:
		wait = retryBackoff.Delay(attempt)
		if gwErr.hasRetryAfter {
			wait = gwErr.RetryAfter
		}
	case err == nil && res != nil && res.Error != nil && res.Error.Code == execution.CodeRuntimeCrashed && len(res.Outbound) == 0:
		// Lost before it made any outbound request or capability call: it
		// had no side effect, so running it again is safe.
		wait = retryBackoff.Delay(attempt)
	default:
		return 0, false
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		return 0, false // the context would end first: answer now
	}
	return wait, true
}

// retryBackoff is the wait before retry attempt+1 when the gateway names
// none: 100ms doubling up to 5s, with jitter.
var retryBackoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: true}

// hasMediaType reports whether a Content-Type header names media.
func hasMediaType(contentType, media string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == media
}

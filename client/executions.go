package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dynamic-workers/gateway/execution"
)

// Submit queues req on the gateway (POST /executions) and returns at once
// with the execution's id; Get, Follow and Cancel take that id. A full
// queue is a *Error with Code CodeQueueFull and a RetryAfter (retried with
// WithRetries).
func (c *Client) Submit(ctx context.Context, req *execution.Submission) (*execution.Accepted, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("client: encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		var acc execution.Accepted
		err := c.callJSON(ctx, http.MethodPost, "/executions", body, &acc)
		wait, retry := c.retryAfter(ctx, attempt, nil, err)
		if !retry {
			if err != nil {
				return nil, err
			}
			return &acc, nil
		}
		if err := retryBackoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// Get returns execution id's record; its Result is set once it has
// finished. Another key's execution is a *Error with Code CodeNotFound.
func (c *Client) Get(ctx context.Context, id string) (*execution.Record, error) {
	var rec execution.Record
	if err := c.callJSON(ctx, http.MethodGet, "/executions/"+url.PathEscape(id), nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// ListOptions select the records List returns.
type ListOptions struct {
	Status string // execution.StatusQueued, …; empty: any
	Limit  int    // 1 to 100; 0: the gateway's default (20)
	Cursor string // the Next of the previous page
}

// List returns one page of the caller's records, newest first; pass its
// Next as the Cursor of the next call, until it is empty.
func (c *Client) List(ctx context.Context, opts ListOptions) (*execution.RecordList, error) {
	q := url.Values{}
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	path := "/executions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var list execution.RecordList
	if err := c.callJSON(ctx, http.MethodGet, path, nil, &list); err != nil {
		return nil, err
	}
	return &list, nil
}

// Cancel cancels execution id: a queued one at once, a running one as soon
// as its gateway stops it (the record says cancelled then). One that has
// ended, or a synchronous one, is a *Error with Code CodeNotCancellable.
func (c *Client) Cancel(ctx context.Context, id string) (*execution.Record, error) {
	var rec execution.Record
	if err := c.callJSON(ctx, http.MethodDelete, "/executions/"+url.PathEscape(id), nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// RecordedEvent is one event of an execution's record, with its id.
type RecordedEvent struct {
	ID int64
	execution.Event
}

// followRetries is how many times in a row Follow reconnects after a
// connection that failed before the stream's end.
const followRetries = 5

// Follow returns the events of execution id after event after (0: from
// the start), then each new one as it happens, until the execution has
// ended; for a range loop. A dropped connection is resumed after the last
// event read, so none is lost or repeated. A failure comes as a last pair
// with the error. A cancelled execution's events end without a result.
func (c *Client) Follow(ctx context.Context, id string, after int64) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		failures := 0
		for {
			done, err := c.followOnce(ctx, id, &after, yield)
			if done || err == nil {
				return
			}
			var gwErr *Error
			if errors.As(err, &gwErr) || ctx.Err() != nil || failures >= followRetries {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				yield(RecordedEvent{}, err)
				return
			}
			failures++
			if err := retryBackoff.Wait(ctx, failures-1); err != nil {
				yield(RecordedEvent{}, err)
				return
			}
		}
	}
}

// followOnce reads one connection's worth of events; done means the caller
// stopped the loop. A nil error means the stream ended: the execution has.
func (c *Client) followOnce(ctx context.Context, id string, after *int64, yield func(RecordedEvent, error) bool) (bool, error) {
	path := "/executions/" + url.PathEscape(id) + "/events?after=" + strconv.FormatInt(*after, 10)
	resp, err := c.call(ctx, http.MethodGet, path, nil, mediaNDJSON)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) == 0 {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("client: read events: %w", err)
		}
		var head struct {
			EventID int64 `json:"eventId"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return false, fmt.Errorf("client: bad event %.100q: %w", line, err)
		}
		ev, known, err := decodeEvent(line)
		if err != nil {
			return false, err
		}
		*after = head.EventID
		if known && !yield(RecordedEvent{ID: head.EventID, Event: ev}, nil) {
			return true, nil
		}
	}
}

// callJSON sends body (JSON, if any) and decodes the JSON answer into v.
func (c *Client) callJSON(ctx context.Context, method, path string, body []byte, v any) error {
	resp, err := c.call(ctx, method, path, body, mediaJSON)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("client: decode answer: %w", err)
	}
	return nil
}

// call sends a request to the gateway. Any answer but a 2xx one in accept
// is returned as an error (a *Error for a refusal), its body closed.
func (c *Client) call(ctx context.Context, method, path string, body []byte, accept string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, r)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", mediaJSON)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", userAgent)
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	if resp.StatusCode == http.StatusNoContent {
		return resp, nil // nothing to decode (DELETE /scripts/{name})
	}
	if !hasMediaType(resp.Header.Get("Content-Type"), accept) {
		resp.Body.Close()
		return nil, fmt.Errorf("client: gateway answered %q, want %s", resp.Header.Get("Content-Type"), accept)
	}
	return resp, nil
}

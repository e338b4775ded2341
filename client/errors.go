package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// Problem codes: the stable Code of an Error the gateway answered with.
// They are package execution's, under the names this package has always
// exported.
const (
	CodeMalformedJSON         = execution.ProblemMalformedJSON
	CodeUnsupportedMediaType  = execution.ProblemUnsupportedMediaType
	CodeBodyTooLarge          = execution.ProblemBodyTooLarge
	CodeInvalidRequest        = execution.ProblemInvalidRequest
	CodeNotFound              = execution.ProblemNotFound
	CodeMethodNotAllowed      = execution.ProblemMethodNotAllowed
	CodeNotAcceptable         = execution.ProblemNotAcceptable
	CodeUnauthorized          = execution.ProblemUnauthorized
	CodeForbiddenHost         = execution.ProblemForbiddenHost
	CodeInsufficientScope     = execution.ProblemInsufficientScope
	CodeUnknownParameter      = execution.ProblemUnknownParameter
	CodeRateLimited           = execution.ProblemRateLimited
	CodeConcurrencyLimited    = execution.ProblemConcurrencyLimited
	CodeRuntimeUnavailable    = execution.ProblemRuntimeUnavailable
	CodeInternal              = execution.ProblemInternal
	CodeQueueFull             = execution.ProblemQueueFull
	CodeQueueLimited          = execution.ProblemQueueLimited
	CodeNotCancellable        = execution.ProblemNotCancellable
	CodeStorageUnavailable    = execution.ProblemStorageUnavailable
	CodeRecordNotStored       = execution.ProblemRecordNotStored
	CodeDependencyNotFound    = execution.ProblemDependencyNotFound
	CodeDependencyDenied      = execution.ProblemDependencyDenied
	CodeDependencyTooLarge    = execution.ProblemDependencyTooLarge
	CodeDependencyUnavailable = execution.ProblemDependencyUnavailable
	CodeScriptsFull           = execution.ProblemScriptsFull
)

// ErrIncompleteStream means a stream ended before its result event: the
// connection to the gateway was cut.
var ErrIncompleteStream = errors.New("client: stream ended without a result")

// Error is a gateway's refusal of a request: any answer but 2xx, decoded
// from its RFC 9457 application/problem+json body. Find it with errors.As:
//
//	var gwErr *client.Error
//	if errors.As(err, &gwErr) && gwErr.Code == client.CodeInvalidRequest { … }
//
// An answer that is not a problem (say, from a proxy in front of the
// gateway) has an empty Code and the start of its body as Detail.
type Error struct {
	// Problem is the gateway's problem: its Code (Code* constants), Type,
	// Title, Detail, Instance (the refused execution's id, if it got one)
	// and, for an invalid request (422), Errors, every problem found.
	execution.Problem
	// StatusCode is the HTTP status of the answer.
	StatusCode int `json:"-"`
	// RetryAfter is how long the gateway asked to wait before trying again
	// (its Retry-After header, with 429 and 503); 0 if it named no wait.
	RetryAfter time.Duration `json:"-"`

	hasRetryAfter bool
}

// FieldError is one problem found in a request the gateway judged invalid:
// Field, such as "timeoutMs" or "compatibilityFlags[1]"; Code, the kind of
// problem, such as "required" or "out_of_range"; Detail, for people.
type FieldError = execution.FieldProblem

// Error describes the refusal: status, code and detail.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gateway answered %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// maxErrorBody bounds how much of a refusal's body is read.
const maxErrorBody = 64 << 10

// responseError reads a non-2xx answer into an *Error.
func responseError(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	e.RetryAfter, e.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if hasMediaType(resp.Header.Get("Content-Type"), mediaProblem) && json.Unmarshal(data, e) == nil {
		return e
	}
	e.Detail = strings.TrimSpace(string(data))
	if len(e.Detail) > 200 {
		e.Detail = e.Detail[:200] + "…"
	}
	if e.Detail == "" {
		e.Detail = http.StatusText(resp.StatusCode)
	}
	return e
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/rs/zerolog/hlog"
)

// Problem is an RFC 9457 problem detail, the one error type of the API.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Code     string         `json:"code"`
	Instance string         `json:"instance,omitempty"`
	Errors   []FieldProblem `json:"errors,omitempty"`

	retryAfter int // seconds; sent as Retry-After when positive
}

// FieldProblem is one problem found while validating a request.
type FieldProblem struct {
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// problemTypeBase prefixes every problem's type URI; the fragment is its code,
// documented in openapi.yaml.
const problemTypeBase = "https://dynamic-workers.dev/problems#"

func newProblem(status int, code, detail string) *Problem {
	return &Problem{
		Type:   problemTypeBase + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// toProblem maps any error a handler returns to the problem sent for it.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var rejected *execution.RejectedError
	if errors.As(err, &rejected) {
		field := rejected.Field
		if field == "" {
			field = "(request)"
		}
		p := newProblem(http.StatusUnprocessableEntity, execution.ProblemInvalidRequest, "the runtime rejected the request")
		p.Errors = []FieldProblem{{Field: field, Code: "rejected_by_runtime", Detail: rejected.Message}}
		return p
	}
	var limited *execution.RateLimitedError
	if errors.As(err, &limited) {
		p := newProblem(http.StatusServiceUnavailable, execution.ProblemRuntimeUnavailable, "the runtime's host is rate limiting the gateway; retry after Retry-After seconds")
		p.retryAfter = max(1, int(math.Ceil(limited.RetryAfter.Seconds())))
		return p
	}
	if errors.Is(err, errRecordLost) {
		// Not a 503: the execution ran, so a blind retry could run it twice.
		return newProblem(http.StatusInternalServerError, execution.ProblemRecordNotStored,
			"the execution ran, but its record could not be stored (the store refuses writes), so its result is not reported; the gateway keeps trying to store it, under the id in instance")
	}
	if errors.Is(err, ErrStorageFailing) {
		return storageProblem()
	}
	if errors.Is(err, execution.ErrUnavailable) {
		p := newProblem(http.StatusServiceUnavailable, execution.ProblemRuntimeUnavailable, "no runtime can take the execution now; retry later")
		p.retryAfter = 1
		return p
	}
	return newProblem(http.StatusInternalServerError, execution.ProblemInternal, "internal error")
}

// writeProblem renders err as application/problem+json. Details of internal
// errors are logged, never sent.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := toProblem(err)
	if p.Status >= 500 {
		hlog.FromRequest(r).Error().Err(err).Msg("request failed")
	}
	p.Instance = executionID(r.Context())
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	encode(w, p.Status, "application/problem+json", p)
}

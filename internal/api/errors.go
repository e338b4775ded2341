package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/rs/zerolog/hlog"

	"github.com/dynamic-workers/gateway/execution"
)

// Problem is the API's one error type, rendered as RFC 9457
// application/problem+json: execution.Problem, whose code has its status.
type Problem = execution.Problem

// FieldProblem is one problem of a request's field.
type FieldProblem = execution.FieldProblem

// toProblem is the problem sent for err: its own if it is one, else an
// internal error (whose details are logged, never sent).
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		sent := *p // each request sets its own instance
		return &sent
	}
	return execution.NewProblem(execution.ProblemInternal, "internal error")
}

// writeProblem renders err as application/problem+json. Details of internal
// errors are logged, never sent.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := toProblem(err)
	if p.Status >= 500 {
		hlog.FromRequest(r).Error().Err(err).Msg("request failed")
	}
	// The execution the request started, else the request: the id its
	// log lines carry.
	p.Instance = executionID(r.Context())
	if p.Instance == "" {
		p.Instance = infoOf(r.Context()).id
	}
	h := w.Header()
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	if p.Quota > 0 {
		h.Set("X-RateLimit-Limit", strconv.Itoa(p.Quota))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.Itoa(p.RetryAfter))
	}
	encode(w, p.Status, "application/problem+json", p)
}

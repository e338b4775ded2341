package executions

import (
	"errors"
	"math"

	"github.com/dynamic-workers/gateway/execution"
)

// toProblem maps an error that kept an execution from running to the
// problem it is for the caller: a runtime's refusal of the request (422
// naming the field), no runtime free (503), the runtime's host rate
// limiting the gateway (503 with its wait). A *Problem, and any other
// error (a front door's own, passed back through its emit), is returned
// as it is.
func toProblem(err error) error {
	var rejected *execution.RejectedError
	if errors.As(err, &rejected) {
		field := rejected.Field
		if field == "" {
			field = "(request)"
		}
		p := execution.NewProblem(execution.ProblemInvalidRequest, "the runtime rejected the request")
		p.Errors = []execution.FieldProblem{{Field: field, Code: execution.FieldRejectedByRuntime, Detail: rejected.Message}}
		return p
	}
	var limited *execution.RateLimitedError
	if errors.As(err, &limited) {
		return execution.NewProblem(execution.ProblemRuntimeUnavailable, "the runtime's host is rate limiting the gateway; retry after Retry-After seconds").
			WithRetryAfter(max(1, int(math.Ceil(limited.RetryAfter.Seconds()))))
	}
	var busy *execution.BusyError
	if errors.As(err, &busy) {
		return execution.NewProblem(execution.ProblemRuntimeUnavailable, busy.Reason+"; retry after Retry-After seconds").
			WithRetryAfter(max(1, int(math.Ceil(busy.RetryAfter.Seconds()))))
	}
	if errors.Is(err, execution.ErrUnavailable) {
		return execution.NewProblem(execution.ProblemRuntimeUnavailable, "no runtime can take the execution now; retry later").WithRetryAfter(1)
	}
	return err
}

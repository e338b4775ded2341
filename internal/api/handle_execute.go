package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader"
)

// handleExecute serves POST /execute: it validates the request, runs it on
// the backend and answers with the aggregated result.
func handleExecute(backend Backend, maxBody int64, limits Limits, now func() time.Time) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		members, err := readJSONObject(w, r, maxBody)
		if err != nil {
			return err
		}
		job, problems := validateExecute(members, limits, now())
		if problems != nil {
			p := newProblem(http.StatusUnprocessableEntity, CodeInvalidRequest, summarize(problems))
			p.Errors = problems
			return p
		}
		job.ID = executionID(r.Context())

		start := time.Now()
		res, err := aggregate(r.Context(), backend, job)
		if err != nil {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				hlog.FromRequest(r).Info().Msg("client went away; execution cancelled")
				return nil
			}
			return err
		}
		res.ID = job.ID
		res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
		newMasker(job.Secrets).result(res)
		logOutcome(r, res)
		encode(w, http.StatusOK, "application/json", res)
		return nil
	}
}

// aggregate runs job and folds its events into one result.
func aggregate(ctx context.Context, backend Backend, job *loader.Job) (*execution.Result, error) {
	logs := []execution.Log{}
	var stdout, stderr []string
	var final *execution.Result
	err := backend.Execute(ctx, job, func(ev execution.Event) error {
		switch ev.Type {
		case execution.EventLog:
			logs = append(logs, *ev.Log)
			if ev.Log.Stream == execution.StreamStderr {
				stderr = append(stderr, ev.Log.Message)
			} else {
				stdout = append(stdout, ev.Log.Message)
			}
		case execution.EventResult:
			final = ev.Result
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if final == nil {
		return nil, errors.New("backend ended the execution without a result")
	}
	final.Logs = logs
	final.Stdout = strings.Join(stdout, "\n")
	final.Stderr = strings.Join(stderr, "\n")
	if final.Outbound == nil {
		final.Outbound = []execution.Outgoing{}
	}
	return final, nil
}

func logOutcome(r *http.Request, res *execution.Result) {
	ev := hlog.FromRequest(r).Info().Bool("success", res.Success).Float64("execution_ms", res.DurationMs).Int("logs", len(res.Logs))
	if res.Error != nil {
		ev = ev.Str("error_code", string(res.Error.Code))
	}
	ev.Msg("execution finished")
}

func summarize(problems []FieldProblem) string {
	if len(problems) == 1 {
		return problems[0].Detail
	}
	return problems[0].Detail + " (and " + strconv.Itoa(len(problems)-1) + " more problems)"
}

// masker replaces secret values with [REDACTED] in an execution's output.
type masker struct {
	replacer *strings.Replacer
}

const redacted = "[REDACTED]"

func newMasker(secrets []string) masker {
	if len(secrets) == 0 {
		return masker{}
	}
	// Longest first, so a secret that contains another is masked whole.
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(sorted))
	for _, s := range sorted {
		pairs = append(pairs, s, redacted)
	}
	return masker{replacer: strings.NewReplacer(pairs...)}
}

func (m masker) mask(s string) string {
	if m.replacer == nil {
		return s
	}
	return m.replacer.Replace(s)
}

func (m masker) result(res *execution.Result) {
	if m.replacer == nil {
		return
	}
	for i := range res.Logs {
		res.Logs[i].Message = m.mask(res.Logs[i].Message)
	}
	res.Stdout = m.mask(res.Stdout)
	res.Stderr = m.mask(res.Stderr)
	if res.Error != nil {
		res.Error.Message = m.mask(res.Error.Message)
		res.Error.Stack = m.mask(res.Error.Stack)
	}
	if res.Response != nil {
		if res.Response.BodyEncoding == execution.EncodingUTF8 {
			res.Response.Body = m.mask(res.Response.Body)
		}
		for k, v := range res.Response.Headers {
			res.Response.Headers[k] = m.mask(v)
		}
	}
}

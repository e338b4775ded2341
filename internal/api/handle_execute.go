package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/redact"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

// handleExecute serves POST /execute: it validates the request, runs it on
// the backend and renders its events, as one JSON result or as a stream
// (NDJSON or SSE) as the Accept header asks. Both renderings consume the same
// events through the same collector.
func handleExecute(backend execution.Backend, opts Options) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		media, err := negotiate(r.Header.Get("Accept"))
		if err != nil {
			return err
		}
		members, err := readJSONObject(w, r, opts.MaxRequestBytes)
		if err != nil {
			return err
		}
		job, problems := validateExecute(members, opts.Limits, opts.Now())
		problems = append(problems, grantCapabilities(members, job, opts.Capabilities, callerOf(r.Context()).name)...)
		if problems != nil {
			p := newProblem(http.StatusUnprocessableEntity, execution.ProblemInvalidRequest, summarize(problems))
			p.Errors = problems
			return p
		}
		if err := opts.History.Ready(); err != nil {
			return err // its record could not be kept: nothing runs
		}
		job.ID = executionID(r.Context())
		job.Buffered = media == mediaJSON
		hash := codeHash(job)

		// The backend hands events to out, which never blocks on the client:
		// the runtime is free once the result is in, however slowly the
		// client reads; close then waits for the client, within bounds.
		out := opts.History.record(newSink(w, r, media, opts), job, callerOf(r.Context()).name)
		defer out.close()
		col := newCollector(job, opts.Limits.MaxLogLineBytes, opts.Limits.MaxLogBytes)
		m := opts.Metrics
		if ts, syntax, err := transpileIfNeeded(job); err != nil {
			return err
		} else if syntax != nil {
			// The TypeScript does not parse: nothing runs.
			_ = out.event(execution.Event{Type: execution.EventStart, ID: job.ID})
			col.result(syntax)
			_ = out.event(execution.Event{Type: execution.EventResult, Result: syntax})
			return finish(r, job, hash, out, col, syntax, nil, m)
		} else {
			col.ts = ts
		}
		job.Caller = callerOf(r.Context()).name
		if job.ReuseKey != "" {
			job.ReuseKey = reuseKey(job.Caller, job)
		}
		var final *execution.Result
		m.InFlight.Inc()
		defer m.InFlight.Dec()
		err = backend.Execute(r.Context(), job, col.passOn(m, time.Now(), &final, out.event))
		return finish(r, job, hash, out, col, final, err, m)
	}
}

// finish logs how an execution ended and makes sure that a started stream
// ends with exactly one result event.
func finish(r *http.Request, job *execution.Job, hash string, out sink, col *collector, final *execution.Result, err error, m *metrics.Metrics) error {
	log := hlog.FromRequest(r)
	if r.Context().Err() != nil {
		log.Info().Msg("client went away; execution cancelled")
		return nil
	}
	if err == nil && final == nil {
		err = errors.New("backend ended the execution without a result")
	}
	if err != nil {
		if !out.started() {
			return err // nothing sent yet: a problem response
		}
		if errors.Is(err, errSlowClient) || errors.Is(err, errLifetime) {
			// The outbox counted and logged it; the client is the cause.
			log.Info().Err(err).Msg("execution cancelled: the client reads too slowly")
			return nil
		}
		if errors.Is(err, errRecordLost) {
			// Its result is not sent as if it were kept: the stream is cut.
			log.Error().Err(err).Msg("execution ended but its record could not be stored; stream cut")
			out.abort(err)
			return nil
		}
		log.Error().Err(err).Msg("execution failed mid-stream")
		if final == nil {
			res := &execution.Result{Error: &execution.Error{Code: execution.CodeRuntimeCrashed, Message: "the gateway lost the execution; safe to retry"}}
			col.result(res)
			_ = out.event(execution.Event{Type: execution.EventResult, Result: res})
		}
		return nil
	}
	audit(log, job, hash, final, col.lines)
	observe(m, final, col.bytes)
	return nil
}

// observe counts a finished execution in the metrics.
func observe(m *metrics.Metrics, res *execution.Result, logBytes int) {
	outcome := "success"
	if res.Error != nil {
		outcome = string(knownCode(res.Error.Code))
	}
	m.Executions.WithLabelValues(outcome).Inc()
	m.ExecutionSeconds.WithLabelValues(outcome).Observe(res.DurationMs / 1000)
	m.LogBytes.Add(float64(logBytes))
	if res.Truncated {
		m.Truncations.Inc()
	}
	for _, o := range res.Outbound {
		if o.Denied {
			m.Outbound.WithLabelValues("denied").Inc()
		} else {
			m.Outbound.WithLabelValues("allowed").Inc()
		}
	}
}

// knownCode is c if it is one of the error codes, else exception: metric
// labels and the audit line take only codes from the fixed set, whatever a
// backend let through.
func knownCode(c execution.Code) execution.Code {
	if c.Known() {
		return c
	}
	return execution.CodeException
}

// audit writes the execution's audit line: who (the key name is on the
// request's logger), what code (its hash, never its text), which options,
// and how it ended. Env and secret values are never logged.
func audit(log *zerolog.Logger, job *execution.Job, hash string, res *execution.Result, lines int) {
	outbound := "none"
	if job.Egress != nil {
		outbound = strings.Join(job.Egress.Hosts, ",")
	}
	ev := log.Info().
		Str("code_sha256", hash).
		Int("modules", len(job.Modules)).
		Str("compatibility_date", job.CompatibilityDate).
		Strs("compatibility_flags", job.CompatibilityFlags).
		Str("outbound", outbound).
		Strs("capabilities", slices.Sorted(maps.Keys(job.Capabilities))).
		Int64("timeout_ms", job.Timeout.Milliseconds()).
		Int("env", len(job.Env)).
		Bool("success", res.Success).
		Float64("execution_ms", res.DurationMs).
		Int("logs", lines).
		Int("outbound_requests", len(res.Outbound)).
		Bool("truncated", res.Truncated)
	if res.Error != nil {
		ev = ev.Str("error_code", string(knownCode(res.Error.Code)))
	}
	ev.Msg("execution finished")
}

// transpileIfNeeded bundles an execution with TypeScript modules into one
// JavaScript module, in place. A syntax error comes back as the result to
// answer with.
func transpileIfNeeded(job *execution.Job) (*transpile.Output, *execution.Result, error) {
	needed := false
	for name := range job.Modules {
		needed = needed || transpile.IsTypeScript(name)
	}
	if !needed {
		return nil, nil, nil
	}
	out, err := transpile.Bundle(job.Modules, job.MainModule)
	var syntax *transpile.Error
	if errors.As(err, &syntax) {
		msg := "SyntaxError: " + syntax.Message
		stack := msg // the compiler failed on the whole source, at no one position
		if syntax.File != "" {
			stack = fmt.Sprintf("%s\n    at %s:%d:%d", msg, syntax.File, syntax.Line, syntax.Column)
		}
		return nil, &execution.Result{Error: &execution.Error{
			Code:    execution.CodeSyntaxError,
			Message: msg,
			Stack:   stack,
		}}, nil
	}
	if errors.Is(err, transpile.ErrBusy) {
		return nil, nil, fmt.Errorf("%w: %w", execution.ErrUnavailable, err) // 503, retry later
	}
	if err != nil {
		return nil, nil, err
	}
	job.Modules = map[string]string{out.Module: out.Code}
	job.MainModule = out.Module
	return out, nil, nil
}

// reuseKey names the warm isolate an execution may share: SHA-256 over the
// caller's key name (an isolate is never shared between two API keys) and
// everything the isolate is made of: modules, env and secrets,
// compatibility date and flags, outbound policy, limits, output caps and
// capabilities.
// The request the guest gets is not part of it.
func reuseKey(caller string, job *execution.Job) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s", len(caller), caller)
	identity := struct {
		Modules            map[string]string
		MainModule         string
		Env                map[string]any
		CompatibilityDate  string
		CompatibilityFlags []string
		Outbound           *execution.EgressPolicy
		Limits             *execution.Limits
		Caps               [3]int64
		Capabilities       map[string]execution.Capability
	}{job.Modules, job.MainModule, job.Env, job.CompatibilityDate, job.CompatibilityFlags, job.Egress, job.Limits,
		[3]int64{job.MaxResponseBytes, int64(job.MaxLogLineBytes), int64(job.MaxLogBytes)}, job.Capabilities}
	_ = json.NewEncoder(h).Encode(identity) // map keys are sorted, so equal jobs hash equal
	return "r_" + hex.EncodeToString(h.Sum(nil))
}

// codeHash identifies an execution's code: SHA-256 over its modules' names
// and sources in name order.
func codeHash(job *execution.Job) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(job.Modules)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(name), name, len(job.Modules[name]), job.Modules[name])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func summarize(problems []FieldProblem) string {
	if len(problems) == 1 {
		return problems[0].Detail
	}
	return problems[0].Detail + " (and " + strconv.Itoa(len(problems)-1) + " more problems)"
}

// maskResult masks what the guest returned: the error, the outbound
// requests, and the response's body (the bytes of a binary one) and header
// names and values. Stdout and stderr are built from logs masked already.
func maskResult(m *redact.Masker, res *execution.Result) {
	if m == nil {
		return
	}
	for i := range res.Outbound {
		res.Outbound[i].Method = m.Mask(res.Outbound[i].Method)
		res.Outbound[i].URL = m.Mask(res.Outbound[i].URL)
	}
	if res.Error != nil {
		res.Error.Message = m.Mask(res.Error.Message)
		res.Error.Stack = m.Mask(res.Error.Stack)
	}
	if r := res.Response; r != nil {
		raw, err := base64.StdEncoding.DecodeString(r.Body)
		if r.BodyEncoding == execution.EncodingBase64 && err == nil {
			// Mask the bytes of a binary body too; it stays base64.
			if masked := m.Mask(string(raw)); masked != string(raw) {
				r.Body = base64.StdEncoding.EncodeToString([]byte(masked))
			}
		} else {
			// utf8, or whatever else a backend let through: as text.
			r.Body = m.Mask(r.Body)
		}
		r.Headers = maskHeaders(m, r.Headers)
	}
}

// maskHeaders masks header names and values. Names that mask alike are
// merged as a repeated header is: values joined with ", ", in name order.
func maskHeaders(m *redact.Masker, h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for _, name := range slices.Sorted(maps.Keys(h)) {
		k, v := m.Mask(name), m.Mask(h[name])
		if prev, ok := out[k]; ok {
			v = prev + ", " + v
		}
		out[k] = v
	}
	return out
}

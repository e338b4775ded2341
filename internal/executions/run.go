package executions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/dynamic-workers/gateway/internal/tracing"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

// Run runs a synchronous execution (execution.Service).
func (s *Service) Run(ctx context.Context, c execution.Caller, req execution.RunRequest, emit func(execution.Event) error) error {
	_, admission := s.span(ctx, "admission", req.ID, c.Name)
	job, done, err := s.admit(ctx, c, req)
	endSpan(admission, err)
	if err != nil {
		return err
	}
	defer done()
	emit = endsWith(emit, done) // its slot is free before its client has the result
	job.ID = req.ID
	job.Buffered = req.Buffered
	log := zerolog.Ctx(ctx)
	out := emit
	if s.writer != nil {
		rec := s.recordSync(emit, job, c.Name, tracing.Traceparent(ctx))
		defer rec.end()
		out = rec.event
	}
	col := newCollector(job, s.opts.Limits.MaxLogLineBytes, s.opts.Limits.MaxLogBytes)
	final, err := s.execute(ctx, job, col, out, false)
	switch {
	case ctx.Err() != nil:
		log.Info().Msg("client went away; execution cancelled")
		return ctx.Err()
	case err != nil && final == nil:
		return toProblem(err) // nothing ran (a refusal), or the front door's own error
	case err != nil:
		return err
	}
	s.finished(log, job, col, final)
	return nil
}

// endsWith is emit calling done before it passes on the result.
func endsWith(emit func(execution.Event) error, done func()) func(execution.Event) error {
	return func(ev execution.Event) error {
		if ev.Type == execution.EventResult {
			done()
		}
		return emit(ev)
	}
}

// admit admits a synchronous execution of c's: under the key's quotas (done
// frees its place), valid, granted, with a store that takes its record.
func (s *Service) admit(ctx context.Context, c execution.Caller, req execution.RunRequest) (*execution.Job, func(), error) {
	if err := s.refuseStopping(); err != nil {
		return nil, nil, err
	}
	if err := s.limiter.start(ctx, c, time.Now()); err != nil {
		return nil, nil, s.limited(ctx, c, "rate", err)
	}
	done, err := s.limiter.run(ctx, c, req.ID)
	if err != nil {
		return nil, nil, s.limited(ctx, c, "concurrency", err)
	}
	job, problem := s.prepare(ctx, c.Name, req.Body)
	if problem != nil {
		done()
		return nil, nil, problem
	}
	if s.writer != nil {
		if err := s.writer.Ready(); err != nil {
			done()
			return nil, nil, err // its record could not be kept: nothing runs
		}
	}
	return job, done, nil
}

// limited counts and logs (on the request's logger, which names the key)
// a refusal of c over a quota of kind; a store that could not count is
// not a refusal of c's.
func (s *Service) limited(ctx context.Context, c execution.Caller, kind string, err error) error {
	var p *execution.Problem
	if !errors.As(err, &p) || (p.Code != execution.ProblemRateLimited && p.Code != execution.ProblemConcurrencyLimited) {
		return err
	}
	s.m.Limited.WithLabelValues(c.Name, kind).Inc()
	zerolog.Ctx(ctx).Warn().Msg(kind + " limited")
	return err
}

// prepare validates a request of caller's and grants its capabilities:
// the job to run, or the problem of every member at fault.
func (s *Service) prepare(ctx context.Context, caller string, body map[string]json.RawMessage) (*execution.Job, *execution.Problem) {
	job, problems := validateExecute(body, s.opts.Limits, s.opts.Now())
	problems = append(problems, grantCapabilities(body, job, s.opts.Capabilities, caller)...)
	if problems != nil {
		return nil, execution.InvalidRequest(problems)
	}
	if job.Script != "" {
		if p := s.loadScript(ctx, caller, job); p != nil {
			return nil, p
		}
	}
	if problems, refused := s.checkDependencies(job); problems != nil {
		return nil, execution.InvalidRequest(problems)
	} else if refused != nil {
		return nil, refused
	}
	job.Caller = caller
	if job.Egress != nil {
		job.Egress.DenyHosts = s.opts.Capabilities.hosts()
	}
	asScript(job)
	if job.ReuseKey != "" {
		job.ReuseKey = reuseKey(caller, job)
	}
	return job, nil
}

// execute is the one path of an execution, synchronous or queued: it
// compiles its TypeScript (a syntax error is its result), runs it on the
// backend, passing each event through col to out, and makes sure one that
// started ends with exactly one result. A queued execution (queued) waits,
// with backoff, while no runtime or compiler is free, and a runtime's
// refusal of its request is its result; a synchronous one is refused for
// both (the error comes back, with nothing emitted). out's own error comes
// back as it is: it ends the execution.
func (s *Service) execute(ctx context.Context, job *execution.Job, col *collector, out func(execution.Event) error, queued bool) (final *execution.Result, err error) {
	ctx, span := s.span(ctx, "execution", job.ID, job.Caller)
	defer func() { endExecution(span, final, err) }()
	t := &tap{out: out}
	wait := backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: true}
	var deps *installed
	for attempt := 0; ; attempt++ {
		var err error
		deps, err = s.dependencies(ctx, job)
		var p *execution.Problem
		switch {
		case err == nil:
		case !queued || ctx.Err() != nil:
			return nil, err // refused: nothing ran
		case errors.As(err, &p) && p.Code == execution.ProblemDependencyUnavailable:
			if err := wait.Wait(ctx, attempt); err != nil {
				return nil, err
			}
			continue // the registry failed: the execution waits in line
		case errors.As(err, &p):
			return col.end(invalidModule(p.Detail), t)
		default:
			return nil, err
		}
		break
	}
	var ts *transpile.Output
	for attempt := 0; ; attempt++ {
		var syntax *execution.Result
		var err error
		ts, syntax, err = s.transpile(ctx, job)
		if syntax == nil && err == nil && deps != nil {
			syntax, err = s.bundle(ctx, job, deps, t)
		}
		switch {
		case errors.Is(err, execution.ErrUnavailable) && queued:
			if err := wait.Wait(ctx, attempt); err != nil {
				return nil, err
			}
			continue
		case err != nil && !queued:
			return nil, err
		case err != nil:
			s.log.Error().Err(err).Str("execution_id", job.ID).Msg("preparing a queued execution failed")
			syntax = &execution.Result{Error: &execution.Error{Code: execution.CodeRuntimeCrashed, Message: "the gateway could not prepare the execution"}}
		}
		if syntax != nil {
			return col.end(syntax, t)
		}
		break
	}
	col.ts = ts
	s.m.InFlight.Inc()
	defer s.m.InFlight.Dec()
	for attempt := 0; ; attempt++ {
		rctx, runtime := s.span(ctx, "runtime", job.ID, job.Caller)
		job.Trace = tracing.Traceparent(rctx)
		col.calls = func(calls []execution.Outgoing) { s.callSpans(rctx, job.ID, job.Caller, calls) }
		err := s.backend.Execute(ctx, job, col.passOn(s.m, time.Now(), &final, t.emit))
		endSpan(runtime, err)
		var rejected *execution.RejectedError
		switch {
		case t.err != nil && errors.Is(err, t.err), ctx.Err() != nil:
			return final, err // the front door's, or its caller went away
		case errors.As(err, &rejected) && queued:
			// What a synchronous execution's refusal says, as its result.
			return col.end(&execution.Result{Error: &execution.Error{Code: execution.CodeInvalidModule, Message: rejected.Error()}}, t)
		case errors.Is(err, execution.ErrUnavailable) && final == nil && queued:
			if err := wait.Wait(ctx, attempt); err != nil {
				return nil, err
			}
			continue // no runtime was free: the execution waits in line
		case err == nil && final == nil:
			err = errors.New("backend ended the execution without a result")
		}
		if err != nil && final == nil && (t.started || queued) {
			// It started and lost its result: it ends with one still.
			s.log.Error().Err(err).Str("execution_id", job.ID).Msg("execution failed mid-stream")
			return col.end(&execution.Result{Error: &execution.Error{Code: execution.CodeRuntimeCrashed, Message: "the gateway lost the execution; safe to retry"}}, t)
		}
		return final, err
	}
}

// tap passes events on to out, noting whether any went and out's error.
type tap struct {
	out     func(execution.Event) error
	started bool
	err     error
}

func (t *tap) emit(ev execution.Event) error {
	t.started = true
	if err := t.out(ev); err != nil {
		t.err = err
		return err
	}
	return nil
}

// finished audits and counts an execution that ended with final.
func (s *Service) finished(log *zerolog.Logger, job *execution.Job, col *collector, final *execution.Result) {
	audit(log, job, codeHash(job), final, col.lines)
	observe(s.m, final, col.bytes)
}

// transpile is transpileIfNeeded in a span of its own, when there is
// TypeScript to bundle.
func (s *Service) transpile(ctx context.Context, job *execution.Job) (*transpile.Output, *execution.Result, error) {
	if !hasTypeScript(job) {
		return nil, nil, nil
	}
	_, span := s.span(ctx, "transpile", job.ID, job.Caller)
	ts, syntax, err := transpileIfNeeded(job)
	if syntax != nil {
		span.SetStatus(codes.Error, string(execution.CodeSyntaxError))
	}
	endSpan(span, err)
	return ts, syntax, err
}

// dependencies is resolve in a span of its own, when there are
// dependencies to resolve.
func (s *Service) dependencies(ctx context.Context, job *execution.Job) (*installed, error) {
	if len(job.Dependencies) == 0 || job.DependencyKey != "" {
		return nil, nil
	}
	ctx, span := s.span(ctx, "dependencies", job.ID, job.Caller)
	in, err := s.resolve(ctx, job)
	endSpan(span, err)
	return in, err
}

// bundle is attach in a span of its own.
func (s *Service) bundle(ctx context.Context, job *execution.Job, in *installed, t *tap) (*execution.Result, error) {
	ctx, span := s.span(ctx, "bundle", job.ID, job.Caller)
	invalid, err := s.attach(ctx, job, in, t)
	if invalid != nil {
		span.SetStatus(codes.Error, string(execution.CodeInvalidModule))
	}
	endSpan(span, err)
	return invalid, err
}

func hasTypeScript(job *execution.Job) bool {
	for name := range job.Modules {
		if transpile.IsTypeScript(name) {
			return true
		}
	}
	return false
}

// transpileIfNeeded bundles an execution with TypeScript modules into one
// JavaScript module, in place. A syntax error comes back as the result to
// answer with.
func transpileIfNeeded(job *execution.Job) (*transpile.Output, *execution.Result, error) {
	if !hasTypeScript(job) {
		return nil, nil, nil
	}
	// Binary modules pass through as they are; the bundle imports them.
	out, err := transpile.BundleWith(job.Modules, job.MainModule, slices.Sorted(maps.Keys(job.Binary)))
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

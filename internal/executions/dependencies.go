package executions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/worker"
)

// dependencyRetryAfter is the Retry-After of a registry that failed, in
// seconds.
const dependencyRetryAfter = 10

// installed is an execution's dependencies, resolved: the set and how it
// was had.
type installed struct {
	asked  map[string]string
	set    *packages.Set
	cached bool
	start  time.Time
}

// resolve resolves job's dependencies (none: nil). Its error is a
// *execution.Problem naming the package (dependencyProblem), or ctx's.
func (s *Service) resolve(ctx context.Context, job *execution.Job) (*installed, error) {
	if len(job.Dependencies) == 0 || job.DependencyKey != "" {
		return nil, nil // none, or bundled already (a stored script's)
	}
	in := &installed{asked: job.Dependencies, start: time.Now()}
	set, cached, err := s.opts.Packages.Resolve(ctx, job.Dependencies)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var e *packages.Error
		if errors.As(err, &e) {
			s.m.Dependencies.WithLabelValues(string(e.Kind)).Inc()
		}
		return nil, dependencyProblem(err)
	}
	outcome, source := "resolved", "registry"
	if cached {
		outcome, source = "cached", "cache"
	}
	s.m.Dependencies.WithLabelValues(outcome).Inc()
	s.m.DependencySeconds.WithLabelValues(source).Observe(time.Since(in.start).Seconds())
	in.set, in.cached = set, cached
	return in, nil
}

// dependencyProblem is the problem of dependencies that could not be had.
func dependencyProblem(err error) error {
	var e *packages.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Kind {
	case packages.NotFound:
		return execution.NewProblem(execution.ProblemDependencyNotFound, "%s", e.Error())
	case packages.Denied:
		return execution.NewProblem(execution.ProblemDependencyDenied, "%s", e.Error())
	case packages.TooLarge:
		return execution.NewProblem(execution.ProblemDependencyTooLarge, "%s", e.Error())
	case packages.Unavailable:
		return execution.NewProblem(execution.ProblemDependencyUnavailable, "%s", e.Error()).WithRetryAfter(dependencyRetryAfter)
	}
	return execution.InvalidRequest([]execution.FieldProblem{{Field: "dependencies", Code: fieldInvalid, Detail: e.Error()}})
}

// attach reports job's dependencies (install events), bundles what its
// modules import of them and adds it to the job. A package that does not
// bundle is the execution's result (invalid_module); no compiler free is
// execution.ErrUnavailable.
func (s *Service) attach(ctx context.Context, job *execution.Job, in *installed, t *tap) (*execution.Result, error) {
	if err := t.emit(execution.Event{Type: execution.EventInstall, Install: &execution.Install{Phase: execution.InstallResolving, Packages: in.asked}}); err != nil {
		return nil, err
	}
	b, err := s.bundleOf(ctx, job, in)
	var e *packages.Error
	switch {
	case errors.As(err, &e) && e.Kind == packages.Unavailable:
		return nil, fmt.Errorf("%w: %w", execution.ErrUnavailable, err)
	case errors.As(err, &e):
		return invalidModule(e.Error()), nil
	case err != nil:
		return nil, err
	}
	code := 0
	for _, src := range job.Modules {
		code += len(src)
	}
	// The job carries the bundle (wasm as base64) to the shim, which reads
	// at most MaxJobBytes; a quarter is left for everything else.
	if room := worker.Caps.MaxJobBytes * 3 / 4; b.Bytes*4/3+int64(code) > room {
		return invalidModule(fmt.Sprintf("the dependencies bundle to %d bytes, more than the runtime takes (%d with the code)", b.Bytes, room)), nil
	}
	job.Packages, job.Wasm = map[string]string{}, map[string][]byte{}
	if err := b.Attach(job.Modules, job.Packages, job.Wasm); err != nil {
		return invalidModule(err.Error()), nil
	}
	job.Dependencies = maps.Clone(in.set.Versions)
	job.DependencyKey = b.Key
	if job.ReuseKey != "" {
		job.ReuseKey = reuseKey(job.Caller, job)
	}
	done := &execution.Install{Phase: execution.InstallDone, Packages: job.Dependencies, Cached: in.cached,
		DurationMs: float64(time.Since(in.start).Microseconds()) / 1000}
	return nil, t.emit(execution.Event{Type: execution.EventInstall, Install: done})
}

// bundleOf is the bundle of in's set for job's imports, timed.
func (s *Service) bundleOf(ctx context.Context, job *execution.Job, in *installed) (*packages.Bundle, error) {
	start := time.Now()
	b, err := s.opts.Packages.Bundle(ctx, in.set, packages.Entries(job.Modules, in.set.Versions))
	if err == nil {
		s.m.BundleSeconds.Observe(time.Since(start).Seconds())
	}
	return b, err
}

// invalidModule is the result of an execution whose modules cannot load.
func invalidModule(msg string) *execution.Result {
	return &execution.Result{Error: &execution.Error{Code: execution.CodeInvalidModule, Message: msg}}
}

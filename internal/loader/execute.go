package loader

import (
	"context"
	"errors"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// Execute runs job on the least-loaded healthy runtime process.
func (l *Local) Execute(ctx context.Context, job *Job, emit func(execution.Event) error) error {
	p, err := l.acquire(ctx, job.ReuseKey)
	if err != nil {
		return err
	}
	defer l.release(p)
	l.active.add(job.Secrets)
	defer l.active.remove(job.Secrets)
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, job.Timeout, errTimeout)
	defer cancel()
	call := &shimCall{client: l.client, base: p.url, secret: l.secret, maxEvent: l.cfg.MaxEventBytes}
	err = call.run(ctx, job, emit)
	var lost *lostError
	if !errors.As(err, &lost) {
		return err
	}
	// The shim sends a line at least every 100 ms while its process runs;
	// silence at the deadline means the process is blocked.
	if errors.Is(context.Cause(ctx), errTimeout) && call.silentFor() > l.cfg.ProbeInterval {
		l.markOverdue(p)
	}
	return l.lost(parent, ctx, p, job, emit, lost.err)
}

// lost decides what an execution whose connection to the runtime failed
// before its result ended with.
func (l *Local) lost(parent, ctx context.Context, p *process, job *Job, emit func(execution.Event) error, err error) error {
	switch {
	case errors.Is(context.Cause(ctx), errTimeout):
		return emit(failure(execution.CodeTimeout, "execution exceeded its timeout of %v", job.Timeout))
	case parent.Err() != nil:
		return parent.Err()
	case p.hasExited(time.Second):
		l.log.Warn().Str("id", job.ID).Int("pid", p.pid()).Msg("runtime exited during an execution")
		if p.oom.Load() {
			if l.inflightOf(p) == 1 {
				return emit(failure(execution.CodeMemoryLimit, "the execution ran out of memory (V8 heap limit); its runtime process was replaced"))
			}
			return emit(failure(execution.CodeRuntimeCrashed, "the runtime ran out of memory, maybe because of another execution on it; safe to retry"))
		}
		if p.killed.Load() {
			return emit(failure(execution.CodeRuntimeCrashed, "the runtime was replaced because another execution on it blocked past its deadline; safe to retry"))
		}
		return emit(failure(execution.CodeRuntimeCrashed, "%v (%v); safe to retry", errProcessGone, p.err))
	default:
		l.log.Warn().Str("id", job.ID).Err(err).Msg("lost connection to the runtime")
		return emit(failure(execution.CodeRuntimeCrashed, "lost connection to the runtime; safe to retry"))
	}
}

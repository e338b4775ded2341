package local

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// This file is the supervision half of the pool: each slot's supervisor
// starts its process, watches it (watch.go) and replaces it; dispatch.go is
// the other half, placing executions on the processes it keeps.

// supervise keeps slot s served by a healthy process until ctx ends.
func (l *Pool) supervise(ctx context.Context, s *slot) {
	log := l.log.With().Int("slot", s.index).Str("isolation", s.isolation.String()).Logger()
	failures := 0    // in a row, for restartBackoff
	var old *process // a process being replaced while still serving
	for ctx.Err() == nil {
		p, err := l.startOrTake(ctx, s)
		if err != nil {
			if ctx.Err() == nil {
				log.Error().Err(err).Dur("retry_in", restartBackoff.Delay(failures)).Msg("runtime failed to start")
			}
			if old != nil && old.running() {
				// Keep the old process serving; try the replacement later.
				l.setServing(s, old)
				p, old = old, nil
			} else {
				_ = restartBackoff.Wait(ctx, failures)
				failures++
				continue
			}
		} else {
			log.Info().Int("pid", p.pid()).Str("url", p.url).Msg("runtime started")
			l.setServing(s, p)
			if old != nil {
				replaced := old
				l.wg.Go(func() { l.retire(ctx, replaced, log) })
				old = nil
			}
		}
		started := time.Now()
		reason := l.watch(ctx, s, p)
		switch reason {
		case reasonShutdown:
			l.setServing(s, nil)
			l.mu.Lock()
			setVerdictLocked(p, verdict{cause: causeShutdown})
			l.mu.Unlock()
			p.stop(stopGrace)
			return
		case reasonRecycleCount, reasonRecycleMemory, reasonRecycleReuse:
			log.Info().Int("pid", p.pid()).Int("served", l.servedOf(p)).Str("reason", reason).Msg("recycling runtime")
			l.replaced("recycle", reason)
			old = p // serves until its replacement is up
			continue
		}
		l.setServing(s, nil)
		l.replaced("restart", reason)
		log.Error().Int("pid", p.pid()).Str("reason", reason).Str("exit", fmt.Sprint(p.err)).Msg("runtime stopped; restarting")
		// Back off only from crashes nothing explains: a process the gateway
		// killed, or that an execution ran out of memory, is no crash loop,
		// and waiting to replace it would cost every caller capacity.
		explained := l.verdictOf(p).cause != causeCrash
		if explained || time.Since(started) > 10*time.Second {
			failures = 0
		}
		_ = restartBackoff.Wait(ctx, failures)
		if !explained {
			failures++
		}
	}
}

// startOrTake gives pool slot s the spare process if one is waiting, else
// starts one. The isolation slots always start their own: the quarantine
// process runs at a lower priority.
func (l *Pool) startOrTake(ctx context.Context, s *slot) (*process, error) {
	if l.spares != nil && s.isolation == isolateNone {
		select {
		case p := <-l.spares:
			if p.running() {
				return p, nil
			}
		default:
		}
	}
	return l.start(ctx, s)
}

// keepSpare keeps one process started and idle until a slot takes it, then
// starts the next; one that dies while it waits is replaced. Close stops it.
func (l *Pool) keepSpare(ctx context.Context) {
	idle := &slot{index: -1, isolation: isolateNone}
	failures := 0
	for ctx.Err() == nil {
		p, err := l.start(ctx, idle)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Error().Err(err).Dur("retry_in", restartBackoff.Delay(failures)).Msg("spare runtime failed to start")
			}
			_ = restartBackoff.Wait(ctx, failures)
			failures++
			continue
		}
		failures = 0
		l.spare.Store(p)
		select {
		case l.spares <- p:
		case <-p.exited:
		case <-ctx.Done():
			p.stop(stopGrace)
		}
		l.spare.Store(nil)
	}
}

// start starts a process for slot s, in a memory cgroup of its own when the
// pool has a cgroup bound. The quarantine process runs at a lower CPU
// priority, so that a quarantined guest spinning to its deadline takes a
// core only when nobody else needs it.
func (l *Pool) start(ctx context.Context, s *slot) (*process, error) {
	group, err := l.bound.newGroup(fmt.Sprintf("%s-%d", l.prefix, l.groups.Add(1)))
	if err != nil {
		return nil, err
	}
	p, err := startProcess(ctx, l.cfg.Workerd, l.config, l.secret, l.client, l.cfg.StartTimeout, l.base, runtimeLog{mask: l.active.mask, dropped: l.cfg.OnLogDropped}, group)
	if err == nil && s.isolation == isolateQuarantined {
		if err := lowerPriority(p.pid(), quarantineNice); err != nil {
			l.log.Warn().Err(err).Int("pid", p.pid()).Msg("could not lower the quarantine runtime's CPU priority")
		}
	}
	return p, err
}

// allSlotsLocked lists the pool's slots, then the isolation slots that have
// started.
func (l *Pool) allSlotsLocked() []*slot {
	all := l.slots
	for _, s := range l.isolation {
		if s != nil {
			all = append(slices.Clip(all), s)
		}
	}
	return all
}

// newGroupPrefix names a new pool's memory cgroups.
func newGroupPrefix() string {
	return fmt.Sprintf("gateway-%d-%d", os.Getpid(), pools.Add(1))
}

func (l *Pool) replaced(event, reason string) {
	if l.cfg.OnReplace != nil {
		l.cfg.OnReplace(event, reason)
	}
}

func (l *Pool) setServing(s *slot, p *process) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.proc != nil && s.proc != p {
		s.proc.draining = true
		if p != nil {
			l.retired = append(l.retired, s.proc)
		}
	}
	s.proc = p
	l.notifyLocked()
}

func (l *Pool) setResponsiveLocked(p *process, ok bool) {
	if p.responsive != ok {
		p.responsive = ok
		l.notifyLocked()
	}
	if ok {
		// It answers: whatever timed out was waiting, not spinning.
		p.firstOverdue = nil
	}
}

// notifyLocked tells whoever waits that capacity may have freed: the wait
// queue's executions (dispatchLocked), and the isolation queues and
// draining processes (changed).
func (l *Pool) notifyLocked() {
	l.dispatchLocked()
	close(l.changed)
	l.changed = make(chan struct{})
}

// quarantineNice is the nice value of the quarantine process: at 10 the
// kernel gives it about a tenth of the CPU share of a process at 0.
const quarantineNice = 10

// pools numbers the pools of this gateway process, to name their cgroups.
var pools atomic.Int64

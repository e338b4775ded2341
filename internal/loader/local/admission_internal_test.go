package local

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// overloadPool is a pool whose processes are bounded at 1 GiB, with the
// estimate at 2 MiB per execution.
func overloadPool() *Pool {
	return &Pool{
		cfg:   Config{MaxConcurrency: 4096, MaxStarting: 16, ProbeInterval: 250 * time.Millisecond},
		log:   zerolog.Nop(),
		bound: memBound{kind: boundWatchdog, limit: 1 << 30},
		adm:   newAdmission(),
	}
}

// filled is a process that took n executions, each answered (waiting),
// while its memory rose 2 MiB for each from 100 MiB, sampled along the
// way; heard says when its event loop last sent a line.
func filled(n int, heard time.Time) (*process, []*attempt) {
	p := &process{attempts: map[*attempt]struct{}{}, idleRSS: 100 << 20, okRSS: 100 << 20, lastRSS: 100 << 20,
		cmd: &exec.Cmd{Process: &os.Process{Pid: 1}}}
	p.heard.Store(heard.UnixNano())
	start := heard.Add(-10 * time.Second)
	var as []*attempt
	for i := range n {
		a := &attempt{started: start.Add(time.Duration(i) * time.Millisecond)}
		trackLocked(p, a)
		p.inflight++
		p.served++
		as = append(as, a)
		rss := int64(100+2*(i+1)) << 20
		sampleLocked(p, rss)
		p.lastRSS = rss
	}
	return p, as
}

// TestAggregateMemoryIsLoad: a process that died of memory with hundreds
// of executions that all grew alike, its event loop running to the end, was
// overloaded, not attacked: nobody is blamed, nobody runs alone (all run
// again spread over the pool), and admission tightens (a smaller share of
// the bound, an estimate at least what each came to hold).
func TestAggregateMemoryIsLoad(t *testing.T) {
	t.Parallel()
	l := overloadPool()
	now := time.Now()
	p, _ := filled(400, now)
	l.mu.Lock()
	v := l.memoryVerdictLocked(p, 1<<30, false, now)
	l.mu.Unlock()
	if v.suspect != nil || len(v.alone) != 0 || v.cause != causeMemory {
		t.Errorf("verdict = %+v (alone %d), want memory with nobody blamed and nobody alone", v, len(v.alone))
	}
	per, share := l.Admitted()
	if share >= admitShare || per < (1<<30-100<<20)/400 {
		t.Errorf("after the overload death: share %.2f, estimate %d; want share below %.2f and estimate at least %d", share, per, admitShare, (1<<30-100<<20)/400)
	}
}

// TestBombAmongWaiting: a process whose event loop fell silent while its
// memory rose fast, with one execution the shim had not answered, names
// that one (a guest allocating from its first turn keeps the shim from
// answering); with three unanswered, those three run again alone and the
// hundreds waiting run again spread over the pool. Admission does not
// tighten: it was an attack, not load.
func TestBombAmongWaiting(t *testing.T) {
	t.Parallel()
	for _, starting := range []int{1, 3} {
		l := overloadPool()
		now := time.Now()
		p, as := filled(300, now.Add(-2*time.Second)) // silent for 2 s
		var unanswered []*attempt
		for i := range starting {
			a := &attempt{started: now.Add(-3*time.Second + time.Duration(i)*time.Millisecond), starting: true}
			trackLocked(p, a)
			p.inflight++
			p.starting++
			p.served++
			unanswered = append(unanswered, a)
		}
		// It then grew to its bound at once: far more than its new
		// executions account for.
		p.history[0] = rssSample{at: now.Add(-500 * time.Millisecond), rss: p.lastRSS, served: p.served}
		p.historyNext = 1
		l.mu.Lock()
		v := l.memoryVerdictLocked(p, 1<<30, false, now)
		l.mu.Unlock()
		if starting == 1 {
			if v.suspect != unanswered[0] {
				t.Errorf("one unanswered: suspect = %p, want the unanswered %p", v.suspect, unanswered[0])
			}
		} else {
			for _, a := range unanswered {
				if !v.runsAlone(a) {
					t.Errorf("three unanswered: %p does not run alone, want each of them alone", a)
				}
			}
			for _, a := range as {
				if v.runsAlone(a) {
					t.Fatalf("three unanswered: waiting execution %p runs alone, want the waiting ones spread over the pool", a)
				}
			}
		}
		if _, share := l.Admitted(); share != admitShare {
			t.Errorf("%d unanswered: share = %.2f after a bomb, want %.2f (untightened)", starting, share, admitShare)
		}
	}
}

// TestAdmissionByMemory: a process takes executions while its projected
// memory stays under the share of its bound, whatever the count; an idle
// one always takes one; the starting count and the ceiling still apply.
func TestAdmissionByMemory(t *testing.T) {
	t.Parallel()
	l := overloadPool()
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &process{idleRSS: 100 << 20, lastRSS: 100 << 20}
	admitted := 0
	for l.admitsLocked(p) && admitted < 10000 {
		p.inflight++
		p.startsSinceSample++
		admitted++
		if p.starting < 8 {
			p.starting++
		} else {
			p.starting = 0 // answered
		}
	}
	// 80% of 1 GiB less 100 MiB, at 2 MiB each.
	limit := float64(l.bound.limit)
	if want := int((admitShare*limit - 100<<20) / (2 << 20)); admitted < want-8 || admitted > want {
		t.Errorf("admitted %d, want about %d (80%% of the bound at 2 MiB each)", admitted, want)
	}
	full := &process{inflight: 0, idleRSS: 1 << 30, lastRSS: 1 << 30}
	if !l.admitsLocked(full) {
		t.Error("an idle process above its share admits nothing, want one (no queue waits forever)")
	}
	busy := &process{inflight: 5, starting: 16, idleRSS: 100 << 20, lastRSS: 100 << 20}
	if l.admitsLocked(busy) {
		t.Error("a process starting 16 admits another, want the starting bound to hold")
	}
	ceiling := &process{inflight: 4096, idleRSS: 10 << 20, lastRSS: 10 << 20}
	l.bound.limit = 1 << 40
	if l.admitsLocked(ceiling) {
		t.Error("a process at max_concurrency admits another, want the ceiling to hold")
	}
}

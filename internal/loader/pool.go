package loader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// LocalConfig configures the local backend. Zero values take the defaults
// named on each field.
type LocalConfig struct {
	Workerd        string        // path of the workerd binary (required)
	Processes      int           // workerd processes in the pool; default the number of CPUs
	MaxConcurrency int           // executions at once per process; default 16
	QueueSize      int           // executions waiting for a free process; default 64, negative: none
	QueueTimeout   time.Duration // longest wait in the queue; default 5s
	StartTimeout   time.Duration // how long a starting process has to answer; default 20s
	ProbeInterval  time.Duration // liveness probe period and timeout; default 250ms
	RecycleAfter   int           // replace a process after this many executions; 0: never
	RecycleRSS     int64         // replace a process above this resident memory (bytes); 0: never
	DrainTimeout   time.Duration // how long a recycled process may finish its work; default 60s
	// ReuseKeys bounds the warm isolates (isolate "reuse" keys) one process
	// holds; reaching it recycles the process, since workerd never evicts
	// them (default 100).
	ReuseKeys     int
	V8HeapMB      int      // V8 heap limit of each isolate (--max-old-space-size); 0: V8's own
	MaxEventBytes int      // bound of one line of the shim's event stream; default 4 MiB
	DenyAddresses []string // IP addresses guest code must never reach (the gateway's own)
	// OnReplace, if set, is told each time a process is replaced: event
	// "restart" (reason "exited" or "killed") or "recycle" (reason
	// "executions" or "memory").
	OnReplace func(event, reason string)
	// OnLogDropped, if set, counts the runtime's own log lines dropped by
	// the per-process rate limit.
	OnLogDropped func(lines int)
}

func (c *LocalConfig) setDefaults() {
	if c.Processes <= 0 {
		c.Processes = runtime.NumCPU()
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 16
	}
	if c.QueueSize < 0 {
		c.QueueSize = 0
	} else if c.QueueSize == 0 {
		c.QueueSize = 64
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = 5 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 20 * time.Second
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 250 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 60 * time.Second
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = 4 << 20
	}
	if c.ReuseKeys <= 0 {
		c.ReuseKeys = 100
	}
}

// Local runs executions on a pool of workerd processes on this machine,
// started and supervised by the gateway. Each execution goes to the
// least-loaded healthy process; a process that dies is replaced, one that
// blocks past an execution's deadline is killed and replaced, and one that
// has served enough (or grown too large) is replaced gracefully.
type Local struct {
	cfg    LocalConfig
	log    zerolog.Logger
	client *http.Client
	dir    string
	config string
	secret string // signs the gateway's calls to the shim; new for each run
	active activeSecrets

	mu      sync.Mutex
	slots   []*slot
	waiting int           // executions in the wait queue
	changed chan struct{} // closed and replaced whenever capacity may have freed
	closing bool          // no new executions (Drain or Close was called)
	retired []*process    // replaced processes finishing their executions
	closed  bool
	next    int // where the least-loaded search starts, so ties rotate

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// slot is one place in the pool: it always has a process starting or serving.
type slot struct {
	index   int
	proc    *process    // the process taking new executions; nil while none is
	recycle chan string // asks the slot's supervisor to replace its process, and why
}

const (
	minRestartDelay = 50 * time.Millisecond
	maxRestartDelay = 5 * time.Second
	stopGrace       = 2 * time.Second
)

// Reasons a process stops serving.
const (
	reasonExited        = "exited"
	reasonShutdown      = "shutdown"
	reasonRecycleCount  = "executions"
	reasonRecycleMemory = "memory"
	reasonRecycleReuse  = "reuse_keys"
	reasonKilled        = "killed"
)

// NewLocal writes the shim and its workerd config to a temporary folder and
// starts the pool. It returns at once; Ready says when a process answers.
func NewLocal(cfg LocalConfig, log zerolog.Logger) (*Local, error) {
	cfg.setDefaults()
	dir, err := os.MkdirTemp("", "gateway-workerd-")
	if err != nil {
		return nil, err
	}
	config, err := writeConfig(dir, cfg.V8HeapMB, hostPrefixes(cfg.DenyAddresses))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write workerd config: %w", err)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Local{
		cfg:     cfg,
		log:     log.With().Str("component", "loader").Logger(),
		client:  &http.Client{Transport: newTransport(cfg.Processes * cfg.MaxConcurrency)},
		dir:     dir,
		config:  config,
		secret:  hex.EncodeToString(secret[:]),
		changed: make(chan struct{}),
		stop:    cancel,
	}
	for i := range cfg.Processes {
		s := &slot{index: i, recycle: make(chan string, 1)}
		l.slots = append(l.slots, s)
		l.wg.Go(func() { l.supervise(ctx, s, log) })
	}
	return l, nil
}

// hostPrefixes turns IP addresses into single-address CIDR blocks.
func hostPrefixes(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
		}
	}
	return out
}

func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // the runtime is on loopback; never go through a proxy
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
}

// supervise keeps slot s served by a healthy process until ctx ends.
func (l *Local) supervise(ctx context.Context, s *slot, base zerolog.Logger) {
	log := l.log.With().Int("slot", s.index).Logger()
	delay := minRestartDelay
	var old *process // a process being replaced while still serving
	for ctx.Err() == nil {
		p, err := startProcess(ctx, l.cfg.Workerd, l.config, l.secret, l.client, l.cfg.StartTimeout, base, runtimeLog{mask: l.active.mask, dropped: l.cfg.OnLogDropped})
		if err != nil {
			if ctx.Err() == nil {
				log.Error().Err(err).Dur("retry_in", delay).Msg("runtime failed to start")
			}
			if old != nil && old.running() {
				// Keep the old process serving; try the replacement later.
				l.setServing(s, old)
				p, old = old, nil
			} else {
				sleep(ctx, delay)
				delay = min(2*delay, maxRestartDelay)
				continue
			}
		} else {
			log.Info().Int("pid", p.pid()).Str("url", p.url).Msg("runtime started")
			l.setServing(s, p)
			if old != nil {
				replaced := old
				l.wg.Go(func() { l.drain(ctx, replaced, log) })
				old = nil
			}
		}
		started := time.Now()
		reason := l.watch(ctx, s, p)
		switch reason {
		case reasonShutdown:
			l.setServing(s, nil)
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
		if time.Since(started) > 10*time.Second {
			delay = minRestartDelay
		}
		sleep(ctx, delay)
		delay = min(2*delay, maxRestartDelay)
	}
}

func (l *Local) replaced(event, reason string) {
	if l.cfg.OnReplace != nil {
		l.cfg.OnReplace(event, reason)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// watch probes p until it exits, must be replaced, or ctx ends, and says why.
// A process that does not answer its probe is taken out of dispatch; if it
// also holds an execution past its deadline (a guest spinning), it is killed.
func (l *Local) watch(ctx context.Context, s *slot, p *process) string {
	tick := time.NewTicker(l.cfg.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.exited:
			return reasonExited
		case <-ctx.Done():
			return reasonShutdown
		case reason := <-s.recycle:
			return reason
		case <-p.suspect:
		case <-tick.C:
		}
		probeCtx, cancel := context.WithTimeout(ctx, l.cfg.ProbeInterval)
		ok := p.healthy(probeCtx, l.client)
		cancel()
		if ctx.Err() != nil {
			return reasonShutdown
		}
		l.setResponsive(p, ok)
		switch {
		case ok:
			if l.cfg.RecycleRSS > 0 && p.rss() > l.cfg.RecycleRSS {
				return reasonRecycleMemory
			}
		case l.overdueOf(p) > 0:
			l.log.Warn().Int("slot", s.index).Int("pid", p.pid()).Msg("runtime blocked past an execution's deadline; killing it")
			p.killed.Store(true)
			p.kill()
			return reasonKilled
		}
	}
}

// drain waits for a replaced process to finish its executions, then stops it.
func (l *Local) drain(ctx context.Context, p *process, log zerolog.Logger) {
	deadline := time.Now().Add(l.cfg.DrainTimeout)
	for l.inflightOf(p) > 0 && time.Now().Before(deadline) && p.running() && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(stopGrace)
	l.mu.Lock()
	l.retired = slices.DeleteFunc(l.retired, func(r *process) bool { return r == p })
	l.mu.Unlock()
	log.Info().Int("pid", p.pid()).Msg("recycled runtime stopped")
}

func (l *Local) setServing(s *slot, p *process) {
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

func (l *Local) setResponsive(p *process, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.responsive != ok {
		p.responsive = ok
		l.notifyLocked()
	}
	if ok {
		p.overdue = 0 // it answers: whatever timed out was waiting, not spinning
	}
}

func (l *Local) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// ErrQueueFull means every runtime process is busy and the wait queue is full.
var ErrQueueFull = fmt.Errorf("%w: every runtime is busy and the wait queue is full", ErrUnavailable)

// acquire reserves a place on a healthy process, waiting in the bounded
// queue if every process is at its concurrency bound. An execution that may
// reuse an isolate goes to a process that already has it warm if one has
// room; otherwise to the least-loaded process.
func (l *Local) acquire(ctx context.Context, reuseKey string) (*process, error) {
	var timeout <-chan time.Time
	l.mu.Lock()
	for {
		if l.closing {
			l.mu.Unlock()
			return nil, ErrUnavailable
		}
		if p := l.pickLocked(reuseKey); p != nil {
			p.inflight++
			p.served++
			if l.cfg.RecycleAfter > 0 && p.served == l.cfg.RecycleAfter {
				l.requestRecycleLocked(p, reasonRecycleCount)
			}
			if reuseKey != "" && !p.reuseKeys[reuseKey] {
				if p.reuseKeys == nil {
					p.reuseKeys = map[string]bool{}
				}
				p.reuseKeys[reuseKey] = true
				if len(p.reuseKeys) >= l.cfg.ReuseKeys {
					l.requestRecycleLocked(p, reasonRecycleReuse)
				}
			}
			l.mu.Unlock()
			return p, nil
		}
		if l.waiting >= l.cfg.QueueSize {
			l.mu.Unlock()
			return nil, ErrQueueFull
		}
		if timeout == nil {
			t := time.NewTimer(l.cfg.QueueTimeout)
			defer t.Stop()
			timeout = t.C
		}
		l.waiting++
		changed := l.changed
		l.mu.Unlock()
		var err error
		select {
		case <-changed:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timeout:
			err = fmt.Errorf("%w: no runtime was free within %v", ErrUnavailable, l.cfg.QueueTimeout)
		}
		l.mu.Lock()
		l.waiting--
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
	}
}

// pickLocked returns the process for the next execution: one holding
// reuseKey warm if any has room, else the healthy process with the fewest
// executions that has room, or nil.
func (l *Local) pickLocked(reuseKey string) *process {
	var best, warm *process
	n := len(l.slots)
	for i := range n {
		s := l.slots[(l.next+i)%n]
		p := s.proc
		if p == nil || !p.responsive || p.draining || p.inflight >= l.cfg.MaxConcurrency || !p.running() {
			continue
		}
		if reuseKey != "" && p.reuseKeys[reuseKey] && (warm == nil || p.inflight < warm.inflight) {
			warm = p
		}
		if best == nil || p.inflight < best.inflight {
			best = p
		}
	}
	l.next = (l.next + 1) % n
	if warm != nil {
		return warm
	}
	return best
}

func (l *Local) requestRecycleLocked(p *process, reason string) {
	for _, s := range l.slots {
		if s.proc == p {
			select {
			case s.recycle <- reason:
			default:
			}
		}
	}
}

// release gives back the place an execution held on p.
func (l *Local) release(p *process) {
	l.mu.Lock()
	p.inflight--
	l.notifyLocked()
	l.mu.Unlock()
}

// markOverdue records that an execution on p passed its deadline while p
// sent nothing; the slot's watcher probes p at once.
func (l *Local) markOverdue(p *process) {
	l.mu.Lock()
	p.overdue++
	l.mu.Unlock()
	select {
	case p.suspect <- struct{}{}:
	default:
	}
}

func (l *Local) inflightOf(p *process) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return p.inflight
}

func (l *Local) servedOf(p *process) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return p.served
}

func (l *Local) overdueOf(p *process) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return p.overdue
}

// Ready reports whether some runtime process can take an execution.
func (l *Local) Ready(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrUnavailable
	}
	for _, s := range l.slots {
		if p := s.proc; p != nil && p.responsive && !p.draining {
			return nil
		}
	}
	return ErrUnavailable
}

// Stats counts the pool's processes by state (ready, unresponsive,
// draining) and the executions waiting in its queue.
func (l *Local) Stats() (processes map[string]int, queued int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	processes = map[string]int{}
	for _, s := range l.slots {
		switch p := s.proc; {
		case p == nil:
		case !p.responsive:
			processes["unresponsive"]++
		default:
			processes["ready"]++
		}
	}
	processes["draining"] = len(l.retired)
	return processes, l.waiting
}

// PIDs returns the process ids of the processes taking executions now.
func (l *Local) PIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	for _, s := range l.slots {
		if s.proc != nil {
			pids = append(pids, s.proc.pid())
		}
	}
	return pids
}

// Drain stops taking new executions and reports not ready; executions
// already running go on. Shutdown calls it first, then waits for the HTTP
// server to finish its requests, then calls Close.
func (l *Local) Drain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = true
	l.notifyLocked()
}

// Close stops taking executions, stops every runtime process (executions
// still running end with runtime_crashed) and removes the temporary files.
func (l *Local) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.closing = true
	l.notifyLocked()
	l.mu.Unlock()
	l.stop()
	l.wg.Wait()
	l.client.CloseIdleConnections()
	return os.RemoveAll(l.dir)
}

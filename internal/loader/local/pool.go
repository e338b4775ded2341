// Package local runs executions on a pool of workerd processes on this
// machine, each serving the shim Worker: it starts and supervises them
// (pool.go, process.go, watch.go), places each execution (dispatch.go),
// kills a process a guest blocks or blows up and blames the right execution
// (tracking.go), runs the neighbours again (execute.go), quarantines repeat
// offenders (quarantine.go), bounds each process's memory (memlimit.go) and
// admits executions by the memory they hold (admission.go), queueing the
// rest (queue.go).
// It is the only package that starts workerd (workerd.go writes its config).
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/backoff"
	"github.com/rs/zerolog"
)

// Config configures the local backend. Zero values take the defaults
// named on each field.
type Config struct {
	Workerd   string // path of the workerd binary (required)
	Processes int    // workerd processes in the pool; default the number of CPUs
	// MaxConcurrency is the most executions one process runs at once, a
	// ceiling over what its memory admits (admission.go); default 1,024.
	MaxConcurrency int
	// MaxStarting is the most executions one process is starting at once
	// (making the isolate and running its first turn, before the shim
	// answers: CPU-bound work); default 16.
	MaxStarting   int
	QueueSize     int           // executions waiting for a place; 0 or negative: none (as runtime.queue_size)
	QueueTimeout  time.Duration // longest wait in the queue; default 30s
	StartTimeout  time.Duration // how long a starting process has to answer; default 20s
	ProbeInterval time.Duration // liveness probe period and timeout; default 250ms
	RecycleAfter  int           // replace a process after this many executions; 0: never
	RecycleRSS    int64         // replace a process above this resident memory (bytes); 0: never
	DrainTimeout  time.Duration // how long a recycled process may finish its work; default 60s
	// UnresponsiveKill is how long a process may fail its probes before it
	// is killed and replaced, whatever it holds; default 20 probe intervals.
	UnresponsiveKill time.Duration
	// MemoryLimit is the hard memory bound of each process in bytes: a
	// cgroup limit where the gateway may create one, else a watchdog on its
	// resident memory. A process past it is killed; a process takes new
	// executions only while it is well under it (admission.go). 0: none,
	// and admission by count alone.
	MemoryLimit int64
	// ReuseKeys bounds the warm isolates (isolate "reuse" keys) one process
	// holds; reaching it recycles the process, since workerd never evicts
	// them (default 100).
	ReuseKeys int
	// Spare keeps one more process started and idle: a pool slot whose
	// process was lost takes it at once instead of starting one (about
	// half a second, while the executions wait in the queue).
	Spare         bool
	V8HeapMB      int      // V8 heap limit of each isolate (--max-old-space-size); 0: V8's own
	MaxEventBytes int      // bound of one line of the shim's event stream; default 4 MiB
	DenyAddresses []string // IP addresses guest code must never reach (the gateway's own)
	// CapabilityURLs are the configured capabilities' base URLs: only the
	// shim's Capability entrypoint reaches their hosts (workerd.go).
	CapabilityURLs []string
	// VPCCapabilities are the capabilities reached through a Workers VPC
	// service on Cloudflare, by name, with their base URLs: each is reached
	// through a binding of its own, as there (workerd.go).
	VPCCapabilities map[string]string
	// OnReplace, if set, is told each time a process is replaced: event
	// "restart" (reason "exited" or "killed") or "recycle" (reason
	// "executions" or "memory").
	OnReplace func(event, reason string)
	// OnLogDropped, if set, counts the runtime's own log lines dropped by
	// the per-process rate limit.
	OnLogDropped func(lines int)
}

func (c *Config) setDefaults() {
	if c.Processes <= 0 {
		c.Processes = runtime.NumCPU()
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 1024
	}
	if c.MaxStarting <= 0 {
		c.MaxStarting = 16
	}
	c.QueueSize = max(c.QueueSize, 0)
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = 30 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 20 * time.Second
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 250 * time.Millisecond
	}
	if c.UnresponsiveKill <= 0 {
		// Long enough for a burst of synchronous work (a guest printing
		// 100,000 lines takes a second or two), short enough to free a
		// wedged process within seconds.
		c.UnresponsiveKill = 20 * c.ProbeInterval
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

// Pool runs executions on a pool of workerd processes on this machine,
// started and supervised by the gateway. Each execution goes to the
// least-loaded healthy process; a process that dies is replaced, one that
// blocks past an execution's deadline is killed and replaced, and one that
// has served enough (or grown too large) is replaced gracefully.
type Pool struct {
	cfg    Config
	log    zerolog.Logger
	client *http.Client
	dir    string
	config string
	secret string // signs the gateway's calls to the shim; new for each run
	active activeSecrets
	bound  memBound     // how each process is held to MemoryLimit
	groups atomic.Int64 // numbers the processes' memory cgroups
	prefix string       // names the processes' memory cgroups
	// quarantine holds code that blocked or blew up a process: it runs alone.
	quarantine *quarantine
	reruns     atomic.Int64 // executions run again after losing their process
	// spares hands the spare process to a slot that needs one (Config.Spare;
	// nil without); spare is the one waiting, if any.
	spares chan *process
	spare  atomic.Pointer[process]

	mu    sync.Mutex
	slots []*slot
	// isolation holds the slots of the processes that run one execution at
	// a time, each nil until first needed: one for quarantined code (at a
	// lower CPU priority), one for runs again that must run alone (an
	// unexplained loss), so that those never wait behind the former.
	isolation [2]*slot
	queue     waitQueue // executions waiting for a place on the pool's processes
	adm       admission // what a process may take (admission.go)
	isoWait   [2]int    // executions waiting for each isolation process
	// inflight counts the executions running on every process, and
	// peakInflight the most there have been at once.
	inflight, peakInflight int
	// rerunQueue holds the runs again waiting for the rerun process.
	rerunQueue map[*attempt]struct{}
	changed    chan struct{} // closed and replaced whenever capacity may have freed
	closing    bool          // no new executions (Drain or Close was called)
	retired    []*process    // replaced processes finishing their executions
	closed     bool
	next       int // where the least-loaded search starts, so ties rotate

	ctx  context.Context // the supervisors' context, ended by Close
	base zerolog.Logger  // the logger processes write their output to
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// slot is one place in the pool: it always has a process starting or serving.
type slot struct {
	index     int
	isolation isolation   // which isolated executions it serves, if it serves only them
	proc      *process    // the process taking new executions; nil while none is
	recycle   chan string // asks the slot's supervisor to replace its process, and why
}

// restartBackoff is the wait before starting a slot's process again after
// a failure nothing explains: 50ms doubling up to 5s.
var restartBackoff = backoff.Policy{Min: 50 * time.Millisecond, Max: 5 * time.Second}

const stopGrace = 2 * time.Second

// Reasons a process stops serving.
const (
	reasonExited        = "exited"
	reasonShutdown      = "shutdown"
	reasonRecycleCount  = "executions"
	reasonRecycleMemory = "memory"
	reasonRecycleReuse  = "reuse_keys"
	reasonKilled        = "killed"
)

// New writes the shim and its workerd config to a temporary folder and
// starts the pool. It returns at once; Ready says when a process answers.
func New(cfg Config, log zerolog.Logger) (*Pool, error) {
	return newPool(cfg, log, systemCgroups)
}

// newPool is New looking for cgroups in fs.
func newPool(cfg Config, log zerolog.Logger, fs cgroupFS) (*Pool, error) {
	cfg.setDefaults()
	dir, err := os.MkdirTemp("", "gateway-workerd-")
	if err != nil {
		return nil, err
	}
	config, err := writeConfig(dir, cfg.V8HeapMB, hostPrefixes(cfg.DenyAddresses), cfg.CapabilityURLs, cfg.VPCCapabilities)
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
	prefix := newGroupPrefix()
	l := &Pool{
		cfg:        cfg,
		log:        log.With().Str("component", "loader").Logger(),
		client:     &http.Client{Transport: newTransport(cfg.Processes * cfg.MaxStarting)},
		dir:        dir,
		config:     config,
		secret:     hex.EncodeToString(secret[:]),
		changed:    make(chan struct{}),
		ctx:        ctx,
		base:       log,
		stop:       cancel,
		prefix:     prefix,
		bound:      detectMemBound(fs, cfg.MemoryLimit, prefix),
		quarantine: newQuarantine(),
		rerunQueue: map[*attempt]struct{}{},
		adm:        newAdmission(),
	}
	l.log.Info().Str("memory_bound", l.bound.kind).Int64("memory_limit_mb", cfg.MemoryLimit>>20).Str("cgroup", l.bound.dir).
		Int("processes", cfg.Processes).Int("max_concurrency", cfg.MaxConcurrency).Int("max_starting", cfg.MaxStarting).
		Int("queue_size", cfg.QueueSize).Dur("queue_timeout", cfg.QueueTimeout).Msg("runtime pool: memory bound and admission")
	for i := range cfg.Processes {
		s := &slot{index: i, recycle: make(chan string, 1)}
		l.slots = append(l.slots, s)
		l.wg.Go(func() { l.supervise(ctx, s) })
	}
	if cfg.Spare {
		l.spares = make(chan *process)
		l.wg.Go(func() { l.keepSpare(ctx) })
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

// newTransport is the client of the pool's processes. It keeps about as
// many idle connections as executions start at once (conns): a waiting
// execution holds its own connection, and a burst of thousands must not
// leave thousands idle behind it.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // the runtime is on loopback; never go through a proxy
		MaxIdleConns:        2*conns + 16,
		MaxIdleConnsPerHost: 2*conns + 16,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
}

// Ready reports whether some runtime process can take an execution.
func (l *Pool) Ready(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return execution.ErrUnavailable
	}
	for _, s := range l.slots {
		if p := s.proc; p != nil && p.responsive && !p.draining {
			return nil
		}
	}
	return execution.ErrUnavailable
}

// Stats counts the pool's processes by state (ready, unresponsive,
// draining, isolation for those that run one execution at a time, once
// started, and spare for the one waiting to replace a lost one) and the
// executions waiting in its queues.
func (l *Pool) Stats() (processes map[string]int, queued int) {
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
	for _, s := range l.isolation {
		if s != nil && s.proc != nil {
			processes["isolation"]++
		}
	}
	if l.spare.Load() != nil {
		processes["spare"]++
	}
	return processes, l.queue.len() + l.isoWait[0] + l.isoWait[1]
}

// ShimURL returns the URL of one running shim, and the secret the gateway
// signs its calls with, for tests and tools that call the shim directly (the backend suite runs
// the cloudflare relay against it).
func (l *Pool) ShimURL() (url, secret string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.slots {
		if s.proc != nil {
			return s.proc.url, l.secret
		}
	}
	return "", l.secret
}

// PIDs returns the process ids of the processes taking executions now, the
// isolation processes last once started.
func (l *Pool) PIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	for _, s := range l.allSlotsLocked() {
		if s.proc != nil {
			pids = append(pids, s.proc.pid())
		}
	}
	return pids
}

// Drain stops taking new executions and reports not ready; executions
// already running go on. Shutdown calls it first, then waits for the HTTP
// server to finish its requests, then calls Close.
func (l *Pool) Drain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = true
	l.notifyLocked()
}

// Close stops taking executions, stops every runtime process (executions
// still running end with runtime_crashed) and removes the temporary files.
func (l *Pool) Close() error {
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
	l.bound.removeGroups(l.prefix)
	return os.RemoveAll(l.dir)
}

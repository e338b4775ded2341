package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/loader/shim"
)

// process is one running workerd serving the shim.
type process struct {
	cmd     *exec.Cmd
	url     string        // http://127.0.0.1:PORT
	exited  chan struct{} // closed when the process has exited
	err     error         // why it exited; read after exited is closed
	suspect chan struct{} // asks the watcher to probe now
	killed  atomic.Bool   // the gateway killed it for blocking past a deadline
	oom     atomic.Bool   // it reported a V8 heap out-of-memory
	group   *cgroup       // the memory cgroup it runs in; nil without one
	heard   atomic.Int64  // unix nanoseconds of the last line any execution got from it
	// channels carry its executions (shim.Channels); closed when it exits.
	channels *shim.Channels
	// statm is /proc/PID/statm, opened on the first rss read.
	statm     *os.File
	statmOnce sync.Once
	// Read after exited is closed: its group's record of it.
	memKilled bool      // the kernel killed it for reaching its memory limit
	peak      int64     // the most memory its group held (bytes)
	exitedAt  time.Time // when its exit was seen

	// Guarded by the pool's mutex.
	inflight int // executions running on it
	// peakInflight is the most it ran at once since it last held none.
	peakInflight int
	starting     int             // of those, the ones the shim has not answered yet
	served       int             // executions it has taken
	responsive   bool            // it answered its last probe
	draining     bool            // it takes no new executions
	reuseKeys    map[string]bool // warm isolates it holds (isolate "reuse")
	attempts     map[*attempt]struct{}
	lastRSS      int64 // resident memory at the last sample
	okRSS        int64 // resident memory when it last answered a probe
	idleRSS      int64 // resident memory when it last held no execution
	// startsSinceSample counts the executions it took since lastRSS.
	startsSinceSample int
	// history holds its last samples (a ring, historyNext the next slot).
	history     [historyLen]rssSample
	historyNext int
	verdict     *verdict // why it stopped, once known
	// firstOverdue is the execution that first passed its deadline while
	// the process was silent: the one blamed if the process is killed.
	firstOverdue *attempt
}

// startProcess starts workerd on a fresh loopback port and waits until the
// shim answers. The gateway opens the listening socket itself and hands it
// to workerd (--socket-fd), so the port is known without a race.
func startProcess(ctx context.Context, workerd, configPath, secret string, client *http.Client, timeout time.Duration, log zerolog.Logger, rl runtimeLog, group *cgroup) (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for workerd: %w", err)
	}
	file, err := ln.(*net.TCPListener).File()
	addr := ln.Addr().String()
	ln.Close() // the duplicate in file keeps the socket open
	if err != nil {
		return nil, fmt.Errorf("listener file: %w", err)
	}

	cmd := exec.Command(workerd, "serve", "--experimental", "--socket-fd", "http=3", configPath)
	cmd.ExtraFiles = []*os.File{file}
	// workerd gets only what it needs from the environment: not the
	// gateway's own secrets, and the shim's signing secret.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir(), secretEnv + "=" + secret}
	cmd.SysProcAttr = processAttrs()
	p := &process{url: "http://" + addr, exited: make(chan struct{}), suspect: make(chan struct{}, 1), responsive: true, group: group}
	// Warm executions take the channel; fresh ones go as /run calls, since
	// workerd keeps a fresh isolate made on a channel until it closes, which
	// the memory bound's estimate of a process does not see (shim.Channels).
	p.channels = &shim.Channels{Client: client, Base: p.url, Secret: secret}
	out := &lineLogger{log: log, mask: rl.mask, dropped: rl.dropped, onLine: func(line []byte) {
		if bytes.Contains(line, heapOOM) {
			p.oom.Store(true)
		}
	}}
	cmd.Stdout = out
	cmd.Stderr = out
	err = cmd.Start()
	// workerd has its own copy of the socket now. Ours goes, so that once
	// workerd exits nothing listens and a probe is refused at once, instead
	// of waiting on a socket nobody will answer until the start timeout.
	file.Close()
	if err != nil {
		group.removeOrLog(log)
		return nil, fmt.Errorf("start workerd: %w", err)
	}
	p.cmd = cmd
	out.mu.Lock() // its output may be arriving already
	out.log = log.With().Str("component", "workerd").Int("pid", cmd.Process.Pid).Logger()
	out.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		p.exitedAt = time.Now()
		if group != nil {
			p.memKilled = !p.killed.Load() && group.oomKilled(sigkilled(cmd.ProcessState))
			p.peak = group.peak()
			group.removeOrLog(log)
		}
		p.channels.Close()
		p.statmOnce.Do(func() {}) // no rss read opens it from now on
		if p.statm != nil {
			p.statm.Close()
		}
		close(p.exited)
	}()
	if group != nil {
		if err := group.add(cmd.Process.Pid); err != nil {
			p.kill()
			return nil, fmt.Errorf("put workerd in its memory cgroup: %w", err)
		}
	}
	if err := p.waitHealthy(ctx, client, timeout); err != nil {
		p.kill()
		return nil, err
	}
	p.okRSS = p.rss()
	p.lastRSS = p.okRSS
	p.idleRSS = p.okRSS
	return p, nil
}

// sigkilled reports whether a process ended by SIGKILL.
func sigkilled(state *os.ProcessState) bool {
	ws, ok := state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// heapOOM is how V8 reports an isolate that ran out of heap; it takes the
// whole process down.
var heapOOM = []byte("JavaScript heap out of memory")

func (p *process) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// rss returns the process's resident memory in bytes, or 0 if unknown.
// rss returns p's resident memory in bytes. It is read at every execution's
// start, so it keeps /proc/PID/statm open and reads it with one pread.
func (p *process) rss() int64 {
	p.statmOnce.Do(func() {
		p.statm, _ = os.Open(fmt.Sprintf("/proc/%d/statm", p.pid()))
	})
	if p.statm == nil {
		return 0
	}
	var buf [128]byte
	n, err := p.statm.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	return parseStatm(buf[:n])
}

// ResidentBytes returns the resident memory of process pid in bytes, read
// from /proc (Linux); 0 elsewhere or on error.
func ResidentBytes(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	return parseStatm(data)
}

// parseStatm reads the resident size from /proc/PID/statm ("size resident
// shared ..." in pages) in bytes; 0 if it cannot.
func parseStatm(data []byte) int64 {
	fields := bytes.Fields(data)
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// waitHealthy polls the shim's /health until it answers 200.
func (p *process) waitHealthy(ctx context.Context, client *http.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.healthy(ctx, client) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("workerd exited while starting: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("workerd did not answer within %v: %w", timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

func (p *process) healthy(ctx context.Context, client *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// hasExited reports whether the process exits within wait.
func (p *process) hasExited(wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// stop asks workerd to stop, and kills it if it has not within grace.
func (p *process) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.hasExited(grace) {
		p.kill()
	}
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// runtimeLog says how a process's own output reaches the gateway's log.
type runtimeLog struct {
	mask    func(string) string // masks secrets; may be nil
	dropped func(lines int)     // counts lines the rate limit dropped; may be nil
}

// The runtime's lines reach the gateway's log at most at this rate per
// process, after a burst: a guest that makes workerd warn in a loop (denied
// fetches, say) must not flood the operator's log.
const (
	logBurst = 50
	logRate  = 20 // lines a second
)

// lineLogger writes workerd's output into the gateway's log, a line an
// entry, masked and rate-limited; a line after a dropped run says how many
// were dropped.
type lineLogger struct {
	mu         sync.Mutex
	log        zerolog.Logger
	onLine     func(line []byte) // sees every line, dropped or not
	mask       func(string) string
	dropped    func(lines int)
	now        func() time.Time // the clock; time.Now if nil
	bucket     bucket
	suppressed int // lines dropped since the last one logged
	partial    []byte
}

const maxLogLine = 4096

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			room := maxLogLine - len(l.partial)
			l.partial = append(l.partial, b[:min(room, len(b))]...)
			break
		}
		line := append(l.partial, b[:i]...)
		l.partial = l.partial[:0]
		b = b[i+1:]
		if len(line) > maxLogLine {
			line = line[:maxLogLine]
		}
		if len(bytes.TrimSpace(line)) > 0 {
			l.line(line)
		}
	}
	return n, nil
}

func (l *lineLogger) line(line []byte) {
	if l.onLine != nil {
		l.onLine(line)
	}
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	if !l.bucket.take(now(), logBurst, logRate) {
		l.suppressed++
		if l.dropped != nil {
			l.dropped(1)
		}
		return
	}
	if l.suppressed > 0 {
		l.log.Warn().Int("suppressed", l.suppressed).Msgf("suppressed %d runtime log lines", l.suppressed)
		l.suppressed = 0
	}
	msg := string(line)
	if l.mask != nil {
		msg = l.mask(msg)
	}
	l.log.Warn().Msg(msg)
}

// bucket is a token bucket: it holds up to burst tokens and gains rate a
// second; each allowed event takes one. It starts full.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, burst, rate float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(burst, b.tokens+elapsed.Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

var errProcessGone = errors.New("the runtime process exited")

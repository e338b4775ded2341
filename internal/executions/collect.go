package executions

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
	"github.com/dynamic-workers/gateway/internal/redact"
	"github.com/dynamic-workers/gateway/internal/transpile"
	"github.com/dynamic-workers/gateway/worker"
)

// collector applies the gateway's rules to an execution's events as they
// pass: it masks secrets, cuts long lines, drops logs past the execution's
// cap (so the gateway holds at most that much), and builds the result's
// stdout, stderr and totals.
type collector struct {
	job       *execution.Job
	id        string
	mode      string // the main module's (execution.Mode*)
	start     time.Time
	mask      *redact.Masker
	maxLine   int
	ts        *transpile.Output // maps TypeScript positions; nil for JavaScript
	budget    int               // log bytes still allowed
	maxTotal  int               // log bytes allowed in all
	bytes     int               // log bytes kept
	stdout    strings.Builder
	stderr    strings.Builder
	lines     int
	truncated bool
	hasStdout bool
	hasStderr bool
	// run is which run of the execution this is: 1, and one more after
	// each restart. earlier holds the calls announced by earlier runs,
	// current this run's: a result of an execution that ran more than once
	// lists them all, each with its run.
	run     int
	earlier []execution.Outgoing
	current []execution.Outgoing
	// calls, if set, is handed the runtime's list of calls with the shim's
	// reports of traced ones (their spans), before the reports are taken
	// out of the result.
	calls func([]execution.Outgoing)
}

func newCollector(job *execution.Job, maxLine, maxTotal int) *collector {
	if maxTotal <= 0 {
		maxTotal = int(^uint(0) >> 1)
	}
	return &collector{job: job, id: job.ID, mode: job.Mode, start: time.Now(), mask: redact.New(job.Secrets), maxLine: maxLine, budget: maxTotal, maxTotal: maxTotal, run: 1}
}

// reset forgets the logs collected so far: the execution runs again. The
// calls of the run before are kept.
func (c *collector) reset() {
	c.budget, c.bytes, c.lines = c.maxTotal, 0, 0
	c.stdout.Reset()
	c.stderr.Reset()
	c.truncated, c.hasStdout, c.hasStderr = false, false, false
	c.earlier = append(c.earlier, c.current...)
	c.current = nil
	c.run++
}

// resume takes the events an earlier gateway stored of an execution it
// ran before it died (up to the restart that queued it again): this run
// comes after theirs, and their calls are the earlier runs'.
func (c *collector) resume(events []execution.Event) {
	for _, ev := range events {
		switch ev.Type {
		case execution.EventOutbound:
			c.call(ev.Call)
		case execution.EventRestart:
			c.reset()
		}
	}
}

// call takes an announced request: masked, marked with its run, kept.
func (c *collector) call(o *execution.Outgoing) {
	o.Method, o.URL, o.Run = c.mask.Mask(o.Method), c.mask.Mask(o.URL), c.run
	c.current = append(c.current, *o)
}

// passOn is the backend's event callback for one execution, sync or
// queued: it times the isolate's start from sent, passes each log through
// the collector (one past the cap is dropped), resets it on a restart,
// keeps the result in *final, and hands each event on to out.
func (c *collector) passOn(m *metrics.Metrics, sent time.Time, final **execution.Result, out func(execution.Event) error) func(execution.Event) error {
	return func(ev execution.Event) error {
		switch ev.Type {
		case execution.EventStart:
			m.IsolateStartSeconds.Observe(time.Since(sent).Seconds())
		case execution.EventLog:
			if !c.log(ev.Log) {
				return nil // over the execution's log cap: dropped
			}
		case execution.EventResult:
			c.result(ev.Result)
			*final = ev.Result
		case execution.EventRestart:
			c.reset()
		case execution.EventOutbound:
			c.call(ev.Call)
		}
		return out(ev)
	}
}

// log prepares l for the client; false means it is over the cap and dropped.
func (c *collector) log(l *execution.Log) bool {
	l.Message = c.mask.Mask(c.ts.MapStack(l.Message))
	if c.maxLine > 0 && len(l.Message) > c.maxLine {
		l.Message = cutUTF8(l.Message, c.maxLine)
		l.Truncated = true
	}
	// A line costs a fixed amount besides its bytes (about what its record
	// costs), so that empty lines are bounded by count too: the stored
	// record, the answer and every stream stay proportional to the budget.
	cost := len(l.Message) + worker.Caps.LogLineCost
	if cost > c.budget {
		c.budget = 0
		c.truncated = true
		return false
	}
	c.budget -= cost
	c.bytes += len(l.Message)
	if l.Truncated {
		c.truncated = true
	}
	c.lines++
	b, seen := &c.stdout, &c.hasStdout
	if l.Stream == execution.StreamStderr {
		b, seen = &c.stderr, &c.hasStderr
	}
	if *seen {
		b.WriteByte('\n')
	}
	*seen = true
	b.WriteString(l.Message)
	return true
}

func (c *collector) result(res *execution.Result) {
	res.ID = c.id
	res.Mode = c.mode
	res.DurationMs = float64(time.Since(c.start).Microseconds()) / 1000
	res.Stdout = c.stdout.String()
	res.Stderr = c.stderr.String()
	res.Truncated = res.Truncated || c.truncated
	if c.job.DependencyKey != "" {
		res.Dependencies = c.job.Dependencies
	}
	if res.Outbound == nil {
		res.Outbound = []execution.Outgoing{}
	}
	if c.calls != nil {
		c.calls(res.Outbound)
	}
	for i := range res.Outbound {
		res.Outbound[i].Trace = nil
	}
	// The runtime lists this run's requests in the order they were
	// announced. A result the gateway made (a timeout, a lost runtime)
	// lists none: the announced ones stand for them, without a status.
	if n := len(res.Outbound); n < len(c.current) {
		for _, o := range c.current[n:] {
			o.Run = 0
			res.Outbound = append(res.Outbound, o)
		}
	}
	if c.run > 1 {
		// It ran more than once: every call of every run, each with its
		// run (the earlier ones as announced: how they ended was lost
		// with their run).
		for i := range res.Outbound {
			res.Outbound[i].Run = c.run
		}
		res.Outbound = append(append(make([]execution.Outgoing, 0, len(c.earlier)+len(res.Outbound)), c.earlier...), res.Outbound...)
	}
	if res.Error != nil {
		res.Error.Message = c.ts.MapStack(res.Error.Message)
		res.Error.Stack = c.ts.MapStack(res.Error.Stack)
	}
	maskResult(c.mask, res)
}

// cutUTF8 shortens s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// end ends the execution with res: a start first if it sent none, then res
// as its result.
func (c *collector) end(res *execution.Result, t *tap) (*execution.Result, error) {
	if !t.started {
		if err := t.emit(execution.Event{Type: execution.EventStart, ID: c.id}); err != nil {
			return nil, err
		}
	}
	c.result(res)
	return res, t.emit(execution.Event{Type: execution.EventResult, Result: res})
}

// Unit tests of the pool's isolation machinery (cgroups, quarantine, blame,
// dispatch to the isolation processes) against its unexported state. Over
// 400 lines because each piece is a table of cases; they share the fakes
// at the top, which is why they stay in one file.
package local

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/testwait"
)

// fakeCgroups lays out a cgroup tree in a temporary directory: the file
// /proc/self/cgroup would be, and the mount with the gateway's group.
func fakeCgroups(t *testing.T, self string, files map[string]string) cgroupFS {
	t.Helper()
	root := t.TempDir()
	fs := cgroupFS{self: filepath.Join(root, "self-cgroup"), mount: filepath.Join(root, "mnt")}
	if err := os.WriteFile(fs.self, []byte(self), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		path := filepath.Join(fs.mount, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func TestDetectMemBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		limit int64
		self  string
		files map[string]string
		want  string
		dir   string
	}{
		{"off", 0, "0::/gw\n", map[string]string{"cgroup.controllers": "memory"}, boundOff, ""},
		{"v2 delegated", 1 << 30, "0::/gw\n", map[string]string{"cgroup.controllers": "cpu memory", "gw/cgroup.subtree_control": "cpu memory"}, boundCgroup2, "gw"},
		{"v2 enabled by the gateway", 1 << 30, "0::/gw\n", map[string]string{"cgroup.controllers": "memory", "gw/cgroup.procs": ""}, boundCgroup2, "gw"},
		{"v1", 1 << 30, "4:memory:/box/gw\n3:cpu:/\n", map[string]string{"memory/box/gw/memory.limit_in_bytes": "9223372036854771712"}, boundCgroup1, "memory/box/gw"},
		{"v1 among others", 1 << 30, "2:cpuacct,memory:/gw\n", map[string]string{"memory/gw/memory.limit_in_bytes": "1"}, boundCgroup1, "memory/gw"},
		{"v1 without its group", 1 << 30, "4:memory:/elsewhere\n", map[string]string{"memory/gw/memory.limit_in_bytes": "1"}, boundWatchdog, ""},
		{"nothing mounted", 1 << 30, "0::/\n", nil, boundWatchdog, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := fakeCgroups(t, tt.self, tt.files)
			b := detectMemBound(fs, tt.limit, "gateway-1-1")
			want := ""
			if tt.dir != "" {
				want = filepath.Join(fs.mount, tt.dir)
			}
			if b.kind != tt.want || b.dir != want {
				t.Errorf("detectMemBound() = %s at %q, want %s at %q", b.kind, b.dir, tt.want, want)
			}
		})
	}
}

// TestCgroupFiles checks what the gateway writes and reads in a group, for
// both versions (only v1 runs for real on these machines).
func TestCgroupFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind, limitFile, eventsFile, events, peakFile string
	}{
		{boundCgroup2, "memory.max", "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", "memory.peak"},
		{boundCgroup1, "memory.limit_in_bytes", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "memory.max_usage_in_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			b := memBound{kind: tt.kind, dir: t.TempDir(), limit: 512 << 20}
			g, err := b.newGroup("gateway-1-7")
			if err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(filepath.Join(b.dir, "gateway-1-7", tt.limitFile)); string(data) != "536870912" {
				t.Errorf("%s = %q, want 536870912", tt.limitFile, data)
			}
			if err := g.add(4242); err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(filepath.Join(g.dir, "cgroup.procs")); string(data) != "4242" {
				t.Errorf("cgroup.procs = %q, want 4242", data)
			}
			if g.oomKilled(true) {
				t.Error("oomKilled() before any kill = true")
			}
			for file, content := range map[string]string{tt.eventsFile: tt.events, tt.peakFile: "600000000\n"} {
				if err := os.WriteFile(filepath.Join(g.dir, file), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !g.oomKilled(false) || g.peak() != 600000000 {
				t.Errorf("oomKilled() = %v, peak() = %d; want true, 600000000", g.oomKilled(false), g.peak())
			}
		})
	}
}

// TestCgroupOOMWithoutCounter: on kernels whose cgroup files have no
// oom_kill count, a SIGKILL after the group hit its limit is an OOM kill.
func TestCgroupOOMWithoutCounter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind, file, content string
		sigkilled, want     bool
	}{
		{boundCgroup1, "memory.failcnt", "12\n", true, true},
		{boundCgroup1, "memory.failcnt", "12\n", false, false},
		{boundCgroup1, "memory.failcnt", "0\n", true, false},
		{boundCgroup2, "memory.events", "low 0\nhigh 0\nmax 4\noom 1\n", true, true},
		{boundCgroup2, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\n", true, false},
	}
	for _, tt := range tests {
		g := &cgroup{kind: tt.kind, dir: t.TempDir()}
		if err := os.WriteFile(filepath.Join(g.dir, tt.file), []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := g.oomKilled(tt.sigkilled); got != tt.want {
			t.Errorf("%s %s %q, SIGKILL %v: oomKilled() = %v, want %v", tt.kind, tt.file, tt.content, tt.sigkilled, got, tt.want)
		}
	}
}

func TestQuarantine(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	q := newQuarantine()
	q.now = func() time.Time { return now }
	q.add("a")
	if !q.has("a") || q.has("b") || q.has("") {
		t.Fatalf("has(a), has(b), has('') = %v, %v, %v; want true, false, false", q.has("a"), q.has("b"), q.has(""))
	}
	now = now.Add(quarantineFor + time.Second)
	if q.has("a") {
		t.Error("has(a) after the quarantine ended = true")
	}
	for i := range quarantineSize + 10 {
		now = now.Add(time.Millisecond)
		q.add(fmt.Sprint(i))
	}
	if len(q.until) != quarantineSize {
		t.Errorf("entries = %d, want bounded at %d", len(q.until), quarantineSize)
	}
	if q.has("0") || !q.has(fmt.Sprint(quarantineSize+9)) {
		t.Error("a full quarantine did not evict its oldest entry for the newest")
	}
}

func TestQuarantineKey(t *testing.T) {
	t.Parallel()
	base := &execution.Job{Caller: "k1", MainModule: "a.js", Modules: map[string]string{"a.js": "x", "b.js": "y"}}
	same := &execution.Job{Caller: "k1", MainModule: "a.js", Modules: map[string]string{"b.js": "y", "a.js": "x"}, ID: "other"}
	if quarantineKey(base) != quarantineKey(same) {
		t.Error("quarantineKey differs for the same code and caller")
	}
	for name, j := range map[string]*execution.Job{
		"caller":  {Caller: "k2", MainModule: "a.js", Modules: base.Modules},
		"main":    {Caller: "k1", MainModule: "b.js", Modules: base.Modules},
		"modules": {Caller: "k1", MainModule: "a.js", Modules: map[string]string{"a.js": "x", "b.js": "z"}},
		"shifted": {Caller: "k1", MainModule: "a.js", Modules: map[string]string{"a.js": "xb.js", "": "y"}},
	} {
		if quarantineKey(j) == quarantineKey(base) {
			t.Errorf("quarantineKey ignores a different %s", name)
		}
	}
}

// TestMemorySuspect: growth accrues to every execution in flight; the one
// blamed is the latest started among those with (about) the most.
func TestMemorySuspect(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	tests := []struct {
		name    string
		samples []int64 // resident memory sampled after each start, MiB
		want    int     // index of the attempt blamed; -1: none
	}{
		// The bomb starts after the other and grows alone: only it has the growth.
		{"younger neighbour", []int64{100, 300, 600}, 0},
		// old was running when the bomb started: both have the growth.
		{"older neighbour", []int64{100, 101, 600}, -1},
		// nothing sampled in between: all tie.
		{"no sample", []int64{100, 100, 100, 100}, -1},
		// one execution on the process: it, whatever the samples.
		{"alone", []int64{100, 100}, 0},
		{"alone, no growth", []int64{100, 90}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &process{}
			var as []*attempt
			for i, mib := range tt.samples[:len(tt.samples)-1] {
				sampleLocked(p, mib<<20)
				p.lastRSS = mib << 20
				a := &attempt{started: t0.Add(time.Duration(i) * time.Second)}
				trackLocked(p, a)
				as = append(as, a)
			}
			sampleLocked(p, tt.samples[len(tt.samples)-1]<<20)
			var want *attempt
			if tt.want >= 0 {
				want = as[tt.want]
			}
			if got := memorySuspectLocked(p, 0); got != want {
				t.Errorf("suspect = %+v, want %+v", got, want)
			}
		})
	}
}

func TestRunsAgain(t *testing.T) {
	t.Parallel()
	a, other := &attempt{}, &attempt{}
	offline, online := &execution.Job{}, &execution.Job{Egress: &execution.EgressPolicy{Hosts: []string{"*"}}}
	// A capability call is a side effect as an outbound request is: the
	// shim announces either (net) before it goes out.
	capable := &execution.Job{Capabilities: map[string]execution.Capability{"inventory": {}}}
	always, never := &execution.Job{Capabilities: capable.Capabilities, Retry: execution.RetryAlways}, &execution.Job{Retry: execution.RetryNever}
	tests := []struct {
		name string
		a    *attempt
		v    verdict
		job  *execution.Job
		net  bool
		want bool
	}{
		{"neighbour of a spinner", a, verdict{cause: causeSpin, suspect: other}, offline, false, true},
		{"neighbour of a bomb", a, verdict{cause: causeMemory, suspect: other}, offline, false, true},
		{"unresponsive, no suspect", a, verdict{cause: causeUnresponsive}, offline, false, true},
		{"crash", a, verdict{cause: causeCrash}, offline, false, true},
		{"outbound allowed, not used", a, verdict{cause: causeCrash}, online, false, true},
		{"outbound used", a, verdict{cause: causeCrash}, online, true, false},
		{"the suspect", a, verdict{cause: causeMemory, suspect: a}, offline, false, false},
		{"second run, another named", &attempt{rerun: true, runs: 2}, verdict{cause: causeMemory, suspect: other}, offline, false, true},
		{"second run, nobody named", &attempt{rerun: true, runs: 2}, verdict{cause: causeMemory}, offline, false, true},
		{"second run, unresponsive", &attempt{rerun: true, runs: 2}, verdict{cause: causeUnresponsive}, offline, false, true},
		{"last run", &attempt{rerun: true, runs: MaxRuns}, verdict{cause: causeSpin, suspect: other}, offline, false, false},
		{"second run, outbound used", &attempt{rerun: true, runs: 2}, verdict{cause: causeSpin, suspect: other}, online, true, false},
		{"shutdown", a, verdict{cause: causeShutdown}, offline, false, false},
		{"capability granted, not called", a, verdict{cause: causeCrash}, capable, false, true},
		{"capability called", a, verdict{cause: causeSpin, suspect: other}, capable, true, false},
		{"capability called, second run", &attempt{rerun: true, runs: 2}, verdict{cause: causeSpin, suspect: other}, capable, true, false},
		{"retry always, capability called", a, verdict{cause: causeSpin, suspect: other}, always, true, true},
		{"retry always, the suspect", a, verdict{cause: causeMemory, suspect: a}, always, true, false},
		{"retry always, last run", &attempt{rerun: true, runs: MaxRuns}, verdict{cause: causeSpin, suspect: other}, always, true, false},
		{"retry never, nothing done", a, verdict{cause: causeSpin, suspect: other}, never, false, false},
		{"retry never, crash", a, verdict{cause: causeCrash}, never, false, false},
	}
	for _, tt := range tests {
		if got := runsAgain(tt.a, tt.v, tt.job, tt.net); got != tt.want {
			t.Errorf("runsAgain(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPastDeadline: on a process that stops answering, the execution whose
// deadline passed first is blamed, whether or not its goroutine has noticed.
func TestPastDeadline(t *testing.T) {
	t.Parallel()
	now := time.Unix(100, 0)
	p := &process{}
	early := &attempt{deadline: now.Add(-2 * time.Second)}
	late := &attempt{deadline: now.Add(-time.Second)}
	future := &attempt{deadline: now.Add(time.Second)}
	none := &attempt{}
	for _, a := range []*attempt{late, future, none} {
		trackLocked(p, a)
	}
	if got := pastDeadlineLocked(p, now); got != late {
		t.Errorf("pastDeadlineLocked = %+v, want the one past its deadline", got)
	}
	trackLocked(p, early)
	if got := pastDeadlineLocked(p, now); got != early {
		t.Errorf("pastDeadlineLocked = %+v, want the one whose deadline passed first", got)
	}
	delete(p.attempts, early)
	delete(p.attempts, late)
	if got := pastDeadlineLocked(p, now); got != nil {
		t.Errorf("pastDeadlineLocked = %+v, want none before any deadline", got)
	}
}

// TestIsolationProcesses: quarantined code goes only to the quarantine
// process and runs again after an unexplained loss only on the rerun
// process, one execution at a time on each; nothing else ever goes there,
// and the pool's own processes stay free for everything else.
func TestIsolationProcesses(t *testing.T) {
	t.Parallel()
	healthy := func() *process {
		return &process{exited: make(chan struct{}), responsive: true, attempts: map[*attempt]struct{}{}}
	}
	a, b, quar, rerun := healthy(), healthy(), healthy(), healthy()
	l := &Pool{
		cfg:       Config{MaxConcurrency: 2},
		changed:   make(chan struct{}),
		slots:     []*slot{{proc: a}, {proc: b}},
		isolation: [2]*slot{{proc: quar, isolation: isolateQuarantined}, {proc: rerun, isolation: isolateRerun}},
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range 4 {
		p := l.pickLocked("")
		if p == nil || p == quar || p == rerun {
			t.Fatalf("pick %d = %p, want one of the pool's processes (isolation: %p, %p)", i, p, quar, rerun)
		}
		l.takeLocked(p, &attempt{}, "")
	}
	if p := l.pickLocked(""); p != nil {
		t.Errorf("pick with the pool full = %p, want none (never an isolation process)", p)
	}
	for _, tt := range []struct {
		kind isolation
		want *process
	}{{isolateQuarantined, quar}, {isolateRerun, rerun}} {
		if p := l.isolatedLocked(&attempt{isolation: tt.kind}); p != tt.want {
			t.Fatalf("%v pick = %p, want %p", tt.kind, p, tt.want)
		}
		l.takeLocked(tt.want, &attempt{isolation: tt.kind}, "")
		if p := l.isolatedLocked(&attempt{isolation: tt.kind}); p != nil {
			t.Errorf("second %v pick while one runs = %p, want none: they take turns", tt.kind, p)
		}
	}
	// Runs again take their turns in order, smallest turn first.
	rerun.inflight = 0
	older := &attempt{isolation: isolateRerun, turn: 1}
	younger := &attempt{isolation: isolateRerun, turn: 2}
	l.rerunQueue = map[*attempt]struct{}{older: {}, younger: {}}
	if p := l.isolatedLocked(younger); p != nil {
		t.Errorf("rerun pick for the younger of two = %p, want none: the older goes first", p)
	}
	if p := l.isolatedLocked(older); p != rerun {
		t.Errorf("rerun pick for the older = %p, want the rerun process %p", p, rerun)
	}
	delete(l.rerunQueue, older)
	if p := l.isolatedLocked(younger); p != rerun {
		t.Errorf("rerun pick for the younger once alone = %p, want the rerun process %p", p, rerun)
	}
	quar.inflight = 0
	quar.responsive = false
	if p := l.isolatedLocked(&attempt{isolation: isolateQuarantined}); p != nil {
		t.Errorf("pick of an unresponsive quarantine process = %p, want none", p)
	}
	if got := l.allSlotsLocked(); len(got) != 4 || got[2] != l.isolation[0] || got[3] != l.isolation[1] || len(l.slots) != 2 {
		t.Errorf("allSlotsLocked = %d slots (pool %d), want the pool's two, then the isolation slots", len(got), len(l.slots))
	}
}

// TestSlowProbeIsNotAWedge: a process whose probes time out (a loaded
// machine) while its executions still get lines is alive; once the lines
// stop too, it is killed after UnresponsiveKill.
func TestSlowProbeIsNotAWedge(t *testing.T) {
	t.Parallel()
	const interval = 50 * time.Millisecond
	// While lines flow, one arrives during each probe: the server stores it
	// when the probe reaches it, so no ticker has to beat the probe.
	var flowing atomic.Bool
	var p *process
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flowing.Load() {
			p.heard.Store(time.Now().UnixNano())
		}
		select { // answers too late for the probe
		case <-r.Context().Done():
		case <-time.After(4 * interval):
		}
	}))
	defer slow.Close()
	l := &Pool{
		cfg:        Config{ProbeInterval: interval, UnresponsiveKill: 3 * interval},
		client:     slow.Client(),
		changed:    make(chan struct{}),
		quarantine: newQuarantine(),
		bound:      memBound{kind: boundOff},
	}
	p = &process{url: slow.URL, cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}, exited: make(chan struct{}), responsive: true}
	var since time.Time
	flowing.Store(true)
	for range 8 { // 8 missed probes, 2.7 times UnresponsiveKill
		if _, cause := l.check(t.Context(), p, &since); cause != "" {
			t.Fatalf("check() with lines arriving = %q, want no kill", cause)
		}
	}
	flowing.Store(false)
	// Each check lasts a probe: check again until the missed probes add
	// up to UnresponsiveKill.
	var cause string
	testwait.Until(10*time.Second, func() bool {
		_, cause = l.check(t.Context(), p, &since)
		return cause != ""
	})
	if cause != causeUnresponsive {
		t.Fatalf("check() with no lines = %q, want %q", cause, causeUnresponsive)
	}
}

func TestParseStatm(t *testing.T) {
	t.Parallel()
	page := int64(os.Getpagesize())
	for in, want := range map[string]int64{
		"2937 1024 500 1 0 300 0\n": 1024 * page,
		"10 0 0 0 0 0 0":            0,
		"":                          0,
		"12":                        0,
		"12 x 3":                    0,
	} {
		if got := parseStatm([]byte(in)); got != want {
			t.Errorf("parseStatm(%q) = %d, want %d", in, got, want)
		}
	}
	if self := ResidentBytes(os.Getpid()); self <= 0 {
		t.Errorf("ResidentBytes(own pid) = %d, want the test's resident memory", self)
	}
}

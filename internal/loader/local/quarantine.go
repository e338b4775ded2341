package local

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// Quarantine bounds: how long code that cost its neighbours once runs
// alone, and how many such codes are remembered (the oldest go first).
const (
	quarantineFor  = 10 * time.Minute
	quarantineSize = 4096
)

// quarantine remembers code (by hash, per caller) whose execution blocked
// or blew up its runtime process, so that its next executions run on a
// process of their own and cannot cost a neighbour twice. AI agents resend
// the same failing code often.
type quarantine struct {
	mu    sync.Mutex
	until map[string]time.Time
	now   func() time.Time
}

func newQuarantine() *quarantine {
	return &quarantine{until: map[string]time.Time{}, now: time.Now}
}

// add quarantines key for quarantineFor, evicting the entry that ends
// first when the set is full.
func (q *quarantine) add(key string) {
	if key == "" {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	if _, ok := q.until[key]; !ok && len(q.until) >= quarantineSize {
		for k, t := range q.until {
			if !t.After(now) {
				delete(q.until, k)
			}
		}
		if len(q.until) >= quarantineSize {
			oldest := ""
			for k, t := range q.until {
				if oldest == "" || t.Before(q.until[oldest]) {
					oldest = k
				}
			}
			delete(q.until, oldest)
		}
	}
	q.until[key] = now.Add(quarantineFor)
}

// has reports whether key is quarantined now.
func (q *quarantine) has(key string) bool {
	if key == "" {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.until[key]
	if ok && !t.After(q.now()) {
		delete(q.until, key)
		return false
	}
	return ok
}

// holds reports whether job's code is quarantined. The code is hashed only
// when something is quarantined at all.
func (q *quarantine) holds(job *execution.Job) bool {
	q.mu.Lock()
	empty := len(q.until) == 0
	q.mu.Unlock()
	return !empty && q.has(quarantineKey(job))
}

// quarantineKey identifies a job's code for its caller: SHA-256 over the
// caller, the main module and every module's name and source.
func quarantineKey(job *execution.Job) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:%s", len(job.Caller), job.Caller, len(job.MainModule), job.MainModule)
	for _, name := range slices.Sorted(maps.Keys(job.Modules)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(name), name, len(job.Modules[name]), job.Modules[name])
	}
	for _, name := range slices.Sorted(maps.Keys(job.Binary)) {
		b := job.Binary[name]
		fmt.Fprintf(h, "%d:%s%s:%d:%s", len(name), name, b.Kind, len(b.Bytes), b.Bytes)
	}
	return hex.EncodeToString(h.Sum(nil))
}

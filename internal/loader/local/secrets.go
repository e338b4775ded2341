package local

import (
	"maps"
	"slices"
	"sync"

	"github.com/dynamic-workers/gateway/internal/redact"
)

// activeSecrets holds the secret values of the executions running now, so
// that whatever workerd itself prints (an uncaught error quoting a value,
// say) reaches the gateway's log masked. Executions come and go far more
// often than workerd prints, so the masker is built when a line needs it.
type activeSecrets struct {
	mu     sync.Mutex
	counts map[string]int
	masker *redact.Masker // for counts; nil when none or stale
	stale  bool
}

func (a *activeSecrets) add(values []string) {
	if len(values) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil {
		a.counts = map[string]int{}
	}
	for _, v := range values {
		a.counts[v]++
	}
	a.stale = true
}

func (a *activeSecrets) remove(values []string) {
	if len(values) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range values {
		if a.counts[v]--; a.counts[v] <= 0 {
			delete(a.counts, v)
		}
	}
	a.stale = true
}

// mask replaces every spelling of every active secret in s.
func (a *activeSecrets) mask(s string) string {
	a.mu.Lock()
	if a.stale {
		a.masker = redact.New(slices.Collect(maps.Keys(a.counts)))
		a.stale = false
	}
	m := a.masker
	a.mu.Unlock()
	return m.Mask(s)
}

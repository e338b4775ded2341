package loader

import (
	"slices"
	"strings"
	"sync"
)

// activeSecrets holds the secret values of the executions running now, so
// that whatever workerd itself prints (an uncaught error quoting a value,
// say) reaches the gateway's log masked.
type activeSecrets struct {
	mu       sync.Mutex
	counts   map[string]int
	replacer *strings.Replacer // nil when there are none
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
	a.rebuild()
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
	a.rebuild()
}

func (a *activeSecrets) rebuild() {
	if len(a.counts) == 0 {
		a.replacer = nil
		return
	}
	values := make([]string, 0, len(a.counts))
	for v := range a.counts {
		values = append(values, v)
	}
	slices.SortFunc(values, func(x, y string) int { return len(y) - len(x) })
	pairs := make([]string, 0, 2*len(values))
	for _, v := range values {
		pairs = append(pairs, v, "[REDACTED]")
	}
	a.replacer = strings.NewReplacer(pairs...)
}

// mask replaces every active secret in s.
func (a *activeSecrets) mask(s string) string {
	a.mu.Lock()
	r := a.replacer
	a.mu.Unlock()
	if r == nil {
		return s
	}
	return r.Replace(s)
}

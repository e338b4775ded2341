package executions

import "sync"

// broker tells event streams that an execution has new events or a new
// status: wait returns a channel closed by the next notify.
type broker struct {
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func newBroker() *broker { return &broker{waiting: map[string]chan struct{}{}} }

func (b *broker) wait(id string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.waiting[id]
	if !ok {
		ch = make(chan struct{})
		b.waiting[id] = ch
	}
	return ch
}

func (b *broker) notify(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.waiting[id]; ok {
		close(ch)
		delete(b.waiting, id)
	}
}

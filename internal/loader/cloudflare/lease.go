package cloudflare

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/dynamic-workers/gateway/worker"
)

// warmSlots leases the warm isolates of reuse keys. The shim's own pool of
// them (warm.js) lives in one shim isolate's memory, while Cloudflare may
// run the shim in many isolates at once, and LOADER.get(id) finds the same
// Dynamic Worker from any of them: two shim isolates could run two
// executions in one reused isolate at once. So the relay leases the slot
// here, and the id the shim sees names this relay and the slot ("<key>.g
// <relay>s<slot>"): the shim's pool for it is never contended, and one
// Dynamic Worker id never runs two executions at once, across shim isolates
// and across gateways (each relay has its own random name). The bound is
// worker.Caps.MaxWarmIsolates per reuse key per gateway.
type warmSlots struct {
	name string // this relay's, random

	mu   sync.Mutex
	keys map[string]*keySlots
}

type keySlots struct {
	busy    []bool
	waiters []chan int // each gets the slot passed to it
}

func newWarmSlots() *warmSlots {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &warmSlots{name: hex.EncodeToString(b[:]), keys: map[string]*keySlots{}}
}

// lease waits for a free slot of key, until ctx ends; it returns the
// isolate id to send and the release to call once the execution is over.
func (s *warmSlots) lease(ctx context.Context, key string) (string, func(), error) {
	s.mu.Lock()
	k := s.keys[key]
	if k == nil {
		k = &keySlots{busy: make([]bool, worker.Caps.MaxWarmIsolates)}
		s.keys[key] = k
	}
	for slot, busy := range k.busy {
		if !busy {
			k.busy[slot] = true
			s.mu.Unlock()
			return s.id(key, slot), s.releaser(key, k, slot), nil
		}
	}
	wait := make(chan int, 1)
	k.waiters = append(k.waiters, wait)
	s.mu.Unlock()
	select {
	case slot := <-wait:
		return s.id(key, slot), s.releaser(key, k, slot), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range k.waiters {
		if w == wait {
			k.waiters = append(k.waiters[:i], k.waiters[i+1:]...)
			return "", nil, context.Cause(ctx)
		}
	}
	// Passed a slot as the wait ended: give it on.
	s.pass(key, k, <-wait)
	return "", nil, context.Cause(ctx)
}

func (s *warmSlots) id(key string, slot int) string {
	return fmt.Sprintf("%s.g%ss%d", key, s.name, slot)
}

// releaser frees slot once, passing it straight to the next waiter.
func (s *warmSlots) releaser(key string, k *keySlots, slot int) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.pass(key, k, slot)
		})
	}
}

// pass gives slot to the next waiter, or frees it (and forgets a key with
// none busy). s.mu is held.
func (s *warmSlots) pass(key string, k *keySlots, slot int) {
	if len(k.waiters) > 0 {
		next := k.waiters[0]
		k.waiters = k.waiters[1:]
		next <- slot
		return
	}
	k.busy[slot] = false
	for _, b := range k.busy {
		if b {
			return
		}
	}
	delete(s.keys, key)
}

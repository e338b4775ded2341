package shim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Channels keeps the channels to one shim process. Isolates made by
// LOADER.load on a channel live as long as the channel does (workerd ties
// them to the request that opened it: 1,000 fresh executions on one channel
// held 2.3 GB), so fresh executions take a channel only with Fresh set, and
// then a channel carries a bounded share of them and retires: it takes no
// new ones and closes when its last ends. While too many retired channels
// still carry executions (long ones), fresh executions go as /run calls. The
// local pool leaves Fresh unset: an isolate held past its execution is
// memory its process's bound does not count. Warm executions (LOADER.get)
// leave nothing behind; a channel carries 4,096 of them before it retires.
type Channels struct {
	Client *http.Client
	Base   string
	Secret string
	// Fresh sends fresh executions on the channels too; without it they go
	// as /run calls and only warm ones (isolate "reuse") take a channel.
	Fresh bool

	mu      sync.Mutex
	cur     *Channel
	retired int // retired channels still carrying executions
	closed  bool
	opened  int
}

// Opened says how many channels it has opened.
func (cs *Channels) Opened() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.opened
}

const (
	channelBudget = 4096
	// freshCost is what a fresh execution costs its channel's budget: a
	// channel carries 16 of them (about 2.3 MB of isolate each, held until
	// it closes) or 4,096 warm ones.
	freshCost = channelBudget / 16
	// maxRetired bounds the retired channels still open per process.
	maxRetired  = 4
	dialTimeout = 5 * time.Second
)

// errNoChannel means the execution goes as a /run call.
var errNoChannel = errors.New("no channel")

// take returns the channel an execution goes on, opening one if need be.
func (cs *Channels) take(ctx context.Context, fresh bool) (*Channel, error) {
	if fresh && !cs.Fresh {
		return nil, errNoChannel
	}
	cost := 1
	if fresh {
		cost = freshCost
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return nil, errNoChannel
	}
	if cs.cur != nil && cs.cur.broken() {
		cs.cur = nil
	}
	if cs.cur != nil {
		ch := cs.cur
		ch.mu.Lock()
		full := ch.spent+cost > channelBudget
		if full && !(fresh && cs.retired >= maxRetired) {
			ch.retired = true
			if ch.open > 0 {
				cs.retired++
				ch.onIdle = cs.released
			}
			cs.cur = nil
		}
		ch.mu.Unlock()
		if cs.cur == nil && !ch.broken() {
			ch.mu.Lock()
			idle := ch.open == 0
			ch.mu.Unlock()
			if idle {
				go ch.conn.CloseNow() // it may wait for the read loop, which may be this goroutine
			}
		}
		if full && cs.cur != nil {
			return nil, errNoChannel
		}
	}
	if cs.cur == nil {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		ch, err := DialChannel(dctx, cs.Client, strings.TrimSuffix(cs.Base, "/"), cs.Secret)
		cancel()
		if err != nil {
			return nil, err
		}
		cs.cur = ch
		cs.opened++
	}
	cs.cur.mu.Lock()
	cs.cur.spent += cost
	cs.cur.mu.Unlock()
	return cs.cur, nil
}

func (cs *Channels) released() {
	cs.mu.Lock()
	cs.retired--
	cs.mu.Unlock()
}

// Close closes the current channel; executions on it end as lost.
func (cs *Channels) Close() {
	cs.mu.Lock()
	cs.closed = true
	ch := cs.cur
	cs.cur = nil
	cs.mu.Unlock()
	if ch != nil {
		ch.fail(errChannelClosed)
	}
}

package mcp

import (
	"net/http"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultMaxSessions is how many sessions one caller may have open by
// default. A session holds memory and a goroutine until it has been idle for
// the session timeout, and opening one counts against no quota.
const DefaultMaxSessions = 64

// sessionIDHeader names a Streamable HTTP session.
const sessionIDHeader = "Mcp-Session-Id"

// sessionLimit bounds the sessions each caller has open: a request that
// could open one (a POST without a session id) is refused with refuse while
// the caller has max open or being opened.
type sessionLimit struct {
	server *sdk.Server
	caller func(*http.Request) string
	max    int
	refuse http.Handler
	next   http.Handler

	mu      sync.Mutex
	owners  map[string]owner // open session id → its caller
	opening map[string]int   // caller → sessions being opened
}

// owner is the caller of an open session, and when it was counted.
type owner struct {
	caller string
	since  time.Time
}

// settleGrace is how long a session counts before the server has to list
// it: one opened a moment ago may not be listed yet, and must not be taken
// for one that has closed.
const settleGrace = 10 * time.Second

func (l *sessionLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get(sessionIDHeader); r.Method == http.MethodDelete && id != "" {
		l.next.ServeHTTP(w, r)
		l.closed(id)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get(sessionIDHeader) != "" {
		l.next.ServeHTTP(w, r)
		return
	}
	caller := l.caller(r)
	if !l.reserve(caller) {
		l.refuse.ServeHTTP(w, r)
		return
	}
	defer l.settle(caller, w)
	l.next.ServeHTTP(w, r)
}

// reserve counts a session about to be opened by caller, if there is room.
// The server's list of sessions is read under the lock, so that no session
// settled meanwhile is missing from it; one settled a moment ago and not
// listed yet still counts.
func (l *sessionLimit) reserve(caller string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	live := map[string]bool{}
	for s := range l.server.Sessions() {
		live[s.ID()] = true
	}
	now := time.Now()
	n := l.opening[caller]
	for id, o := range l.owners {
		switch {
		case !live[id] && now.Sub(o.since) > settleGrace:
			delete(l.owners, id) // closed, or timed out
		case o.caller == caller:
			n++
		}
	}
	if n >= l.max {
		return false
	}
	l.opening[caller]++
	return true
}

// closed forgets session id once the server no longer lists it (a DELETE
// ended it): its room is free at once, not after settleGrace.
func (l *sessionLimit) closed(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.server.Sessions() {
		if s.ID() == id {
			return
		}
	}
	delete(l.owners, id)
}

// settle records the session the request opened, if it did.
func (l *sessionLimit) settle(caller string, w http.ResponseWriter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opening[caller]--; l.opening[caller] == 0 {
		delete(l.opening, caller)
	}
	if id := w.Header().Get(sessionIDHeader); id != "" {
		l.owners[id] = owner{caller: caller, since: time.Now()}
	}
}

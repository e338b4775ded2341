package mcp

import (
	"net/http"
	"sync"

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
	owners  map[string]string // open session id → caller
	opening map[string]int    // caller → sessions being opened
}

func (l *sessionLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
func (l *sessionLimit) reserve(caller string) bool {
	live := map[string]bool{}
	for s := range l.server.Sessions() {
		live[s.ID()] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.opening[caller]
	for id, owner := range l.owners {
		switch {
		case !live[id]:
			delete(l.owners, id) // closed, or timed out
		case owner == caller:
			n++
		}
	}
	if n >= l.max {
		return false
	}
	l.opening[caller]++
	return true
}

// settle records the session the request opened, if it did.
func (l *sessionLimit) settle(caller string, w http.ResponseWriter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opening[caller]--; l.opening[caller] == 0 {
		delete(l.opening, caller)
	}
	if id := w.Header().Get(sessionIDHeader); id != "" {
		l.owners[id] = caller
	}
}

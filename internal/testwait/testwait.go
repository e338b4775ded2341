// Package testwait waits, in tests, for a state that no event announces: a
// runtime process started or gone, a record another goroutine writes off
// the request's path, a file a script appends to, goroutines settling.
// Where an event exists, tests wait on a channel instead; this is the one
// place they look again and again, always with a deadline.
package testwait

import "time"

// interval is how long Until pauses between two looks.
const interval = 10 * time.Millisecond

// Until calls cond until it holds or timeout has passed, and reports
// whether it held. The caller fails the test with what it saw.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

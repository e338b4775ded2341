package webhook

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynamic-workers/gateway/internal/backoff"
)

// rawReceiver accepts connections on loopback, reads each request's head
// and hands the connection to answer, which writes whatever it likes and
// says whether the peer went away before it was done; that goes to cut,
// once per connection (for the first 16).
func rawReceiver(t *testing.T, answer func(c net.Conn) bool) (url string, cut <-chan bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan bool, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				req.Body.Close()
				select {
				case done <- answer(c):
				default: // nobody is counting this many
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook", done
}

// write writes b and reports whether the peer had gone.
func write(c net.Conn, b string) bool {
	_, err := c.Write([]byte(b))
	return err != nil
}

// drip writes b one byte at a time, 50 ms apart, until the peer goes, and
// reports whether it went before the end. The pause is the attack (a
// receiver that answers slowly enough to hold an attempt past its
// timeout), not a wait for an event.
func drip(c net.Conn, b string) bool {
	for i := range len(b) {
		if write(c, b[i:i+1]) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestAttackHostileAnswers: receivers that answer with a flood of headers,
// endless 1xx, a 3xx, a status then a body that never ends, or a head that
// drips in: no answer makes an attempt outlast its timeout (the receiver
// of an answer that would take a minute or more sees the attempt hang up
// before it is done), none is read into memory past a small bound (huge
// headers fail the attempt), and a redirect is never followed.
func TestAttackHostileAnswers(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	huge := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name      string
		answer    func(c net.Conn) bool
		delivered bool
		reason    string // in the first attempt's error
		endless   bool   // the answer outlasts the timeout many times over
	}{
		{"1 MB of headers", func(c net.Conn) bool { return write(c, huge) }, false, "header", false},
		{"10 000 headers", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\n"+strings.Repeat("X-A: b\r\n", 10000)+"Content-Length: 0\r\n\r\n")
		}, false, "header", false},
		{"endless 103", func(c net.Conn) bool {
			for range 10_000_000 {
				if write(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n") {
					return true
				}
			}
			return false
		}, false, "", true},
		{"302 to itself", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 302 Found\r\nLocation: /hook\r\nContent-Length: 0\r\n\r\n")
		}, false, "redirects are not followed", false},
		{"200 then a body that never ends", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n") || drip(c, strings.Repeat("x", 1200))
		}, true, "", true},
		{"a head that drips in", func(c net.Conn) bool { return drip(c, "HTTP/1.1 200 OK\r\nX: "+strings.Repeat("y", 1200)) }, false, "no answer within", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, cut := rawReceiver(t, tt.answer)
			// One attempt: the next would wait past the retry time.
			d := New(Options{Reach: Reach{AllowPrivate: true}, Timeout: timeout, MaxRetryTime: 3 * timeout,
				Backoff: backoff.Policy{Min: time.Hour, Max: time.Hour}})
			t.Cleanup(func() { _ = d.Close(context.Background()) })
			res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret})
			if res.Delivered != tt.delivered || len(res.Attempts) != 1 || !strings.Contains(res.Attempts[0].Error, tt.reason) {
				t.Errorf("Deliver = %+v, want delivered %v after one attempt, error saying %q", res, tt.delivered, tt.reason)
			}
			// Deliver has returned: the receiver learns at its next write
			// whether the attempt hung up or still holds the connection.
			if tt.endless && !<-cut {
				t.Error("the receiver wrote its whole answer: the attempt held on past its timeout")
			}
		})
	}
}

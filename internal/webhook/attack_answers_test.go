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
// and hands the connection to answer, which writes whatever it likes.
func rawReceiver(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
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
				answer(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}

// drip writes b one byte at a time, 50 ms apart, until the peer goes. The
// pause is the attack (a receiver that answers slowly enough to hold an
// attempt past its timeout), not a wait for an event.
func drip(c net.Conn, b string) {
	for i := range len(b) {
		if _, err := c.Write([]byte{b[i]}); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAttackHostileAnswers: receivers that answer with a flood of headers,
// endless 1xx, a 3xx, a status then a body that never ends, or a head that
// drips in: no answer makes an attempt outlast its timeout, none is read
// into memory past a small bound (huge headers fail the attempt), and a
// redirect is never followed.
func TestAttackHostileAnswers(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	huge := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name      string
		answer    func(c net.Conn)
		delivered bool
		reason    string // in the first attempt's error
	}{
		{"1 MB of headers", func(c net.Conn) { _, _ = c.Write([]byte(huge)) }, false, "header"},
		{"10 000 headers", func(c net.Conn) {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 10000) + "Content-Length: 0\r\n\r\n"))
		}, false, "header"},
		{"endless 103", func(c net.Conn) {
			for range 100000 {
				if _, err := c.Write([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")); err != nil {
					return
				}
			}
		}, false, ""},
		{"302 to itself", func(c net.Conn) {
			_, _ = c.Write([]byte("HTTP/1.1 302 Found\r\nLocation: /hook\r\nContent-Length: 0\r\n\r\n"))
		}, false, "redirects are not followed"},
		{"200 then a body that never ends", func(c net.Conn) {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"))
			drip(c, strings.Repeat("x", 1000))
		}, true, ""},
		{"a head that drips in", func(c net.Conn) { drip(c, "HTTP/1.1 200 OK\r\nX: "+strings.Repeat("y", 1000)) }, false, "no answer within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := rawReceiver(t, tt.answer)
			// One attempt: the next would wait past the retry time.
			d := New(Options{Reach: Reach{AllowPrivate: true}, Timeout: timeout, MaxRetryTime: 3 * timeout,
				Backoff: backoff.Policy{Min: time.Hour, Max: time.Hour}})
			t.Cleanup(func() { _ = d.Close(context.Background()) })
			start := time.Now()
			res := d.Deliver(t.Context(), Delivery{URL: u, Body: []byte("{}"), Secret: testSecret})
			if took := time.Since(start); took > timeout+time.Second {
				t.Errorf("Deliver took %s, want at most the timeout %s + 1s", took, timeout)
			}
			if res.Delivered != tt.delivered || len(res.Attempts) != 1 || !strings.Contains(res.Attempts[0].Error, tt.reason) {
				t.Errorf("Deliver = %+v, want delivered %v after one attempt, error saying %q", res, tt.delivered, tt.reason)
			}
		})
	}
}

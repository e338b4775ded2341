package shim

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dynamic-workers/gateway/execution"
)

// fakeRuntime answers the channel's upgrade and, to every job, with what
// answer writes: a runtime that does not keep to the framing or the credit.
func fakeRuntime(t *testing.T, answer func(ctx context.Context, c *websocket.Conn, id uint32)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20)
		for {
			_, data, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if len(data) >= 5 && data[0] == kindEnd {
				answer(r.Context(), c, binary.BigEndian.Uint32(data[1:5]))
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func frame(kind byte, id uint32, payload []byte) []byte {
	b := make([]byte, 5+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:5], id)
	copy(b[5:], payload)
	return b
}

// TestChannelRefusesARuntimeOffTheFraming: whatever comes out of the
// runtime is hostile data. A runtime that sends past an execution's credit
// fails that execution (its pieces are not kept), and one that breaks the
// framing (a text message, an unknown kind, a short head, a short whole
// answer) loses the channel: each execution on it ends as lost, none hangs
// and none is taken as a result.
func TestChannelRefusesARuntimeOffTheFraming(t *testing.T) {
	t.Parallel()
	cases := map[string]func(ctx context.Context, c *websocket.Conn, id uint32){
		"a text message": func(ctx context.Context, c *websocket.Conn, id uint32) {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"result","success":true}`))
		},
		"an unknown kind": func(ctx context.Context, c *websocket.Conn, id uint32) {
			_ = c.Write(ctx, websocket.MessageBinary, frame('Z', id, []byte(`{"type":"result","success":true}`+"\n")))
		},
		"a short head": func(ctx context.Context, c *websocket.Conn, id uint32) {
			_ = c.Write(ctx, websocket.MessageBinary, frame(kindHead, id, []byte{200}))
		},
		"a short whole answer": func(ctx context.Context, c *websocket.Conn, id uint32) {
			_ = c.Write(ctx, websocket.MessageBinary, frame(kindWhole, id, []byte{0}))
		},
		"a frame shorter than its header": func(ctx context.Context, c *websocket.Conn, id uint32) {
			_ = c.Write(ctx, websocket.MessageBinary, []byte{kindData, 0})
		},
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base := fakeRuntime(t, answer)
			cs := &Channels{Client: http.DefaultClient, Base: base, Secret: strings.Repeat("s", 40), Fresh: true}
			defer cs.Close()
			job := &execution.Job{ID: "ex_hostile", Modules: map[string]string{"main.js": "x"}, MainModule: "main.js"}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var events []execution.Event
			err := (&Call{Client: http.DefaultClient, Base: base, Secret: cs.Secret, Channels: cs, MaxEvent: 1 << 20}).Run(ctx, job, func(ev execution.Event) error {
				events = append(events, ev)
				return nil
			})
			var lost *LostError
			if !errors.As(err, &lost) || ctx.Err() != nil {
				t.Fatalf("Run = %v (context %v), want the runtime lost before the deadline", err, ctx.Err())
			}
			for _, ev := range events {
				if ev.Type == execution.EventResult || ev.Type == execution.EventLog {
					t.Errorf("got a %s event from a runtime off the framing", ev.Type)
				}
			}
		})
	}
}

// TestStreamBoundsWhatARuntimeSendsPastItsCredit: what a runtime sends
// past an execution's credit is not kept (the gateway's memory for one
// execution stays within its window and a piece), and the reader gets the
// error instead of what was held.
func TestStreamBoundsWhatARuntimeSendsPastItsCredit(t *testing.T) {
	t.Parallel()
	ch := &Channel{streams: map[uint32]*Stream{}}
	s := &Stream{ch: ch, id: 1, ctx: t.Context(), wake: make(chan struct{}, 1)}
	s.put(200, nil, false)
	piece := []byte(strings.Repeat("x", channelPiece))
	for range channelWindow/channelPiece + 4 {
		s.put(0, piece, false)
		if s.held > channelWindow+channelPiece {
			t.Fatalf("the stream holds %d bytes, past its window and a piece", s.held)
		}
	}
	if n, err := s.Read(make([]byte, 1<<20)); n != 0 || err == nil || !strings.Contains(err.Error(), "past its credit") {
		t.Fatalf("Read = %d, %v; want the credit error and nothing of what was held", n, err)
	}
	s.put(0, nil, true) // a later end changes nothing
	if _, err := s.Read(make([]byte, 10)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read after the end = %v, want the credit error still", err)
	}
}

// TestChannelFailsWhenARuntimeStopsReading: a runtime that takes the
// channel and then reads nothing fills the connection's buffers; the
// writes that wait behind them end, with the channel, once none has made
// progress for its stall bound, instead of holding their senders for ever.
func TestChannelFailsWhenARuntimeStopsReading(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		<-r.Context().Done() // reads nothing
	}))
	t.Cleanup(srv.Close)
	ch, err := dialChannel(t.Context(), http.DefaultClient, srv.URL, strings.Repeat("s", 40), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.fail(errChannelClosed)
	ended := make(chan error, 1)
	go func() {
		piece := make([]byte, 1<<20)
		for {
			if err := ch.send(kindPiece, 1, piece); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if !ch.broken() {
			t.Errorf("send ended with %v and the channel open, want it failed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the writes to a runtime that reads nothing still wait after 30 s")
	}
}

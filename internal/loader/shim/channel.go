package shim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/dynamic-workers/gateway/worker"
)

// A Channel is one WebSocket to a local shim (worker/src/channel.js),
// authenticated once when it opens, on which executions are multiplexed:
// the job goes in pieces, the answer comes back as /run's status and NDJSON
// body in pieces, within a credit window per execution, so a slow caller
// stalls only its own execution. See channel.js for the framing.
type Channel struct {
	conn *websocket.Conn

	mu      sync.Mutex
	streams map[uint32]*Stream
	next    uint32
	err     error // why it closed, once it has
	spent   int   // of its budget (Channels)
	open    int   // executions on it
	retired bool  // it takes no new executions, and closes once it has none
	onIdle  func()
	done    chan struct{} // closed when it fails: ends watch

	// Writes in progress, for watch: a write that makes no progress for
	// stall fails the channel (a runtime that stops reading would otherwise
	// hold every sender, past its execution's deadline).
	wmu     sync.Mutex
	writing int       // writes started and not ended
	since   time.Time // when the last write ended, or the first began
	stall   time.Duration
}

// writeStall is how long the channel's writes may make no progress.
const writeStall = 10 * time.Second

// Frame kinds (channel.js).
const (
	kindPiece  = 'J'
	kindEnd    = 'E'
	kindCredit = 'C'
	kindCancel = 'X'
	kindHead   = 'H'
	kindData   = 'D'
	kindFin    = 'F'
	kindWhole  = 'W'
)

var (
	channelWindow = worker.Caps.ChannelWindow
	channelPiece  = worker.Caps.ChannelPiece
)

// errChannelClosed is what an execution on a channel the gateway closed gets.
var errChannelClosed = errors.New("the channel to the runtime was closed")

// DialChannel opens a channel to the shim at base (http://host:port).
func DialChannel(ctx context.Context, client *http.Client, base, secret string) (*Channel, error) {
	return dialChannel(ctx, client, base, secret, writeStall)
}

func dialChannel(ctx context.Context, client *http.Client, base, secret string, stall time.Duration) (*Channel, error) {
	signed, err := http.NewRequest(http.MethodGet, base+"/channel", nil)
	if err != nil {
		return nil, err
	}
	Sign(signed, nil, secret, time.Now())
	conn, resp, err := websocket.Dial(ctx, base+"/channel", &websocket.DialOptions{
		HTTPClient:      client,
		HTTPHeader:      signed.Header,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, ErrSecretMismatch
		}
		return nil, fmt.Errorf("open the channel to the runtime: %w", err)
	}
	conn.SetReadLimit(int64(channelPiece) + 5)
	ch := &Channel{conn: conn, streams: map[uint32]*Stream{}, done: make(chan struct{}), stall: stall}
	go ch.read()
	go ch.watch()
	return ch, nil
}

// watch fails the channel when its writes make no progress for ch.stall.
// One ticker per channel instead of a timer per write: a write's own
// deadline (a context with a timeout) cost a timer and a context callback
// per message.
func (ch *Channel) watch() {
	tick := time.NewTicker(ch.stall / 4)
	defer tick.Stop()
	for {
		select {
		case <-ch.done:
			return
		case now := <-tick.C:
			ch.wmu.Lock()
			stalled := ch.writing > 0 && now.Sub(ch.since) > ch.stall
			ch.wmu.Unlock()
			if stalled {
				ch.fail(errors.New("a write to the runtime made no progress"))
				return
			}
		}
	}
}

// read hands each message to its execution until the channel fails.
func (ch *Channel) read() {
	for {
		typ, data, err := ch.conn.Read(context.Background())
		if err != nil {
			ch.fail(err)
			return
		}
		if typ != websocket.MessageBinary || len(data) < 5 {
			ch.fail(errors.New("the runtime sent a malformed channel message"))
			return
		}
		id := binary.BigEndian.Uint32(data[1:5])
		ch.mu.Lock()
		s := ch.streams[id]
		ch.mu.Unlock()
		if s == nil {
			continue // an execution the gateway has stopped reading
		}
		switch data[0] {
		case kindHead:
			if len(data) != 7 {
				ch.fail(errors.New("the runtime sent a malformed head"))
				return
			}
			s.put(int(binary.BigEndian.Uint16(data[5:7])), nil, false)
		case kindData:
			s.put(0, data[5:], false)
		case kindFin:
			s.put(0, nil, true)
		case kindWhole:
			if len(data) < 7 {
				ch.fail(errors.New("the runtime sent a malformed answer"))
				return
			}
			s.put(int(binary.BigEndian.Uint16(data[5:7])), data[7:], true)
		default:
			ch.fail(fmt.Errorf("the runtime sent a channel message of unknown kind %q", data[0]))
			return
		}
	}
}

// fail closes the channel: every execution on it ends with err.
func (ch *Channel) fail(err error) {
	ch.mu.Lock()
	if ch.err == nil {
		ch.err = err
		if ch.done != nil {
			close(ch.done)
		}
	}
	streams := ch.streams
	ch.streams = map[uint32]*Stream{}
	ch.open = 0
	idle := ch.idleLocked()
	ch.mu.Unlock()
	for _, s := range streams {
		s.lose(err)
	}
	go ch.conn.CloseNow() // it may wait for the read loop, which may be this goroutine
	if idle != nil {
		idle()
	}
}

// idleLocked returns the channel's onIdle, once, if it is retired and
// carries nothing.
func (ch *Channel) idleLocked() func() {
	if !ch.retired || ch.open > 0 || ch.onIdle == nil {
		return nil
	}
	f := ch.onIdle
	ch.onIdle = nil
	return f
}

// broken reports whether the channel has closed.
func (ch *Channel) broken() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.err != nil
}

// send writes one message. Writes use no execution's context (coder's
// websocket closes the connection when a write's context ends); watch
// bounds them.
func (ch *Channel) send(kind byte, id uint32, payload []byte) error {
	frame := make([]byte, 5+len(payload))
	frame[0] = kind
	binary.BigEndian.PutUint32(frame[1:5], id)
	copy(frame[5:], payload)
	ch.wmu.Lock()
	if ch.writing == 0 {
		ch.since = time.Now()
	}
	ch.writing++
	ch.wmu.Unlock()
	err := ch.conn.Write(context.Background(), websocket.MessageBinary, frame)
	ch.wmu.Lock()
	ch.writing--
	ch.since = time.Now()
	ch.wmu.Unlock()
	return err
}

// start sends body as a new execution and returns its stream.
func (ch *Channel) start(ctx context.Context, body []byte) (*Stream, error) {
	ch.mu.Lock()
	if ch.err != nil {
		ch.mu.Unlock()
		return nil, ch.err
	}
	ch.next++
	s := &Stream{ch: ch, id: ch.next, ctx: ctx, wake: make(chan struct{}, 1)}
	ch.streams[s.id] = s
	ch.open++
	ch.mu.Unlock()
	for off := 0; ; off += channelPiece {
		end := min(off+channelPiece, len(body))
		kind := byte(kindPiece)
		if end == len(body) {
			kind = kindEnd
		}
		if err := ch.send(kind, s.id, body[off:end]); err != nil {
			ch.fail(err)
			return nil, err
		}
		if kind == kindEnd {
			return s, nil
		}
	}
}

// remove forgets s; cancel tells the shim to stop it.
func (ch *Channel) remove(s *Stream, cancel bool) {
	ch.mu.Lock()
	if ch.streams[s.id] != s {
		ch.mu.Unlock()
		return
	}
	delete(ch.streams, s.id)
	ch.open--
	idle := ch.idleLocked()
	ch.mu.Unlock()
	if cancel {
		_ = ch.send(kindCancel, s.id, nil) // a failed write fails the channel
	}
	if idle != nil {
		go ch.conn.CloseNow() // it may wait for the read loop, which may be this goroutine
		idle()
	}
}

// A Stream is one execution's answer on a channel: its status, then its
// body, read as an io.Reader. Close stops it (and, if the shim had not
// finished it, cancels it there).
type Stream struct {
	ch   *Channel
	id   uint32
	ctx  context.Context
	wake chan struct{}

	mu      sync.Mutex
	status  int
	pieces  [][]byte
	held    int // bytes in pieces
	unacked int // bytes read and not yet credited
	fin     bool
	err     error
	closed  bool
}

// put takes what the shim sent: a status, a piece of the body, or its end.
func (s *Stream) put(status int, piece []byte, fin bool) {
	s.mu.Lock()
	if status != 0 {
		s.status = status
	}
	switch {
	case len(piece) == 0, s.err != nil:
	case s.held+len(piece) > channelWindow+channelPiece:
		// Nothing more of it is kept or read: the error comes next.
		s.err = errors.New("the runtime sent past its credit")
		s.pieces, s.held = nil, 0
	default:
		s.pieces = append(s.pieces, piece)
		s.held += len(piece)
	}
	if fin && s.err == nil {
		s.fin = true
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Stream) lose(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// head waits for the answer's status.
func (s *Stream) head() (int, error) {
	for {
		s.mu.Lock()
		status, err := s.status, s.err
		s.mu.Unlock()
		if status != 0 {
			return status, nil
		}
		if err != nil {
			return 0, err
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
	}
}

// Read reads the answer's body, granting the shim credit as it goes.
func (s *Stream) Read(p []byte) (int, error) {
	for {
		s.mu.Lock()
		if s.held > 0 {
			n := copy(p, s.pieces[0])
			if n == len(s.pieces[0]) {
				s.pieces[0] = nil
				s.pieces = s.pieces[1:]
			} else {
				s.pieces[0] = s.pieces[0][n:]
			}
			s.held -= n
			s.unacked += n
			grant := 0
			if s.unacked >= channelWindow/2 {
				grant, s.unacked = s.unacked, 0
			}
			s.mu.Unlock()
			if grant > 0 {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], uint32(grant))
				if err := s.ch.send(kindCredit, s.id, b[:]); err != nil {
					s.ch.fail(err)
				}
			}
			return n, nil
		}
		fin, err := s.fin, s.err
		s.mu.Unlock()
		if fin {
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
	}
}

// Close stops reading the answer.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancel := !s.fin && s.err == nil
	s.pieces, s.held = nil, 0
	s.mu.Unlock()
	s.ch.remove(s, cancel)
	return nil
}

// Package stream is the transport of realtime: it holds the connections of
// realtime clients, Server-Sent Events streams (PocketBase's
// /api/realtime) and WebSockets (our /api/realtime/ws), and writes the
// broker's events to them. What an event and an error look like to a
// client is the REST adapter's to say; it passes that in Config and mounts
// the handlers.
package stream

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/realtime"
)

// Realtime streams, written without a goroutine per stream: SSE streams
// and WebSocket clients alike. A stream takes over its connection; its
// events wait in the broker, in the feeds of its groups, and the broker
// wakes the stream when one comes (realtime.ConnectFunc). An idle SSE
// stream holds its connection, a goroutine blocked on reading it (which
// notices a client that goes away at once) and a few hundred bytes: no
// HTTP buffers, no queue, no timers. A WebSocket has instead a goroutine
// that reads the client's messages and answers them. The hub pings every
// stream and closes the ones left without subscriptions.
//
// Woken streams are written in rounds: a round takes, for every stream
// woken before it began, everything that piled up for it meanwhile and
// writes it with one system call, each event as one HTTP chunk (or one
// WebSocket text message). When the server keeps up, a round is one event
// and starts at once; under load, rounds grow longer and each write
// carries more events, so the system calls, which cost far more than the
// bytes, stay about one per stream per round, and the work per subscriber
// is done once per write, not once per event. There is one writer per two
// processors, so that the others serve requests (among them the writes
// that make the events) and run the broker at once; a round of more than
// streamLongRound streams, which takes long enough that its length is what
// delays events, gets a writer per processor (on two cores and 10,000
// streams that took p50 from 113–156 to 111–139 ms, and made the requests
// wait 3 ms more). A write never waits: what the socket does not take at
// once is written by a goroutine of its own, with a deadline, while the
// rounds go on.
//
// A round's cost is almost all in the kernel: on loopback a send also runs
// the receiver's TCP, about 15 µs on the 2-core development VM, so a round
// of 10,000 streams takes 150 ms of CPU however little the server adds
// (bench/realtime -floor measures it on a machine).

// Pacing of the streams. How far a stream may fall behind before it is
// disconnected is the broker's limit.
const (
	// streamBatch is how many streams a writer takes from a round at once.
	streamBatch = 32
	// streamWriterIdle is how long a writer waits for work before it exits.
	streamWriterIdle = 5 * time.Second
	// streamLongRound is the number of streams from which a round gets a
	// writer per processor.
	streamLongRound = 2000
)

// Timings of a realtime stream.
const (
	// pingEvery is how often an idle stream gets a ping (an SSE comment
	// line, a WebSocket ping), which keeps proxies from closing it.
	pingEvery = 25 * time.Second
	// idleAfter is how long a client may stay without subscriptions.
	idleAfter = 5 * time.Minute
	// writeTimeout bounds a write that waits for the client: a client that
	// does not read is dropped rather than holding a goroutine.
	writeTimeout = 10 * time.Second
)

// Config is what a Hub needs from the REST adapter that mounts it.
type Config struct {
	Broker *realtime.Broker
	// Auth identifies the token of a WebSocket client's subscribe message.
	Auth *auth.Service
	Log  *slog.Logger
	// AppendRecord appends the JSON of an event's record as a client sees
	// it: the REST API's record shape, projected to the subscription's
	// fields (m.Fields).
	AppendRecord func(b []byte, m *realtime.Message) []byte
	// ErrorBody renders err as the REST API's error JSON does, for a
	// WebSocket error message; it logs an internal error and hides it.
	ErrorBody func(r *http.Request, err error) (status int, message string, data map[string]any)
}

// Hub writes and pings the realtime streams of one API.
type Hub struct {
	broker       *realtime.Broker
	auth         *auth.Service
	log          *slog.Logger
	appendRecord func(b []byte, m *realtime.Message) []byte
	errorBody    func(r *http.Request, err error) (int, string, map[string]any)
	// procs and longRound set writersFor: GOMAXPROCS and streamLongRound.
	procs, longRound int
	// pingEvery, idleAfter and readTimeout are the package's constants
	// but in tests.
	pingEvery, idleAfter, readTimeout time.Duration
	// wake tells a waiting writer that there is work.
	wake chan struct{}

	mu      sync.Mutex
	streams map[*stream]struct{}
	pinging bool
	// writers is the number of writers; peak is the most there have been.
	writers, peak int
	// round is the streams of the current round, of which the writers
	// have taken round[:taken]; next is the streams scheduled since it
	// began.
	round, next []*stream
	taken       int
}

// NewHub returns a hub for c's broker; it starts no goroutine until a
// stream comes.
func NewHub(c Config) *Hub {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return &Hub{
		broker:       c.Broker,
		auth:         c.Auth,
		log:          c.Log,
		appendRecord: c.AppendRecord,
		errorBody:    c.ErrorBody,
		procs:        runtime.GOMAXPROCS(0),
		longRound:    streamLongRound,
		pingEvery:    pingEvery,
		idleAfter:    idleAfter,
		readTimeout:  wsReadTimeout,
		wake:         make(chan struct{}, 1),
		streams:      map[*stream]struct{}{},
	}
}

// stream is one hijacked event stream: Server-Sent Events, or a
// WebSocket (ws set), whose events are text messages and whose pings are
// ping frames.
type stream struct {
	hub    *Hub
	conn   net.Conn
	client *realtime.Client
	// raw writes to the socket without waiting; nil when conn has no
	// descriptor of its own (TLS), and then every write is a drain.
	raw syscall.RawConn
	// idLine starts every SSE event: "id:" and the client id.
	idLine string
	// ws is the WebSocket of a WebSocket stream (websocket.go).
	ws *wsConn

	mu        sync.Mutex
	scheduled bool // in a round, or being written
	// woken is set when the broker woke the stream while it was being
	// written: it goes to the next round.
	woken  bool
	ping   bool // an SSE ping waits
	closed bool
	// idle is set when the hub closes the stream for having had no
	// subscriptions for idleAfter.
	idle bool
	// noSubsSince is when the hub first saw the stream without
	// subscriptions (zero while it has some); used by the hub only.
	noSubsSince time.Time
}

// newStream returns a stream of h on conn, connected to the broker.
func (h *Hub) newStream(conn net.Conn, ws *wsConn) *stream {
	s := &stream{hub: h, conn: conn, ws: ws}
	if sc, ok := conn.(syscall.Conn); ok && canWriteNow {
		s.raw, _ = sc.SyscallConn()
	}
	s.client = h.broker.ConnectFunc(s.wake, s.close)
	s.idLine = "id:" + s.client.ID
	return s
}

// appendChunk appends prefix and body as one HTTP/1.1 chunk.
func appendChunk(b []byte, prefix string, body []byte) []byte {
	b = strconv.AppendUint(b, uint64(len(prefix)+len(body)), 16)
	b = append(b, "\r\n"...)
	b = append(b, prefix...)
	b = append(b, body...)
	return append(b, "\r\n"...)
}

// watch waits for the client to go away.
func (s *stream) watch() {
	var b [64]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			break
		}
	}
	s.hub.broker.Disconnect(s.client) // closes s through onClose
	s.close()
}

// wake puts the stream in the next round; the broker calls it when an
// event comes for the stream after it had taken all it had.
func (s *stream) wake() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.scheduled {
		s.woken = true
		s.mu.Unlock()
		return
	}
	s.scheduled = true
	s.mu.Unlock()
	s.hub.schedule(s)
}

// queuePing asks for a ping in the stream's next write; a WebSocket is
// pinged by coder/websocket instead, outside the rounds, since its Ping
// waits for the pong.
func (s *stream) queuePing() {
	if s.ws != nil {
		go s.ws.ping()
		return
	}
	s.mu.Lock()
	s.ping = true
	s.mu.Unlock()
	s.wake()
}

// streamWriter is the memory a writer reuses from one stream to the next.
type streamWriter struct {
	msgs []*realtime.Message
	buf  []byte
}

// flush takes the stream's events and writes them with one system call
// that does not wait. What the socket does not take is left to drain.
func (s *stream) flush(w *streamWriter) {
	s.mu.Lock()
	ping, closed := s.ping, s.closed
	s.ping, s.woken = false, false
	s.mu.Unlock()
	if closed {
		s.flushed(false)
		return
	}
	msgs := s.client.Take(w.msgs[:0])
	if len(msgs) == 0 && !ping {
		s.flushed(false) // asleep: the broker wakes it
		return
	}
	var buf []byte
	if s.ws != nil {
		var ok bool
		buf, ok = s.ws.frame(w.buf[:0], msgs, s.hub.encodeWS)
		if !ok {
			// Another write waits for the client: this one is made after
			// it, and the round does not wait with it.
			go s.drainAside(bytes.Clone(w.buf[:0]), append([]*realtime.Message(nil), msgs...))
			clear(msgs)
			w.msgs = msgs[:0]
			return
		}
	} else {
		buf = w.buf[:0]
		for _, m := range msgs {
			buf = appendChunk(buf, s.idLine, m.Encoded("sse", s.hub.encodeSSE))
		}
		if ping {
			buf = appendChunk(buf, "", ssePing)
		}
	}
	clear(msgs)
	w.msgs, w.buf = msgs[:0], buf
	n := 0
	if s.raw != nil {
		var err error
		n, err = s.writeNow(buf)
		if err == nil && n == len(buf) {
			s.wrote()
			s.flushed(true)
			return
		}
	}
	go s.drain(bytes.Clone(buf[n:]))
}

// writeNow makes one write(2) of p on the socket, without waiting for it
// to be writable.
func (s *stream) writeNow(p []byte) (int, error) {
	var n int
	var werr error
	err := s.raw.Write(func(fd uintptr) bool {
		n, werr = writeNonblocking(fd, p)
		return true
	})
	if err != nil {
		return 0, err
	}
	return n, werr
}

// drain writes rest, the part of a flush the socket did not take,
// waiting for the client for as long as writeTimeout, then hands the
// stream back to the rounds. It runs in a goroutine of its own, only for
// a client that does not read as fast as events come (or on TLS).
func (s *stream) drain(rest []byte) {
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := s.conn.Write(rest)
	_ = s.conn.SetWriteDeadline(time.Time{})
	s.wrote()
	if err != nil {
		s.hub.broker.Disconnect(s.client) // closes s through onClose
	}
	s.flushed(true)
}

// drainAside writes msgs to a WebSocket once the write that waits for
// the client ends, then drains them as a round would have.
func (s *stream) drainAside(buf []byte, msgs []*realtime.Message) {
	buf = s.ws.frameWaiting(buf, msgs, s.hub.encodeWS)
	s.drain(buf)
}

// wrote ends a write of the stream's socket: a WebSocket's other writes
// may go on.
func (s *stream) wrote() {
	if s.ws != nil {
		s.ws.out.release()
	}
}

// flushed ends a flush. A stream that wrote goes to the next round, to
// take what came meanwhile; one that found nothing rests until the broker
// wakes it.
func (s *stream) flushed(wrote bool) {
	s.mu.Lock()
	again := (wrote || s.woken || s.ping) && !s.closed
	s.scheduled = again
	s.woken = false
	s.mu.Unlock()
	if again {
		s.hub.schedule(s)
	}
}

// close ends the stream; it runs once the broker dropped the client (and
// then under the broker's lock: it must not call the broker). A WebSocket
// gets a close frame first: 1000 when it was idle, else 1001 (a client
// too slow, or the server stopping).
func (s *stream) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	idle := s.idle
	s.mu.Unlock()
	if s.ws != nil {
		go s.ws.closeFor(idle) // the closing handshake waits for the client
	} else {
		_ = s.conn.Close()
	}
	s.hub.remove(s)
}

func (h *Hub) add(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[s] = struct{}{}
	if !h.pinging {
		h.pinging = true
		go h.pingStreams()
	}
}

func (h *Hub) remove(s *stream) {
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
}

// schedule puts s in the next round, starting a writer when there is
// room for one.
func (h *Hub) schedule(s *stream) {
	h.mu.Lock()
	h.next = append(h.next, s)
	first := len(h.next) == 1
	start := h.writers < h.writersFor(len(h.round))
	if start {
		h.writers++
		h.peak = max(h.peak, h.writers)
	}
	h.mu.Unlock()
	if start {
		go h.writer()
	} else if first {
		h.signal()
	}
}

// signal wakes a waiting writer, if any.
func (h *Hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// writersFor is how many writers a round of n streams gets.
func (h *Hub) writersFor(n int) int {
	if n > h.longRound {
		return h.procs
	}
	return max(1, h.procs/2)
}

// take returns up to cap(batch) streams of the current round, beginning
// the next round when this one is all taken; none when there is no work.
// It reports false when the writer is one too many for the round, and
// then the writer is no longer counted.
func (h *Hub) take(batch []*stream) ([]*stream, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.taken == len(h.round) {
		if len(h.next) == 0 {
			return batch, true
		}
		clear(h.round)
		h.round, h.next = h.next, h.round[:0]
		h.taken = 0
		for h.writers < h.writersFor(len(h.round)) {
			h.writers++
			h.peak = max(h.peak, h.writers)
			go h.writer()
		}
	}
	if h.writers > h.writersFor(len(h.round)) {
		h.writers--
		if h.taken < len(h.round) || len(h.next) > 0 {
			h.signal() // for a writer that stays
		}
		return batch, false
	}
	k := min(cap(batch)-len(batch), len(h.round)-h.taken)
	batch = append(batch, h.round[h.taken:h.taken+k]...)
	h.taken += k
	if h.taken < len(h.round) || len(h.next) > 0 {
		h.signal() // enough for another writer
	}
	return batch, true
}

// writer writes rounds until it has had nothing to do for streamWriterIdle.
func (h *Hub) writer() {
	idle := time.NewTimer(streamWriterIdle)
	defer idle.Stop()
	batch := make([]*stream, 0, streamBatch)
	var w streamWriter
	for {
		var stay bool
		batch, stay = h.take(batch[:0])
		if !stay {
			return
		}
		if len(batch) > 0 {
			for _, s := range batch {
				s.flush(&w)
			}
			clear(batch)
			runtime.Gosched()
			continue
		}
		idle.Reset(streamWriterIdle)
		select {
		case <-h.wake:
		case <-idle.C:
			h.mu.Lock()
			if h.taken < len(h.round) || len(h.next) > 0 {
				h.mu.Unlock()
				continue
			}
			h.writers--
			h.mu.Unlock()
			return
		}
	}
}

// pingStreams keeps every stream alive with a ping and closes the streams
// that have been without subscriptions for idleAfter; it ends when no
// stream is left.
func (h *Hub) pingStreams() {
	t := time.NewTicker(h.pingEvery)
	defer t.Stop()
	for now := range t.C {
		h.mu.Lock()
		if len(h.streams) == 0 {
			h.pinging = false
			h.mu.Unlock()
			return
		}
		list := make([]*stream, 0, len(h.streams))
		for s := range h.streams {
			list = append(list, s)
		}
		h.mu.Unlock()
		for _, s := range list {
			if len(s.client.Subscriptions()) > 0 {
				s.noSubsSince = time.Time{}
			} else if s.noSubsSince.IsZero() {
				s.noSubsSince = now
			} else if now.Sub(s.noSubsSince) >= h.idleAfter {
				s.mu.Lock()
				s.idle = true
				s.mu.Unlock()
				h.broker.Disconnect(s.client)
				continue
			}
			s.queuePing()
		}
	}
}

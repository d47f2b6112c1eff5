package rest

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/underhood/underhood/realtime"
)

// Realtime streams, written without a goroutine per stream. An SSE stream
// takes over its connection (the handler returns), and its events are
// appended to a pending buffer that a small pool of writers flushes, one
// system call for every event that piled up meanwhile. An idle stream
// holds its connection, a goroutine blocked on reading it (which notices a
// client that goes away at once) and a few hundred bytes: no HTTP buffers,
// no queue, no timers. The hub pings every stream and closes the ones
// left without subscriptions.

// Limits of the SSE streams.
const (
	// ssePendingMax is how many bytes may wait for a slow client before it
	// is disconnected.
	ssePendingMax = 1 << 20
	// sseWriters bounds the goroutines writing streams; one exits after
	// sseWriterIdle without work.
	sseWriters    = 64
	sseWriterIdle = 5 * time.Second
)

// sseBuffers recycles the pending buffers of streams between flushes, so
// an idle stream keeps none.
var sseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// sseHub writes and pings the SSE streams of one API.
type sseHub struct {
	broker *realtime.Broker
	log    *slog.Logger
	work   chan *sseStream

	mu      sync.Mutex
	streams map[*sseStream]struct{}
	writers int
	pinging bool
}

func newSSEHub(broker *realtime.Broker, log *slog.Logger) *sseHub {
	return &sseHub{broker: broker, log: log, work: make(chan *sseStream, 1<<14), streams: map[*sseStream]struct{}{}}
}

// sseStream is one hijacked event stream.
type sseStream struct {
	hub    *sseHub
	conn   net.Conn
	client *realtime.Client

	mu        sync.Mutex
	pending   *bytes.Buffer // nil when nothing waits
	scheduled bool          // queued for, or being written by, a writer
	closed    bool
	// noSubsSince is when the hub first saw the stream without
	// subscriptions (zero while it has some); used by the hub only.
	noSubsSince time.Time
}

// serve takes over r's connection as an event stream; it reports false
// when the connection cannot be taken over (then nothing was written).
func (h *sseHub) serve(w http.ResponseWriter, r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 { // chunked needs HTTP/1.1
		return false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	_ = conn.SetDeadline(time.Time{})
	s := &sseStream{hub: h, conn: conn}
	s.client = h.broker.ConnectFunc(s.deliver, s.close)

	// The headers the middleware set (CORS, security, request id) and the
	// stream's own, then PB_CONNECT, in the first write.
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	hdr := w.Header().Clone()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("Transfer-Encoding", "chunked")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hdr.Del("Content-Length")
	_ = hdr.Write(&b)
	b.WriteString("\r\n")
	connect := append([]byte("id:"), s.client.ID...)
	connect = append(connect, "\nevent:PB_CONNECT\ndata:"...)
	connect = appendString(append(connect, `{"clientId":`...), s.client.ID)
	connect = append(connect, "}\n\n"...)
	appendChunk(&b, connect)
	_ = conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	if _, err := conn.Write(b.Bytes()); err != nil {
		h.broker.Disconnect(s.client)
		return true
	}
	// The buffered reader of the hijacked request is dropped: a client
	// sends nothing more on an event stream.
	_ = brw
	h.add(s)
	go s.watch()
	return true
}

// appendChunk appends p as one HTTP/1.1 chunk.
func appendChunk(b *bytes.Buffer, p []byte) {
	b.WriteString(strconv.FormatInt(int64(len(p)), 16))
	b.WriteString("\r\n")
	b.Write(p)
	b.WriteString("\r\n")
}

// watch waits for the client to go away.
func (s *sseStream) watch() {
	var b [64]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			break
		}
	}
	s.hub.broker.Disconnect(s.client) // closes s through onClose
	s.close()
}

// deliver queues an event for the stream; it runs on the broker's
// goroutine and never blocks.
func (s *sseStream) deliver(m *realtime.Message) bool {
	frame := m.Encoded("sse", encodeSSE)
	return s.queue(func(b *bytes.Buffer) {
		b.WriteString("id:")
		b.WriteString(s.client.ID)
		b.Write(frame)
	})
}

// queue appends to the pending bytes and schedules a flush; false when
// too much is pending already.
func (s *sseStream) queue(write func(b *bytes.Buffer)) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return true
	}
	if s.pending == nil {
		s.pending = sseBuffers.Get().(*bytes.Buffer)
		s.pending.Reset()
	}
	if s.pending.Len() > ssePendingMax {
		s.mu.Unlock()
		return false
	}
	write(s.pending)
	schedule := !s.scheduled
	s.scheduled = true
	s.mu.Unlock()
	if schedule {
		s.hub.schedule(s)
	}
	return true
}

// flush writes what is pending, as one chunk.
func (s *sseStream) flush() {
	s.mu.Lock()
	buf := s.pending
	s.pending = nil
	closed := s.closed
	s.mu.Unlock()
	if buf != nil && !closed {
		var hdr [20]byte
		head := strconv.AppendInt(hdr[:0], int64(buf.Len()), 16)
		head = append(head, '\r', '\n')
		bufs := net.Buffers{head, buf.Bytes(), []byte("\r\n")}
		_ = s.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
		if _, err := bufs.WriteTo(s.conn); err != nil {
			s.hub.broker.Disconnect(s.client) // closes s through onClose
		}
	}
	if buf != nil {
		if buf.Cap() <= 64<<10 {
			sseBuffers.Put(buf)
		}
	}
	s.mu.Lock()
	again := s.pending != nil && !s.closed
	s.scheduled = again
	s.mu.Unlock()
	if again {
		s.hub.schedule(s)
	}
}

// close ends the stream; it runs once the broker dropped the client (and
// then under the broker's lock: it must not call the broker).
func (s *sseStream) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.pending = nil
	s.mu.Unlock()
	_ = s.conn.Close()
	s.hub.remove(s)
}

func (h *sseHub) add(s *sseStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[s] = struct{}{}
	if !h.pinging {
		h.pinging = true
		go h.ping()
	}
}

func (h *sseHub) remove(s *sseStream) {
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
}

// schedule hands s to a writer, starting one when there is room.
func (h *sseHub) schedule(s *sseStream) {
	select {
	case h.work <- s:
	default:
		go s.flush() // every writer is far behind: write it directly
		return
	}
	h.mu.Lock()
	if h.writers < sseWriters {
		h.writers++
		go h.writer()
	}
	h.mu.Unlock()
}

// writer flushes streams until it has had nothing to do for a while.
func (h *sseHub) writer() {
	idle := time.NewTimer(sseWriterIdle)
	defer idle.Stop()
	for {
		select {
		case s := <-h.work:
			s.flush()
			if !idle.Stop() {
				<-idle.C
			}
			idle.Reset(sseWriterIdle)
		case <-idle.C:
			h.mu.Lock()
			if len(h.work) > 0 {
				h.mu.Unlock()
				idle.Reset(sseWriterIdle)
				continue
			}
			h.writers--
			h.mu.Unlock()
			return
		}
	}
}

// ping keeps every stream alive with a comment line and closes the
// streams that have been without subscriptions for realtimeIdle; it ends
// when no stream is left.
func (h *sseHub) ping() {
	t := time.NewTicker(realtimePing)
	defer t.Stop()
	for now := range t.C {
		h.mu.Lock()
		if len(h.streams) == 0 {
			h.pinging = false
			h.mu.Unlock()
			return
		}
		list := make([]*sseStream, 0, len(h.streams))
		for s := range h.streams {
			list = append(list, s)
		}
		h.mu.Unlock()
		for _, s := range list {
			if len(s.client.Subscriptions()) > 0 {
				s.noSubsSince = time.Time{}
			} else if s.noSubsSince.IsZero() {
				s.noSubsSince = now
			} else if now.Sub(s.noSubsSince) >= realtimeIdle {
				h.broker.Disconnect(s.client)
				continue
			}
			s.queue(func(b *bytes.Buffer) { b.WriteString(":ping\n\n") })
		}
	}
}

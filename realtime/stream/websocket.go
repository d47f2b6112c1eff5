package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/underhood/underhood/realtime"
)

// The WebSocket connection under a WebSocket stream. coder/websocket
// speaks the protocol: the handshake, reading (masks, fragments, control
// frames, the size limit), ping and pong, the closing handshake. The
// server's messages, events and answers, are text frames that the hub
// writes itself, as it writes an SSE stream's chunks: a round frames a
// stream's events and writes them with one system call that does not
// wait. socketWriter gives the socket to one writer at a time, the
// library or the hub.

// Limits of one WebSocket client.
const (
	wsMaxMessage = 64 << 10 // bytes of one client message
	// wsReadTimeout is how long a client may send nothing, not even a
	// pong to the hub's pings (every pingEvery), before it is dropped.
	wsReadTimeout = 60 * time.Second
	// wsReadBuffer is the size of a connection's read buffer: a client's
	// messages are short, and an idle connection should cost little
	// (net/http's is 4 KiB).
	wsReadBuffer = 512
	// wsWriteBuffer is the size of coder/websocket's write buffer, which
	// holds a control frame whole (2 bytes of header, at most 125 of
	// payload): the library writes nothing else here.
	wsWriteBuffer = 128
)

// checkHandshake says why r is not a WebSocket opening handshake that
// coder/websocket would accept, so that a client gets the REST API's 400
// error rather than the library's plain-text one (and 426 for some).
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return errors.New("not a websocket handshake")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return errors.New("unsupported websocket version")
	}
	key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 || len(r.Header.Values("Sec-WebSocket-Key")) != 1 {
		return errors.New("invalid Sec-WebSocket-Key")
	}
	return nil
}

// headerHasToken reports whether the comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsConn is one server-side WebSocket connection.
type wsConn struct {
	// lib is coder/websocket's side of the connection. Its Write is never
	// called: the server's data frames are the hub's (socketWriter).
	lib *websocket.Conn
	// conn is the connection coder/websocket took over, for its read
	// deadline.
	conn net.Conn
	// out gives conn to one writer at a time.
	out *socketWriter
	// readTimeout is how long the client may send nothing: wsReadTimeout.
	readTimeout time.Duration
}

// acceptWebSocket answers r's handshake (checked by checkHandshake) with
// 101 and returns the connection. A client's offer of permessage-deflate
// is declined: the hub's frames are not compressed (see go.mod).
func acceptWebSocket(w http.ResponseWriter, r *http.Request, readTimeout time.Duration) (*wsConn, error) {
	ws := &wsConn{readTimeout: readTimeout}
	// Any origin may connect, as any may call the REST API (CORS admits
	// every origin by default): a client authenticates with a token in a
	// header or a message, never a cookie, so a page of another origin
	// gains nothing it could not get without a browser.
	opts := &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		OnPingReceived: func(context.Context, []byte) bool {
			ws.extendRead()
			return true // and coder/websocket answers with the pong
		},
		OnPongReceived: func(context.Context, []byte) { ws.extendRead() },
	}
	c, err := websocket.Accept(&hijackWriter{ResponseWriter: w, ws: ws}, r, opts)
	if err != nil {
		return nil, err
	}
	ws.lib = c
	c.SetReadLimit(wsMaxMessage)
	return ws, nil
}

// hijackWriter gives coder/websocket, when it takes the connection over,
// small buffers instead of net/http's, and the socketWriter under them;
// it keeps the connection for its deadlines and the hub's writes.
type hijackWriter struct {
	http.ResponseWriter
	ws *wsConn
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// What the client sent right after its handshake is kept, in the
	// buffer coder/websocket reads first.
	early, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(wsReadBuffer, len(early)))
	if _, err := br.Peek(len(early)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	h.ws.conn = conn
	h.ws.out = &socketWriter{conn: conn}
	h.ws.out.free.L = &h.ws.out.mu
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(h.ws.out, wsWriteBuffer)), nil
}

// Unwrap lets net/http's ResponseController reach the server's writer.
func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// extendRead gives the client readTimeout more to send something.
func (ws *wsConn) extendRead() {
	_ = ws.conn.SetReadDeadline(time.Now().Add(ws.readTimeout))
}

// read returns the next message of the client.
func (ws *wsConn) read() (websocket.MessageType, []byte, error) {
	ws.extendRead()
	return ws.lib.Read(context.Background())
}

// send writes one text message, waiting for the client for as long as
// writeTimeout.
func (ws *wsConn) send(b []byte) error {
	return ws.out.writeText(b)
}

// ping pings the client. The pong is not needed: the read deadline drops
// a client that stops answering.
func (ws *wsConn) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	_ = ws.lib.Ping(ctx)
}

// close makes the closing handshake with code, waiting for the client's
// answer for up to 5 s, and closes the connection.
func (ws *wsConn) close(code websocket.StatusCode, reason string) {
	_ = ws.lib.Close(code, reason)
}

// closeFor closes the connection of a stream the hub dropped: 1000 when
// it was idle, else 1001 (a client too slow, or the server stopping).
func (ws *wsConn) closeFor(idle bool) {
	if idle {
		ws.close(websocket.StatusNormalClosure, "idle without subscriptions")
		return
	}
	ws.close(websocket.StatusGoingAway, "disconnected by the server")
}

// frame appends msgs to buf as text frames, once the socket is the
// caller's: it is until ws.out.release. It reports false, having done
// nothing, while another write waits for the client. No frame is added
// once the close frame went out.
func (ws *wsConn) frame(buf []byte, msgs []*realtime.Message, encode func(*realtime.Message) []byte) ([]byte, bool) {
	if !ws.out.tryAcquire() {
		return buf, false
	}
	return ws.appendFrames(buf, msgs, encode), true
}

// frameWaiting is frame that waits for the other write to end.
func (ws *wsConn) frameWaiting(buf []byte, msgs []*realtime.Message, encode func(*realtime.Message) []byte) []byte {
	ws.out.acquire()
	return ws.appendFrames(buf, msgs, encode)
}

func (ws *wsConn) appendFrames(buf []byte, msgs []*realtime.Message, encode func(*realtime.Message) []byte) []byte {
	if ws.out.closing() {
		return buf
	}
	for _, m := range msgs {
		buf = appendTextFrame(buf, m.Encoded("ws", encode))
	}
	return buf
}

// appendTextFrame appends payload as one final, unmasked text frame
// (RFC 6455 section 5.2): the server's messages, which the hub writes
// itself so that a round frames an event for a stream with two appends
// (see the require of coder/websocket in go.mod for what the library's
// Write cost instead).
func appendTextFrame(b, payload []byte) []byte {
	const finText = 0x81
	switch n := len(payload); {
	case n <= 125:
		b = append(b, finText, byte(n))
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, finText, 126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
	}
	return append(b, payload...)
}

// socketWriter is the one way to the socket of a WebSocket, which it
// gives to one writer at a time: coder/websocket, which writes its
// control frames (pong, ping, close) through it; a client's answers;
// or a round of the hub, from its system call to the end of its drain.
// So frames never mix, as long as the library writes no data frame (it
// writes none here) and a control frame whole: its buffer
// (wsWriteBuffer) holds the largest, and is empty between frames.
type socketWriter struct {
	conn net.Conn

	mu   sync.Mutex
	free sync.Cond // signalled when busy ends
	// busy is set while a writer has the socket.
	busy bool
	// closed is set once the close frame went out: no data frame may
	// follow it.
	closed bool
}

// Write writes a control frame of coder/websocket, waiting for the socket
// and then for the client, for as long as writeTimeout.
func (w *socketWriter) Write(p []byte) (int, error) {
	w.acquire()
	defer w.release()
	if len(p) > 0 && p[0]&0x0F == opClose {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
	}
	return w.writeWaiting(p)
}

// opClose is the opcode of a close frame, the low bits of its first byte.
const opClose = 0x8

// writeText writes payload as a text frame, as Write does.
func (w *socketWriter) writeText(payload []byte) error {
	w.acquire()
	defer w.release()
	if w.closing() {
		return net.ErrClosed
	}
	_, err := w.writeWaiting(appendTextFrame(make([]byte, 0, len(payload)+10), payload))
	return err
}

// writeWaiting writes p; the caller has the socket.
func (w *socketWriter) writeWaiting(p []byte) (int, error) {
	_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := w.conn.Write(p)
	_ = w.conn.SetWriteDeadline(time.Time{})
	return n, err
}

// closing reports whether the close frame went out.
func (w *socketWriter) closing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// acquire waits until the socket is free and takes it.
func (w *socketWriter) acquire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.free.Wait()
	}
	w.busy = true
}

// tryAcquire takes the socket if it is free.
func (w *socketWriter) tryAcquire() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy {
		return false
	}
	w.busy = true
	return true
}

// release gives the socket back.
func (w *socketWriter) release() {
	w.mu.Lock()
	w.busy = false
	w.mu.Unlock()
	w.free.Signal()
}

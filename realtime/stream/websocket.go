package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
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
// speaks the protocol: the handshake, framing, fragmented and compressed
// messages, ping and pong, the closing handshake. This file gives it the
// connection it writes to (socketWriter), through which the hub's rounds
// collect a stream's events, framed by the library, to write them with
// one system call as they do an SSE stream's.

// Limits of one WebSocket client.
const (
	wsMaxMessage = 64 << 10 // bytes of one client message
	// wsReadTimeout is how long a client may send nothing, not even a
	// pong to the hub's pings (every pingEvery), before it is dropped.
	wsReadTimeout = 60 * time.Second
	// wsBuffer is the size of a connection's read and write buffers: a
	// client's messages are short, and an idle connection should cost
	// little (net/http's are 4 KiB each).
	wsBuffer = 512
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
	*websocket.Conn
	// conn is the connection coder/websocket took over, for its read
	// deadline.
	conn net.Conn
	// out is where coder/websocket writes conn's bytes.
	out *socketWriter
	// readTimeout is how long the client may send nothing: wsReadTimeout.
	readTimeout time.Duration
}

// acceptWebSocket answers r's handshake (checked by checkHandshake) with
// 101 and returns the connection, which compresses as mode says when the
// client offers it.
func acceptWebSocket(w http.ResponseWriter, r *http.Request, mode websocket.CompressionMode, readTimeout time.Duration) (*wsConn, error) {
	ws := &wsConn{readTimeout: readTimeout}
	// Any origin may connect, as any may call the REST API (CORS admits
	// every origin by default): a client authenticates with a token in a
	// header or a message, never a cookie, so a page of another origin
	// gains nothing it could not get without a browser.
	opts := &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    mode,
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
	ws.Conn = c
	ws.SetReadLimit(wsMaxMessage)
	return ws, nil
}

// hijackWriter gives coder/websocket, when it takes the connection over,
// small buffers instead of net/http's, and a writer of ours under them;
// it keeps the connection for its deadlines.
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
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(wsBuffer, len(early)))
	if _, err := br.Peek(len(early)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	h.ws.conn = conn
	h.ws.out = &socketWriter{conn: conn}
	h.ws.out.free.L = &h.ws.out.mu
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(h.ws.out, wsBuffer)), nil
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
	return ws.Read(context.Background())
}

// send writes one text message, waiting for the client for as long as
// writeTimeout (the socketWriter's deadline).
func (ws *wsConn) send(b []byte) error {
	return ws.Write(context.Background(), websocket.MessageText, b)
}

// ping pings the client. The pong is not needed: the read deadline drops
// a client that stops answering.
func (ws *wsConn) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	_ = ws.Ping(ctx)
}

// closeFor closes the connection of a stream the hub dropped: 1000 when
// it was idle, else 1001 (a client too slow, or the server stopping).
func (ws *wsConn) closeFor(idle bool) {
	if idle {
		_ = ws.Close(websocket.StatusNormalClosure, "idle without subscriptions")
		return
	}
	_ = ws.Close(websocket.StatusGoingAway, "disconnected by the server")
}

// frame appends msgs to buf as text messages, framed by coder/websocket,
// with what else it writes meanwhile (a pong); on ok the socket is the
// caller's until it calls ws.out.release. It reports false, having done
// nothing, while another write waits for the client.
func (ws *wsConn) frame(buf []byte, msgs []*realtime.Message, encode func(*realtime.Message) []byte) ([]byte, bool) {
	if !ws.out.collect(&buf, false) {
		return buf, false
	}
	return ws.frameCollecting(&buf, msgs, encode), true
}

// frameWaiting is frame that waits for the other write to end.
func (ws *wsConn) frameWaiting(buf []byte, msgs []*realtime.Message, encode func(*realtime.Message) []byte) []byte {
	ws.out.collect(&buf, true)
	return ws.frameCollecting(&buf, msgs, encode)
}

func (ws *wsConn) frameCollecting(buf *[]byte, msgs []*realtime.Message, encode func(*realtime.Message) []byte) []byte {
	for _, m := range msgs {
		// An error means the connection is closing; its close frame
		// is on its way and the stream goes with it.
		if err := ws.Write(context.Background(), websocket.MessageText, m.Encoded("ws", encode)); err != nil {
			break
		}
	}
	return ws.out.collected()
}

// socketWriter is the writer under coder/websocket's buffer, and the one
// way to the socket. A write waits for the client (for as long as
// writeTimeout), unless a round of the hub is collecting the stream's
// bytes: then it joins them, to be written with the round's one system
// call. The bytes of the library's writes and the rounds' reach the
// socket in the order they are written, so frames never mix.
type socketWriter struct {
	conn net.Conn

	mu   sync.Mutex
	free sync.Cond // signalled when busy ends
	// into is the round's buffer while it collects.
	into *[]byte
	// busy is set while a write to the socket is under way: the rounds'
	// (from the end of collecting to release) or the library's.
	busy bool
}

func (w *socketWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for w.into == nil && w.busy {
		w.free.Wait()
	}
	if w.into != nil {
		*w.into = append(*w.into, p...)
		w.mu.Unlock()
		return len(p), nil
	}
	w.busy = true
	w.mu.Unlock()
	defer w.release()
	_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := w.conn.Write(p)
	_ = w.conn.SetWriteDeadline(time.Time{})
	return n, err
}

// collect makes the writes go to *into until collected; wait says to
// wait while another write is under way, else it reports false then.
func (w *socketWriter) collect(into *[]byte, wait bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		if !wait {
			return false
		}
		w.free.Wait()
	}
	w.into, w.busy = into, true
	return true
}

// collected ends collecting and returns the bytes; the socket stays the
// caller's until release.
func (w *socketWriter) collected() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := *w.into
	w.into = nil
	return b
}

// release lets the other writes go on.
func (w *socketWriter) release() {
	w.mu.Lock()
	w.busy = false
	w.mu.Unlock()
	w.free.Broadcast()
}

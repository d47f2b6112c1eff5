package rest

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The server side of RFC 6455 WebSocket, as much as realtime needs: the
// opening handshake, masked client frames, fragmented messages, ping,
// pong and the closing handshake. It is small enough to read in one go,
// which is why it is here rather than a dependency.

// WebSocket opcodes.
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// WebSocket close codes.
const (
	wsNormalClosure   = 1000
	wsGoingAway       = 1001
	wsProtocolError   = 1002
	wsInvalidData     = 1007
	wsPolicyViolation = 1008
	wsTooBig          = 1009
)

// wsGUID is the key suffix of the handshake (RFC 6455 section 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsWriteTimeout bounds one frame write: a client that does not read is
// dropped rather than holding a goroutine.
const wsWriteTimeout = 10 * time.Second

// wsReadBuffer is the size of a connection's read buffer.
const wsReadBuffer = 512

// wsConn is one server-side WebSocket connection. ReadMessage is for one
// goroutine; WriteMessage and Close may be called from any.
type wsConn struct {
	conn        net.Conn
	br          *bufio.Reader
	maxMessage  int
	readTimeout time.Duration

	// wmu orders the writes: this type's, and those of the hub's rounds
	// (stream.flush), which write frames to conn themselves.
	wmu    sync.Mutex
	closed bool
}

// wsCloseError is a connection ended by a close frame or by a protocol
// error, with the code sent to the peer.
type wsCloseError struct {
	code   int
	reason string
}

func (e *wsCloseError) Error() string { return "websocket closed: " + e.reason }

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

// upgradeWebSocket checks the opening handshake of r and answers it with
// 101, taking over the connection. On an error nothing has been written.
func upgradeWebSocket(w http.ResponseWriter, r *http.Request, maxMessage int, readTimeout time.Duration) (*wsConn, error) {
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return nil, errors.New("not a websocket handshake")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return nil, errors.New("unsupported websocket version")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return nil, errors.New("invalid Sec-WebSocket-Key")
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	_ = conn.SetDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	if _, err := brw.WriteString(resp); err != nil {
		conn.Close()
		return nil, err
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	// What the client may have sent right after its handshake is read
	// first, through a buffer smaller than net/http's: a client's messages
	// are short, and an idle connection should cost little.
	var src io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)
	}
	return &wsConn{conn: conn, br: bufio.NewReaderSize(src, wsReadBuffer), maxMessage: maxMessage, readTimeout: readTimeout}, nil
}

// ReadMessage returns the next text or binary message, answering pings
// and the peer's close on the way. A protocol error closes the
// connection with the matching code and is returned as *wsCloseError.
func (c *wsConn) ReadMessage() (op int, msg []byte, err error) {
	var header [14]byte
	started := false
	for {
		if c.readTimeout > 0 {
			_ = c.conn.SetReadDeadline(time.Now().Add(c.readTimeout))
		}
		if _, err := io.ReadFull(c.br, header[:2]); err != nil {
			return 0, nil, err
		}
		fin, rsv, opcode := header[0]&0x80 != 0, header[0]&0x70, int(header[0]&0x0F)
		masked, n := header[1]&0x80 != 0, uint64(header[1]&0x7F)
		if rsv != 0 {
			return 0, nil, c.fail(wsProtocolError, "reserved bits set")
		}
		if !masked {
			return 0, nil, c.fail(wsProtocolError, "client frames must be masked")
		}
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, header[2:4]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(header[2:4]))
		case 127:
			if _, err := io.ReadFull(c.br, header[2:10]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(header[2:10])
			if n>>63 != 0 {
				return 0, nil, c.fail(wsProtocolError, "invalid length")
			}
		}
		control := opcode >= 0x8
		if control && (!fin || n > 125) {
			return 0, nil, c.fail(wsProtocolError, "invalid control frame")
		}
		if !control && uint64(len(msg))+n > uint64(c.maxMessage) {
			return 0, nil, c.fail(wsTooBig, "message too big")
		}
		var mask [4]byte
		if _, err := io.ReadFull(c.br, mask[:]); err != nil {
			return 0, nil, err
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return 0, nil, err
		}
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
		switch opcode {
		case wsPing:
			if err := c.WriteMessage(wsPong, payload); err != nil {
				return 0, nil, err
			}
			continue
		case wsPong:
			continue
		case wsClose:
			code := wsNormalClosure
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload[:2]))
			}
			c.Close(wsNormalClosure, "") // the closing handshake's answer
			return 0, nil, &wsCloseError{code: code, reason: "closed by the client"}
		case wsText, wsBinary:
			if started {
				return 0, nil, c.fail(wsProtocolError, "new message inside a fragmented one")
			}
			started, op, msg = true, opcode, payload
		case wsContinuation:
			if !started {
				return 0, nil, c.fail(wsProtocolError, "continuation without a message")
			}
			msg = append(msg, payload...)
		default:
			return 0, nil, c.fail(wsProtocolError, "unknown opcode")
		}
		if fin {
			if op == wsText && !utf8.Valid(msg) {
				return 0, nil, c.fail(wsInvalidData, "text is not UTF-8")
			}
			return op, msg, nil
		}
	}
}

// fail closes the connection with code and returns the error.
func (c *wsConn) fail(code int, reason string) error {
	c.Close(code, reason)
	return &wsCloseError{code: code, reason: reason}
}

// WriteMessage sends one unfragmented message.
func (c *wsConn) WriteMessage(op int, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	return c.writeFrame(op, payload)
}

// writeFrame writes one final frame, waiting for the client for as long
// as wsWriteTimeout; c.wmu is held.
func (c *wsConn) writeFrame(op int, payload []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	_, err := c.conn.Write(appendWSFrame(make([]byte, 0, 10+len(payload)), op, payload))
	return err
}

// appendWSHeader appends the header of a final, unmasked frame of op
// with n bytes of payload.
func appendWSHeader(b []byte, op, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// appendWSFrame appends payload as one final, unmasked frame of op.
func appendWSFrame(b []byte, op int, payload []byte) []byte {
	return append(appendWSHeader(b, op, len(payload)), payload...)
}

// Close sends a close frame with code (best effort) and closes the
// connection. Later calls do nothing.
func (c *wsConn) Close(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if len(reason) > 120 {
		reason = reason[:120]
	}
	payload := binary.BigEndian.AppendUint16(nil, uint16(code))
	payload = append(payload, reason...)
	_ = c.writeFrame(wsClose, payload)
	// Closing a socket with unread data resets it, and the peer may lose
	// the close frame: stop writing, then read what is left for a moment
	// before closing. The goroutine ends by the deadline at the latest.
	tcp, ok := c.conn.(*net.TCPConn)
	if !ok {
		_ = c.conn.Close()
		return
	}
	_ = tcp.CloseWrite()
	_ = tcp.SetReadDeadline(time.Now().Add(2 * time.Second))
	go func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(tcp, 1<<20))
		_ = tcp.Close()
	}()
}

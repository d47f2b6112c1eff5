package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// The WebSocket transport (-transport ws): the same subscribers on
// GET /api/realtime/ws (docs/realtime-ws.md), each event one text message.
// The frames are read in place like the SSE chunks (deframe), each
// message becoming one line, so a subscriber reads and times events the
// same way on both.

// openWS connects to base's WebSocket endpoint, subscribes to topic and
// returns the stream once the server said it is subscribed.
func openWS(d *net.Dialer, base, topic string) (*streamReader, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	s, err := dialStream(d, base, true, "101", "upgrade: websocket", func(host string) string {
		return "GET /api/realtime/ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(nonce[:]) + "\r\n\r\n"
	})
	if err != nil {
		return nil, err
	}
	conn := s.conn
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "topics": []string{topic}})
	if _, err := conn.Write(maskedFrame(sub)); err != nil {
		conn.Close()
		return nil, err
	}
	// {"type":"connected",…}, then {"type":"subscribed",…}.
	var bad error
	subscribed := false
	err = s.readLines(func(line []byte) bool {
		var m struct{ Type, Message string }
		if err := json.Unmarshal(line, &m); err != nil {
			bad = fmt.Errorf("bad message %.80q", line)
			return false
		}
		switch m.Type {
		case "connected":
			return true
		case "subscribed":
			subscribed = true
		default:
			bad = fmt.Errorf("subscribe: %s %s", m.Type, m.Message)
		}
		return false
	})
	if !subscribed {
		conn.Close()
		if bad == nil {
			bad = err
		}
		if bad == nil {
			bad = io.ErrUnexpectedEOF
		}
		return nil, bad
	}
	return s, nil
}

// maskedFrame is p as one masked text frame, as a client sends it.
func maskedFrame(p []byte) []byte {
	b := []byte{0x81}
	switch {
	case len(p) < 126:
		b = append(b, 0x80|byte(len(p)))
	case len(p) <= 0xffff:
		b = append(b, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range p {
		b = append(b, c^key[i%4])
	}
	return b
}

// deframe moves the payloads of the server's frames in buf[raw:end] to
// buf[text:], ending each message with "\n"; io.EOF at a close frame.
// Control frames other than close are dropped (a run is shorter than the
// server's read timeout, so its pings need no answer). The "\n" goes in
// the room the frame's header left; compact keeps a byte of room for a
// frame that a read cut in two.
func (s *streamReader) deframe() error {
	for {
		if s.inFrame {
			k := min(s.left, s.end-s.raw)
			copy(s.buf[s.text:], s.buf[s.raw:s.raw+k])
			s.text += k
			s.raw += k
			s.left -= k
			if s.left > 0 {
				return nil
			}
			s.inFrame = false
			if s.fin {
				s.buf[s.text] = '\n'
				s.text++
			}
		}
		h := s.buf[s.raw:s.end]
		if len(h) < 2 {
			return nil
		}
		if h[1]&0x80 != 0 {
			return errors.New("a server frame is masked")
		}
		size, head := uint64(h[1]&0x7f), 2
		switch size {
		case 126:
			if len(h) < 4 {
				return nil
			}
			size, head = uint64(binary.BigEndian.Uint16(h[2:])), 4
		case 127:
			if len(h) < 10 {
				return nil
			}
			size, head = binary.BigEndian.Uint64(h[2:]), 10
		}
		if size > streamLineMax {
			return errors.New("message too long")
		}
		switch h[0] & 0x0f {
		case 0x8: // close
			return io.EOF
		case 0x0, 0x1, 0x2: // continuation, text, binary: the message
			s.fin, s.left, s.inFrame = h[0]&0x80 != 0, int(size), true
			s.raw += head
		default: // ping, pong
			if uint64(len(h)) < uint64(head)+size {
				return nil
			}
			s.raw += head + int(size)
		}
	}
}

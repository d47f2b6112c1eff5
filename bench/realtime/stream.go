package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// streamReader reads an event stream straight from its TCP connection:
// the HTTP/1.1 response head, then the chunked body, de-chunked in place
// and split into lines in one buffer, with one read system call for all
// that has arrived. It checks the framing as strictly as net/http does,
// and costs a fraction of net/http's chunked reader under a second
// bufio.Reader, which matters when the client shares two cores with the
// server it measures.
type streamReader struct {
	conn net.Conn
	// src is what the body is read from: conn, or its descriptor when a
	// poller reads it.
	src io.Reader
	buf []byte
	// buf[:text] is de-chunked body not yet split into lines;
	// buf[raw:end] is what was read and not yet de-chunked.
	text, raw, end int
	// left is how much of the current chunk is still to come; crlf is
	// set when the CRLF after a chunk's data is.
	left int
	crlf bool
	// readAt is when the last read returned: the arrival time of every
	// line it completed.
	readAt time.Time
	// ws is set for a WebSocket: the body is frames (deframe), not chunks,
	// and each text message is one line. inFrame is set while left bytes
	// of a frame's payload are still to come, fin when that frame ends its
	// message.
	ws, inFrame, fin bool
}

// errWouldBlock is a source's answer when nothing is to be read now.
var errWouldBlock = errors.New("would block")

// streamBuffer is the initial buffer of a stream; it grows for a line
// that does not fit, up to streamLineMax.
const (
	streamBuffer  = 16 << 10
	streamLineMax = 1 << 20
)

// openStream connects to base and sends GET path, and reads the response
// head, which must be a 200 with a chunked body.
func openStream(d *net.Dialer, base, path string) (*streamReader, error) {
	return dialStream(d, base, false, "200", "transfer-encoding: chunked", func(host string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\nCache-Control: no-store\r\n\r\n"
	})
}

// dialStream connects to base, sends the request that request makes for
// its host, and reads the response head, which must have status and
// header (see readHead); ws reads the body as WebSocket frames.
func dialStream(d *net.Dialer, base string, ws bool, status, header string, request func(host string) string) (*streamReader, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	req := request(u.Host)
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	s := &streamReader{conn: conn, src: conn, buf: make([]byte, streamBuffer), ws: ws}
	if err := s.readHead(status, header); err != nil {
		conn.Close()
		line, _, _ := strings.Cut(req, "\r\n")
		return nil, fmt.Errorf("%s: %w", strings.TrimSuffix(line, " HTTP/1.1"), err)
	}
	return s, nil
}

func (s *streamReader) Close() error { return s.conn.Close() }

// readHead reads the status line, which must have status, and the
// headers, which must include header (in lower case).
func (s *streamReader) readHead(status, header string) error {
	for {
		if i := bytes.Index(s.buf[:s.end], []byte("\r\n\r\n")); i >= 0 {
			head := s.buf[:i]
			if !bytes.HasPrefix(head, []byte("HTTP/1.1 "+status+" ")) {
				line, _, _ := bytes.Cut(head, []byte("\r\n"))
				return fmt.Errorf("response %q", line)
			}
			if !bytes.Contains(bytes.ToLower(head), []byte("\r\n"+header)) {
				return fmt.Errorf("response without %q", header)
			}
			s.raw = i + 4
			return nil
		}
		if s.end == len(s.buf) {
			return errors.New("response head too long")
		}
		n, err := s.conn.Read(s.buf[s.end:])
		if err != nil {
			return err
		}
		s.readAt = time.Now()
		s.end += n
	}
}

// readLines calls line for every line of the body (without its "\n")
// until the body or the connection ends, src has nothing more for now
// (errWouldBlock: a later call goes on where this one stopped), or line
// returns false.
func (s *streamReader) readLines(line func([]byte) bool) error {
	for {
		var err error
		if s.ws {
			err = s.deframe()
		} else {
			err = s.dechunk()
		}
		// Every complete line, then what is left moves to the front.
		done := 0
		for {
			i := bytes.IndexByte(s.buf[done:s.text], '\n')
			if i < 0 {
				break
			}
			l := s.buf[done : done+i]
			done += i + 1
			if !line(l) {
				s.compact(done)
				return nil
			}
		}
		s.compact(done)
		if err != nil {
			return err
		}
		if s.end == len(s.buf) {
			if len(s.buf) >= streamLineMax {
				return errors.New("line too long")
			}
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		n, err := s.src.Read(s.buf[s.end:])
		if err != nil {
			return err
		}
		s.readAt = time.Now()
		s.end += n
	}
}

// dechunk moves the data of the chunks in buf[raw:end] to buf[text:],
// dropping their framing; io.EOF after the last chunk.
func (s *streamReader) dechunk() error {
	for s.raw < s.end {
		switch {
		case s.left > 0:
			k := min(s.left, s.end-s.raw)
			copy(s.buf[s.text:], s.buf[s.raw:s.raw+k])
			s.text += k
			s.raw += k
			s.left -= k
			s.crlf = s.left == 0
		case s.crlf:
			if s.end-s.raw < 2 {
				return nil
			}
			if s.buf[s.raw] != '\r' || s.buf[s.raw+1] != '\n' {
				return errors.New("malformed chunk: no CRLF after its data")
			}
			s.raw += 2
			s.crlf = false
		default:
			i := bytes.IndexByte(s.buf[s.raw:s.end], '\n')
			if i < 0 {
				if s.end-s.raw > 64 {
					return errors.New("malformed chunk size line")
				}
				return nil
			}
			size, err := chunkSize(s.buf[s.raw : s.raw+i])
			if err != nil {
				return err
			}
			s.raw += i + 1
			if size == 0 {
				return io.EOF
			}
			s.left = size
		}
	}
	return nil
}

// chunkSize parses the hexadecimal size of a chunk-size line (without its
// "\n"), ignoring extensions.
func chunkSize(line []byte) (int, error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 8 {
		return 0, fmt.Errorf("malformed chunk size %q", line)
	}
	n := 0
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return 0, fmt.Errorf("malformed chunk size %q", line)
		}
	}
	return n, nil
}

// compact drops buf[:done], the lines already read, keeping the partial
// line and the raw bytes after it (on a WebSocket, a byte apart: the room
// for the "\n" that ends a message, see deframe).
func (s *streamReader) compact(done int) {
	gap := 0
	if s.ws {
		gap = 1
	}
	if done == 0 && s.raw-s.text <= gap {
		return
	}
	text := copy(s.buf, s.buf[done:s.text])
	raw := copy(s.buf[text+gap:], s.buf[s.raw:s.end])
	s.text, s.raw, s.end = text, text+gap, text+gap+raw
}

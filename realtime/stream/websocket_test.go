package stream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// acceptTestWebSocket makes server, client a WebSocket connection as
// ServeWebSocket would, and returns the server's side and the client's
// reader, which has read the 101 answer.
func acceptTestWebSocket(t testing.TB, server, client net.Conn) (*wsConn, *bufio.Reader) {
	t.Helper()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	r := httptest.NewRequest("GET", "/api/realtime/ws", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	if err := checkHandshake(httptest.NewRecorder(), r); err != nil {
		t.Fatalf("checkHandshake: %v", err)
	}
	ws, err := acceptWebSocket(&testHijacker{header: http.Header{}, conn: server}, r, wsReadTimeout)
	if err != nil {
		t.Fatalf("acceptWebSocket: %v", err)
	}
	br := bufio.NewReader(client)
	res, err := http.ReadResponse(br, r)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answer: %v, %v", res, err)
	}
	return ws, br
}

// testHijacker is the ResponseWriter of a connection the test made: its
// Hijack writes the status and headers written so far on conn, as
// net/http's does.
type testHijacker struct {
	header http.Header
	status int
	conn   net.Conn
	// out, when set, is where the hijacker's writer writes instead of conn.
	out io.Writer
}

func (h *testHijacker) Header() http.Header         { return h.header }
func (h *testHijacker) Write(p []byte) (int, error) { return len(p), nil }
func (h *testHijacker) WriteHeader(status int)      { h.status = status }

func (h *testHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", h.status, http.StatusText(h.status))
	_ = h.header.Write(&b)
	b.WriteString("\r\n")
	if _, err := h.conn.Write(b.Bytes()); err != nil {
		return nil, nil, err
	}
	out := h.out
	if out == nil {
		out = h.conn
	}
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(out)), nil
}

// A WebSocket client that answers the hub's pings stays connected however
// long it sends no message; one from which nothing comes, not even a
// pong, is closed with 1001 once the read timeout has passed.
func TestWebSocketReadTimeout(t *testing.T) {
	broker, _ := newTestBroker(t)
	hub := newTestHub(broker)
	hub.pingEvery, hub.readTimeout = 50*time.Millisecond, 400*time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hub.ServeWebSocket(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// coder/websocket's client answers pings while it reads.
	alive, _, err := websocket.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer alive.CloseNow()
	aliveErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := alive.Read(ctx); err != nil {
				aliveErr <- err
				return
			}
		}
	}()

	// A client that reads but never writes a byte after its handshake.
	silent, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	fmt.Fprintf(silent, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", base64.StdEncoding.EncodeToString(key))
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(silent)
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("silent client's handshake: %v, %v", res, err)
	}
	start := time.Now()
	code := -1
	for code < 0 {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("silent client: no close frame: %v", err)
		}
		p := make([]byte, h[1]&0x7f)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		if h[0] == 0x88 && len(p) >= 2 {
			code = int(p[0])<<8 | int(p[1])
		}
	}
	if waited := time.Since(start); code != 1001 || waited < hub.readTimeout {
		t.Errorf("silent client closed with %d after %v, want 1001 after at least %v", code, waited, hub.readTimeout)
	}

	// By now the live client has gone three read timeouts without a message.
	time.Sleep(3*hub.readTimeout - time.Since(start))
	select {
	case err := <-aliveErr:
		t.Fatalf("the client answering pings was dropped: %v", err)
	default:
	}
	if n := broker.Clients(); n != 1 {
		t.Errorf("Clients() = %d, want the live one", n)
	}
}

// When the server closes a WebSocket for a client's fault while events
// keep coming, its close frame is the last frame it sends (RFC 6455
// section 5.5.1), though the hub writes events itself, coder/websocket
// writes the close, and the client stays subscribed until the closing
// handshake ends.
func TestWebSocketNothingAfterClose(t *testing.T) {
	broker, post := newTestBroker(t)
	hub := newTestHub(broker)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hub.ServeWebSocket(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v", res, err)
	}
	readFrame := func() (byte, []byte, error) {
		var h [4]byte
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return 0, nil, err
		}
		n := int(h[1] & 0x7f)
		if n == 126 {
			if _, err := io.ReadFull(br, h[2:4]); err != nil {
				return 0, nil, err
			}
			n = int(h[2])<<8 | int(h[3])
		}
		p := make([]byte, n)
		_, err := io.ReadFull(br, p)
		return h[0], p, err
	}
	if _, err := conn.Write(maskedFrame(0x81, []byte(`{"type":"subscribe","topics":["posts/*"]}`))); err != nil {
		t.Fatal(err)
	}
	for {
		op, p, err := readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if op == 0x81 && strings.Contains(string(p), `"subscribed"`) {
			break
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				injectTitles(broker, post, 1)
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := 0; i < 20; i++ { // events are flowing
		if _, _, err := readFrame(); err != nil {
			t.Fatal(err)
		}
	}
	// A binary message: closed with 1007, and the client does not answer.
	if _, err := conn.Write(maskedFrame(0x82, []byte{1})); err != nil {
		t.Fatal(err)
	}
	for {
		op, p, err := readFrame()
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if op == 0x88 {
			if code := int(p[0])<<8 | int(p[1]); code != 1007 {
				t.Errorf("closed with %d, want 1007", code)
			}
			break
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if op, p, err := readFrame(); err == nil {
		t.Errorf("after the close frame: frame %#x %.80q, want nothing", op, p)
	}
}

// maskedFrame is payload as one final frame of first byte b0, masked as a
// client sends it; the payload is under 126 bytes.
func maskedFrame(b0 byte, payload []byte) []byte {
	mask := []byte{1, 2, 3, 4}
	f := append([]byte{b0, 0x80 | byte(len(payload))}, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

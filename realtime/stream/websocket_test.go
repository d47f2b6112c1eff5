package stream

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"
)

// acceptTestWebSocket makes server, client a WebSocket connection as
// ServeWebSocket would, and returns the server's side and the client's
// reader, which has read the 101 answer.
func acceptTestWebSocket(t testing.TB, server, client net.Conn) (*wsConn, *bufio.Reader) {
	t.Helper()
	return acceptTestWebSocketWith(t, server, client, websocket.CompressionDisabled, "")
}

// acceptTestWebSocketWith is acceptTestWebSocket with the server's
// compression mode and the client's Sec-WebSocket-Extensions.
func acceptTestWebSocketWith(t testing.TB, server, client net.Conn, mode websocket.CompressionMode, extensions string) (*wsConn, *bufio.Reader) {
	t.Helper()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	r := httptest.NewRequest("GET", "/api/realtime/ws", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	if extensions != "" {
		r.Header.Set("Sec-WebSocket-Extensions", extensions)
	}
	if err := checkHandshake(httptest.NewRecorder(), r); err != nil {
		t.Fatalf("checkHandshake: %v", err)
	}
	ws, err := acceptWebSocket(&testHijacker{header: http.Header{}, conn: server}, r, mode)
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
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

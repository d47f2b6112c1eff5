package rest_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
)

// wsEnv is newEnv's data served by a second server whose broker the test
// can see.
type wsEnv struct {
	*env
	broker *realtime.Broker
	ws     *httptest.Server
}

func newWSEnv(t *testing.T) *wsEnv {
	t.Helper()
	e := newEnv(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker := realtime.New(e.records, log)
	t.Cleanup(broker.Close)
	authSvc := auth.New(e.records, log)
	api := rest.NewHandler(rest.Deps{Records: e.records, Auth: authSvc, Log: log, Realtime: broker})
	srv := httptest.NewServer(server.New(server.Deps{API: api, Auth: authSvc, Log: log, BodyLimit: 1 << 20}))
	t.Cleanup(srv.Close)
	return &wsEnv{env: e, broker: broker, ws: srv}
}

// wsClient is a minimal RFC 6455 client: masked frames, as browsers send.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	id   string // the client id of the connected message
}

// dialWS opens /api/realtime/ws with extra handshake headers and checks
// the 101 answer.
func (e *wsEnv) dialWS(header map[string]string) *wsClient {
	e.t.Helper()
	return e.dialWSWith(header, nil)
}

// dialWSWith is dialWS sending early, frames, in the same write as the
// handshake.
func (e *wsEnv) dialWSWith(header map[string]string, early []byte) *wsClient {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ws.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	rand.Read(key)
	k := base64.StdEncoding.EncodeToString(key)
	req := "GET /api/realtime/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + k + "\r\n"
	for h, v := range header {
		req += h + ": " + v + "\r\n"
	}
	if _, err := conn.Write(append([]byte(req+"\r\n"), early...)); err != nil {
		e.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != 101 || res.Header.Get("Sec-WebSocket-Accept") != acceptKey(k) {
		e.t.Fatalf("handshake = %d %v", res.StatusCode, res.Header)
	}
	c := &wsClient{t: e.t, conn: conn, br: br}
	m := c.next()
	if m["type"] != "connected" || m["clientId"] == "" {
		e.t.Fatalf("first message = %v, want connected with a clientId", m)
	}
	c.id, _ = m["clientId"].(string)
	return c
}

// acceptKey is the Sec-WebSocket-Accept answer to key k.
func acceptKey(k string) string {
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3's example.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("acceptKey = %s", got)
	}
}

// frame sends one frame; fin false starts or continues a fragmented message.
func (c *wsClient) frame(fin bool, op byte, payload []byte, masked bool) {
	c.t.Helper()
	if _, err := c.conn.Write(clientFrame(fin, op, payload, masked)); err != nil {
		c.t.Fatal(err)
	}
}

// clientFrame is one frame as a client sends it (masked, unless not).
func clientFrame(fin bool, op byte, payload []byte, masked bool) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, mbit|byte(n))
	case n <= 0xFFFF:
		b = append(b, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if masked {
		mask := make([]byte, 4)
		rand.Read(mask)
		b = append(b, mask...)
		for i := range p {
			p[i] ^= mask[i&3]
		}
	}
	return append(b, p...)
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.frame(true, 0x1, b, true)
}

// readFrame returns the next frame from the server.
func (c *wsClient) readFrame() (op byte, payload []byte, err error) {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		c.t.Fatal("server frames must not be masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(c.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(c.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return h[0] & 0x0F, payload, err
}

// next returns the next JSON message, skipping pings.
func (c *wsClient) next() map[string]any {
	c.t.Helper()
	for {
		op, p, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		switch op {
		case 0x9, 0xA:
			continue
		case 0x8:
			c.t.Fatalf("server closed: %d %s", binary.BigEndian.Uint16(p), p[2:])
		}
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			c.t.Fatalf("message %q: %v", p, err)
		}
		return m
	}
}

// closed waits for the server's close frame and returns its code.
func (c *wsClient) closed() int {
	c.t.Helper()
	for {
		op, p, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("no close frame: %v", err)
		}
		if op == 0x8 {
			return int(binary.BigEndian.Uint16(p))
		}
	}
}

// silent checks that no message arrives for a while.
func (c *wsClient) silent() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var h [1]byte
	if _, err := c.br.Read(h[:]); err == nil {
		c.t.Errorf("unexpected data from the server")
	}
}

func (c *wsClient) subscribe(token string, topics ...string) {
	c.t.Helper()
	msg := map[string]any{"type": "subscribe", "topics": topics}
	if token != "" {
		msg["token"] = token
	}
	c.send(msg)
	if m := c.next(); m["type"] != "subscribed" {
		c.t.Fatalf("subscribe %v = %v", topics, m)
	}
}

func TestRealtimeWebSocket(t *testing.T) {
	e := newWSEnv(t)
	alice := e.dialWS(nil)
	alice.subscribe(e.tokens["alice"], "posts/*")
	guest := e.dialWS(nil)
	guest.subscribe("", "posts/*?options="+urlq(`{"query":{"fields":"title"}}`))

	// bob's private post reaches no one here; alice's own reaches her;
	// a public one reaches both, the guest with only the title.
	for _, p := range []struct {
		who    string
		title  string
		public bool
	}{{"bob", "bob private", false}, {"alice", "alice private", false}, {"bob", "bob public", true}} {
		if st, body := e.do("POST", "/api/collections/posts/records", p.who, map[string]any{"title": p.title, "owner": e.ids[p.who], "public": p.public}); st != 200 {
			t.Fatalf("create %s = %d %s", p.title, st, body)
		}
	}
	for _, want := range []string{"alice private", "bob public"} {
		m := alice.next()
		rec, _ := m["record"].(map[string]any)
		if m["type"] != "event" || m["action"] != "create" || m["topic"] != "posts/*" || rec["title"] != want {
			t.Errorf("alice got %v, want the create of %q", m, want)
		}
	}
	m := guest.next()
	rec, _ := m["record"].(map[string]any)
	if rec["title"] != "bob public" || len(rec) != 1 {
		t.Errorf("guest got %v, want only bob's public post's title", m)
	}
	alice.silent()
	guest.silent()

	// Ping, unsubscribe, and the identity a client subscribed as.
	alice.send(map[string]any{"type": "ping"})
	if m := alice.next(); m["type"] != "pong" {
		t.Errorf("ping answered %v", m)
	}
	alice.send(map[string]any{"type": "subscribe", "topics": []string{"posts/*"}, "token": e.tokens["bob"]})
	if m := alice.next(); m["type"] != "error" || m["status"] != 403.0 {
		t.Errorf("subscribing as someone else = %v, want a 403 error", m)
	}
	alice.send(map[string]any{"type": "subscribe", "topics": []string{"posts/*"}, "token": "not-a-token"})
	if m := alice.next(); m["type"] != "error" || m["status"] != 401.0 {
		t.Errorf("subscribing with a bad token = %v, want a 401 error", m)
	}
	alice.send(map[string]any{"type": "subscribe", "topics": []string{"nope/*"}})
	if m := alice.next(); m["type"] != "error" || m["status"] != 400.0 {
		t.Errorf("subscribing to an unknown collection = %v, want a 400 error", m)
	}
	alice.send(map[string]any{"type": "unsubscribe", "topics": []string{"posts/*"}, "token": e.tokens["alice"]})
	if m := alice.next(); m["type"] != "subscribed" || len(m["topics"].([]any)) != 0 {
		t.Errorf("unsubscribe = %v", m)
	}
	e.do("POST", "/api/collections/posts/records", "alice", map[string]any{"title": "after unsubscribe", "owner": e.ids["alice"], "public": true})
	if m := guest.next(); m["type"] != "event" {
		t.Errorf("guest got %v", m)
	}
	alice.silent()

	// A WebSocket ping frame is answered with a pong frame carrying its data.
	alice.frame(true, 0x9, []byte("hi"), true)
	if op, p, err := alice.readFrame(); err != nil || op != 0xA || string(p) != "hi" {
		t.Errorf("ping frame answered %x %q %v, want a pong with \"hi\"", op, p, err)
	}

	// Closing removes the client from the broker.
	if n := e.broker.Clients(); n != 2 {
		t.Errorf("broker has %d clients, want 2", n)
	}
	alice.frame(true, 0x8, binary.BigEndian.AppendUint16(nil, 1000), true)
	if code := alice.closed(); code != 1000 {
		t.Errorf("close answered with %d, want 1000", code)
	}
	guest.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for e.broker.Clients() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.broker.Clients(); n != 0 {
		t.Errorf("broker has %d clients after both closed, want 0", n)
	}
}

func TestRealtimeWebSocketProtocol(t *testing.T) {
	e := newWSEnv(t)
	t.Run("fragmented message with a ping between", func(t *testing.T) {
		c := e.dialWS(nil)
		c.t = t
		msg := []byte(`{"type":"subscribe","topics":["posts/*"]}`)
		c.frame(false, 0x1, msg[:10], true)
		c.frame(true, 0x9, []byte("x"), true)
		c.frame(false, 0x0, msg[10:20], true)
		c.frame(true, 0x0, msg[20:], true)
		if op, _, _ := c.readFrame(); op != 0xA {
			t.Errorf("first answer opcode %x, want the pong", op)
		}
		if m := c.next(); m["type"] != "subscribed" {
			t.Errorf("reassembled message answered %v", m)
		}
	})
	t.Run("token in the handshake header", func(t *testing.T) {
		c := e.dialWS(map[string]string{"Authorization": e.tokens["alice"]})
		c.t = t
		c.subscribe("", "posts/*")
		e.do("POST", "/api/collections/posts/records", "alice", map[string]any{"title": "mine", "owner": e.ids["alice"]})
		if m := c.next(); m["type"] != "event" {
			t.Errorf("got %v, want alice's private post", m)
		}
	})
	tests := []struct {
		name string
		send func(c *wsClient)
		code int
	}{
		{"unmasked frame", func(c *wsClient) { c.frame(true, 0x1, []byte(`{"type":"ping"}`), false) }, 1002},
		{"message over 64 KiB", func(c *wsClient) { c.frame(true, 0x1, make([]byte, 70<<10), true) }, 1009},
		{"invalid UTF-8", func(c *wsClient) { c.frame(true, 0x1, []byte{0xff, 0xfe}, true) }, 1007},
		{"binary message", func(c *wsClient) { c.frame(true, 0x2, []byte{1}, true) }, 1007},
		{"fragmented control frame", func(c *wsClient) { c.frame(false, 0x9, nil, true) }, 1002},
		{"reserved opcode", func(c *wsClient) { c.frame(true, 0x3, nil, true) }, 1002},
		{"continuation without a start", func(c *wsClient) { c.frame(true, 0x0, []byte("x"), true) }, 1002},
		{"flood of messages", func(c *wsClient) {
			for i := 0; i < 100; i++ {
				c.frame(true, 0x1, []byte(`{"type":"nothing"}`), true)
			}
		}, 1008},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dialWS(nil)
			c.t = t
			tt.send(c)
			if code := c.closed(); code != tt.code {
				t.Errorf("closed with %d, want %d", code, tt.code)
			}
		})
	}
	t.Run("not a handshake", func(t *testing.T) {
		st, body := e.do("GET", "/api/realtime/ws", "", nil)
		if st != 400 || !strings.Contains(body, "WebSocket") {
			t.Errorf("GET without upgrade = %d %s, want 400", st, body)
		}
	})
}

// An SSE stream is taken over by the hub: it still speaks HTTP/1.1
// (chunked) and carries the middleware's headers; clients that go away
// are removed at once, and nothing the server held for them stays.
func TestRealtimeSSEStreamLifecycle(t *testing.T) {
	e := newWSEnv(t)
	before := runtime.NumGoroutine()
	const streams = 10
	var bodies []io.Closer
	for i := range streams {
		res, err := http.Get(e.ws.URL + "/api/realtime")
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, res.Body)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("X-Request-Id") == "" ||
			len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
			t.Errorf("stream %d answered %d %v %v", i, res.StatusCode, res.Header, res.TransferEncoding)
		}
		br := bufio.NewReader(res.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "data:") {
				if !strings.Contains(line, "clientId") {
					t.Errorf("PB_CONNECT data = %q", line)
				}
				break
			}
		}
	}
	if n := e.broker.Clients(); n != streams {
		t.Errorf("Clients() = %d with %d streams open", n, streams)
	}
	for _, b := range bodies {
		b.Close()
	}
	e.noneLeft(before)
}

// noneLeft waits until the broker has no client and no more goroutines
// run than before (with a margin of two: the hub's pinger stays until its
// next tick, and closing a socket may wait 2 s for the client's last
// bytes), and fails the test if that does not come.
func (e *wsEnv) noneLeft(before int) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second) // ends a hang only
	for (e.broker.Clients() != 0 || runtime.NumGoroutine() > before+2) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.broker.Clients(); n != 0 {
		e.t.Errorf("Clients() = %d after every client left, want 0", n)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		e.t.Errorf("%d goroutines after every client left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A burst of events reaches a WebSocket client whole and in order, however
// the server groups them into writes.
func TestRealtimeWebSocketBurst(t *testing.T) {
	e := newWSEnv(t)
	rec := e.bigPost()
	c := e.dialWS(nil)
	c.subscribe(e.tokens["su"], "posts/*")
	const events = 200 // fewer than a client may have queued
	e.injectViews(rec, 0, events)
	for i := 0; i < events; {
		m := c.next()
		r, _ := m["record"].(map[string]any)
		if m["action"] == "create" {
			continue // the post's creation, dispatched after the subscription or not
		}
		if m["type"] != "event" || r["views"] != float64(i) || len(r["body"].(string)) < 4096 {
			t.Fatalf("message %d = %.200v, want the update with views %d", i, m, i)
		}
		i++
	}
}

// A WebSocket client that stops reading neither holds up the others nor
// keeps the server's memory: the others get every event, in order, and it
// is disconnected once it is too far behind.
func TestRealtimeWebSocketStalledClient(t *testing.T) {
	e := newWSEnv(t)
	rec := e.bigPost()
	live := e.dialWS(nil)
	live.subscribe(e.tokens["su"], "posts/*")
	stalled := e.dialWS(nil)
	_ = stalled.conn.(*net.TCPConn).SetReadBuffer(4096)
	stalled.subscribe(e.tokens["su"], "posts/*") // and never reads again
	if n := e.broker.Clients(); n != 2 {
		t.Fatalf("Clients() = %d, want 2", n)
	}

	e.stallOne(rec, func() int {
		m := live.next()
		r, _ := m["record"].(map[string]any)
		views, ok := r["views"].(float64)
		if m["type"] != "event" || !ok {
			t.Fatalf("live client: %.200v, want an event", m)
		}
		return int(views)
	})
}

// When the server stops, every WebSocket client is told so with 1001.
func TestRealtimeWebSocketServerStops(t *testing.T) {
	e := newWSEnv(t)
	a, b := e.dialWS(nil), e.dialWS(nil)
	a.subscribe("", "posts/*")
	e.broker.Close()
	for _, c := range []*wsClient{a, b} {
		if code := c.closed(); code != 1001 {
			t.Errorf("close code %d, want 1001", code)
		}
	}
}

// A subscription sent in the same packet as the handshake is not lost
// (the server reads what came after the handshake first).
func TestRealtimeWebSocketEarlyMessage(t *testing.T) {
	e := newWSEnv(t)
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "topics": []string{"posts/*"}})
	c := e.dialWSWith(nil, clientFrame(true, 0x1, sub, true))
	if m := c.next(); m["type"] != "subscribed" {
		t.Fatalf("after the early subscribe: %v", m)
	}
	e.injectViews(e.bigPost(), 7, 1)
	if m := c.next(); m["type"] != "event" || m["topic"] != "posts/*" {
		t.Errorf("after the early subscribe: %.200v, want an event of posts/*", m)
	}
}

// Clients that leave, with a close frame or by dropping the connection,
// are removed with everything the server held for them: no client, and no
// goroutine left behind.
func TestRealtimeWebSocketClientsLeave(t *testing.T) {
	e := newWSEnv(t)
	rec := e.bigPost()
	before := runtime.NumGoroutine()
	var clients []*wsClient
	for range 20 {
		c := e.dialWS(nil)
		c.subscribe("", "posts/*")
		clients = append(clients, c)
	}
	e.injectViews(rec, 0, 3)
	for i, c := range clients {
		if i%2 == 0 {
			c.frame(true, 0x8, binary.BigEndian.AppendUint16(nil, 1000), true)
		} else {
			c.conn.Close() // gone without a word
		}
	}
	e.noneLeft(before)
}

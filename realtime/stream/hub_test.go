package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// A stream whose socket fills up while events keep coming hands what the
// socket does not take to a goroutine that waits for the client; once
// the client reads again it gets every event, whole and in order, each
// after the stream's id line. The same holds for a connection without a
// descriptor of its own (TLS), where every write waits that way.
func TestSSEStreamCatchesUp(t *testing.T) {
	tests := []struct {
		name string
		pair func(t testing.TB) (server, client net.Conn)
	}{
		{"TCP with a full socket", tcpPair},
		{"no descriptor, as TLS", func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker, post := newTestBroker(t)
			server, client := tt.pair(t)
			defer client.Close()
			defer server.Close()
			s := newTestStream(t, newTestHub(broker), server, nil)

			// 600 KB, more than the socket buffers and less than a stream
			// may fall behind; nothing is read until every event is sent.
			const events = 150
			injectTitles(broker, post, events)
			if err := readTitles(client, s.idLine, events); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Streams in a round longer than longRound are written by a writer per
// processor at once; every stream still gets every event, whole and in
// order, while some of the writes fill the socket and wait.
func TestSSELongRounds(t *testing.T) {
	broker, post := newTestBroker(t)
	hub := newTestHub(broker)
	hub.procs, hub.longRound = 4, 8 // four writers, whatever the machine
	const streams, events = 40, 30
	ids := make([]string, streams)
	clients := make([]net.Conn, streams)
	for i := range streams {
		server, client := tcpPair(t)
		t.Cleanup(func() { client.Close(); server.Close() })
		ids[i], clients[i] = newTestStream(t, hub, server, nil).idLine, client
	}
	injectTitles(broker, post, events)
	errs := make(chan error, streams)
	for i := range streams {
		go func() { errs <- readTitles(clients[i], ids[i], events) }()
	}
	for i := range streams {
		if err := <-errs; err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
	}
	hub.mu.Lock()
	peak := hub.peak
	hub.mu.Unlock()
	if peak != 4 {
		t.Errorf("at most %d writers for rounds of %d streams, want 4", peak, streams)
	}
}

// A WebSocket stream whose reader is writing an answer (which may wait
// for a client that does not read) is written after it, and the rounds
// do not wait meanwhile: another stream of the hub gets every event.
func TestWebSocketStreamWaitsAside(t *testing.T) {
	broker, post := newTestBroker(t)
	hub := newTestHub(broker)
	wsServer, wsClient := tcpPair(t)
	defer wsClient.Close()
	ws, wsRead := acceptTestWebSocket(t, wsServer, wsClient)
	newTestStream(t, hub, wsServer, ws)
	sseServer, sseClient := tcpPair(t)
	defer sseClient.Close()
	sse := newTestStream(t, hub, sseServer, nil)

	ws.out.mu.Lock() // its reader is writing
	ws.out.busy = true
	ws.out.mu.Unlock()
	const events = 5
	injectTitles(broker, post, events)
	if err := readTitles(sseClient, sse.idLine, events); err != nil {
		t.Fatalf("the SSE stream, while the WebSocket's reader writes: %v", err)
	}
	ws.out.release()
	// Then the WebSocket gets its events, as text frames.
	_ = wsClient.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := wsRead
	for i := 0; i < events; {
		var h [4]byte
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		n := int(h[1] & 0x7f)
		if n == 126 {
			if _, err := io.ReadFull(br, h[2:4]); err != nil {
				t.Fatal(err)
			}
			n = int(h[2])<<8 | int(h[3])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x81 || !strings.Contains(string(p), `"type":"event"`) {
			t.Fatalf("frame %#x %.80q, want an event in a text frame", h[0], p)
		}
		if strings.Contains(string(p), `"action":"create"`) {
			continue
		}
		if want := fmt.Sprintf(`"title":"%d"`, i); !strings.Contains(string(p), want) {
			t.Fatalf("event %d: %.200q, want it to hold %s", i, p, want)
		}
		i++
	}
}

// injectTitles dispatches n updates of post, titled 0 to n-1.
func injectTitles(broker *realtime.Broker, post *underhood.Record, n int) {
	for i := range n {
		r := post.Clone()
		r.Data["title"] = fmt.Sprint(i)
		broker.Inject(underhood.Event{Action: "update", Collection: "posts", Record: r})
	}
}

// newTestStream is a stream of hub on server, subscribed to posts/*: a
// WebSocket one when ws is set.
func newTestStream(t *testing.T, hub *Hub, server net.Conn, ws *wsConn) *stream {
	t.Helper()
	return connectTestStream(t, hub, server, ws, "posts/*")
}

// connectTestStream is a stream of hub on server subscribed to topics
// (none: no subscription), a WebSocket one when ws is set.
func connectTestStream(t *testing.T, hub *Hub, server net.Conn, ws *wsConn, topics ...string) *stream {
	t.Helper()
	s := hub.newStream(server, ws)
	if len(topics) > 0 {
		if err := hub.broker.Subscribe(s.client.ID, nil, topics); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Every stream is pinged (an SSE comment line, a WebSocket ping frame);
// a stream that stays without subscriptions is closed, a WebSocket with
// 1000, and one with subscriptions stays open and keeps being pinged.
func TestStreamsPingAndIdle(t *testing.T) {
	broker, _ := newTestBroker(t)
	hub := newTestHub(broker)
	hub.pingEvery, hub.idleAfter = 20*time.Millisecond, 100*time.Millisecond
	var clients []net.Conn
	var wsRead *bufio.Reader // the idle WebSocket's
	open := func(ws bool, topics ...string) net.Conn {
		server, client := tcpPair(t)
		t.Cleanup(func() { client.Close(); server.Close() })
		var c *wsConn
		if ws {
			c, wsRead = acceptTestWebSocket(t, server, client)
		}
		hub.add(connectTestStream(t, hub, server, c, topics...))
		clients = append(clients, client)
		return client
	}
	subscribed := open(false, "posts/*")
	idleSSE := open(false)
	open(true)
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // ends a hang only
	}

	// The idle WebSocket: pings, then close 1000.
	ws := wsRead
	pings := 0
	for {
		var h [2]byte
		if _, err := io.ReadFull(ws, h[:]); err != nil {
			t.Fatalf("idle WebSocket, after %d pings: %v", pings, err)
		}
		p := make([]byte, h[1]&0x7f)
		if _, err := io.ReadFull(ws, p); err != nil {
			t.Fatal(err)
		}
		if h[0] == 0x89 {
			pings++
			continue
		}
		if h[0] != 0x88 || len(p) < 2 || int(p[0])<<8|int(p[1]) != 1000 || string(p[2:]) != "idle without subscriptions" {
			t.Fatalf("idle WebSocket: frame %#x %q, want a close 1000", h[0], p)
		}
		break
	}
	if pings == 0 {
		t.Error("the idle WebSocket got no ping before its close")
	}
	// The idle SSE stream: pings, then the end of the connection.
	rest, err := io.ReadAll(idleSSE)
	if err != nil || !strings.Contains(string(rest), ":ping") {
		t.Errorf("idle SSE stream: %q, %v; want pings, then its end", rest, err)
	}
	// The subscribed one is still pinged after the others were closed.
	buf := make([]byte, 4096)
	for got := ""; !strings.Contains(got, ":ping"); {
		n, err := subscribed.Read(buf)
		if err != nil {
			t.Fatalf("subscribed stream: %v", err)
		}
		got = string(buf[:n])
	}
	if n := broker.Clients(); n != 1 {
		t.Errorf("Clients() = %d, want the subscribed one only", n)
	}
}

// readTitles reads events update events from client's stream, whose
// titles must be 0, 1, … in order, each event after idLine.
func readTitles(client net.Conn, idLine string, events int) error {
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	body := bufio.NewReader(httputil.NewChunkedReader(client))
	for i := 0; i < events; {
		var lines [4]string
		for j := range lines {
			line, err := body.ReadString('\n')
			if err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
			lines[j] = line
		}
		if strings.Contains(lines[2], `"action":"create"`) {
			continue // the post's creation, dispatched after the subscription or not
		}
		want := []string{idLine + "\n", "event:posts/*\n", fmt.Sprintf(`"title":"%d"`, i), "\n"}
		for j, w := range want {
			if !strings.HasPrefix(lines[j], w) && !strings.Contains(lines[j], w) {
				return fmt.Errorf("event %d: line %.60q, want it to hold %q", i, lines[j], w)
			}
		}
		i++
	}
	return nil
}

// newTestBroker returns a broker over an empty database with a public
// posts collection, and a post with a 4 KB body to inject.
func newTestBroker(t *testing.T) (*realtime.Broker, *underhood.Record) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir()}, log)
	broker := realtime.New(records, log)
	t.Cleanup(broker.Close)
	sys := records.SystemRequest()
	rule := underhood.RuleOf("")
	coll, err := records.SaveCollection(ctx, sys.Auth, "", &underhood.Collection{Name: "posts", Type: underhood.TypeBase, ListRule: rule, ViewRule: rule,
		Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}, {Name: "body", Type: underhood.FieldText}}})
	if err != nil {
		t.Fatal(err)
	}
	post, err := records.Create(ctx, sys, "posts", map[string]any{"title": "x", "body": strings.Repeat("x", 4096)}, "")
	if err != nil {
		t.Fatal(err)
	}
	post.Collection = coll
	return broker, post
}

// tcpPair is a loopback connection whose server side has a small send
// buffer, so that a client that does not read fills it soon.
func tcpPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	return server, client
}

// newTestHub is a hub of broker that renders a record as its data.
func newTestHub(broker *realtime.Broker) *Hub {
	return NewHub(Config{
		Broker: broker,
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		AppendRecord: func(b []byte, m *realtime.Message) []byte {
			j, _ := json.Marshal(m.Record.Data)
			return append(b, j...)
		},
	})
}

package rest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood"
)

// rawStream is an SSE stream on a connection of the test's own, so that
// the test decides when (and whether) it is read.
type rawStream struct {
	conn net.Conn
	body *bufio.Reader
}

// openRawStream opens /api/realtime on e.ws and subscribes it to topic
// as the superuser; rcvbuf > 0 sets the socket's receive buffer.
func (e *wsEnv) openRawStream(topic string, rcvbuf int) *rawStream {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ws.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	if rcvbuf > 0 {
		_ = conn.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	if _, err := io.WriteString(conn, "GET /api/realtime HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		e.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	s := &rawStream{conn: conn, body: bufio.NewReader(res.Body)}
	var id string
	for id == "" {
		line := s.line(e.t)
		if data, ok := strings.CutPrefix(line, `data:{"clientId":"`); ok {
			id, _, _ = strings.Cut(data, `"`)
		}
	}
	body := fmt.Sprintf(`{"clientId":%q,"subscriptions":[%q]}`, id, topic)
	req, _ := http.NewRequest("POST", e.ws.URL+"/api/realtime", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", e.tokens["su"])
	sub, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	sub.Body.Close()
	if sub.StatusCode != 204 {
		e.t.Fatalf("subscribe %s = %d", topic, sub.StatusCode)
	}
	return s
}

// line reads one line of the stream, without its "\n".
func (s *rawStream) line(t *testing.T) string {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := s.body.ReadString('\n')
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

// views reads events until the next one about a post and returns its
// views.
func (s *rawStream) views(t *testing.T) int {
	t.Helper()
	for {
		line := s.line(t)
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		_, after, ok := strings.Cut(data, `"views":`)
		if !ok {
			t.Fatalf("event without views: %.200s", data)
		}
		end := strings.IndexAny(after, ",}")
		n, err := strconv.Atoi(after[:end])
		if err != nil {
			t.Fatalf("event views %q: %v", after[:end], err)
		}
		return n
	}
}

// bigPost creates a public post with a 4 KB body and returns it, to be
// injected into the broker as often as a test needs.
func (e *wsEnv) bigPost() *underhood.Record {
	e.t.Helper()
	st, body := e.do("POST", "/api/collections/posts/records", "alice", map[string]any{
		"title": "big", "public": true, "owner": e.ids["alice"], "body": "<p>" + strings.Repeat("x", 4096) + "</p>"})
	if st != 200 {
		e.t.Fatalf("create post: %d %s", st, body)
	}
	coll, err := e.records.Collection("posts")
	if err != nil {
		e.t.Fatal(err)
	}
	rec, err := e.records.FindRecord(context.Background(), coll, jsonField(e.t, body, "id"))
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// injectViews dispatches n updates of rec, with views from first on.
func (e *wsEnv) injectViews(rec *underhood.Record, first, n int) {
	for i := first; i < first+n; i++ {
		r := rec.Clone()
		r.Data["views"] = i
		e.broker.Inject(underhood.Event{Action: "update", Collection: "posts", Record: r})
	}
}

// A client that stops reading neither holds up the others nor keeps the
// server's memory: the others get every event, in order, and it is
// disconnected once it is too far behind.
func TestRealtimeSSEStalledClient(t *testing.T) {
	e := newWSEnv(t)
	rec := e.bigPost()
	live := e.openRawStream("posts/*", 0)
	_ = e.openRawStream("posts/*", 4096) // never read again
	if n := e.broker.Clients(); n != 2 {
		t.Fatalf("Clients() = %d, want 2", n)
	}

	e.stallOne(rec, func() int { return live.views(t) })
}

// stallOne checks a live client and a stalled one, both subscribed to
// posts/*: 2000 updates of rec, 8 MB in all (more than socket buffers and
// the 1,024 events a client may fall behind), go out in steps that a
// client that reads keeps up with; views returns the views of the live
// client's next event, which must count up, and the stalled client must
// be dropped.
func (e *wsEnv) stallOne(rec *underhood.Record, views func() int) {
	e.t.Helper()
	const events, step = 2000, 100
	for i := 0; i < events; i += step {
		e.injectViews(rec, i, step)
		for j := i; j < i+step; j++ {
			if got := views(); got != j {
				e.t.Fatalf("live client: event %d has views %d", j, got)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.broker.Clients() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.broker.Clients(); n != 1 {
		e.t.Errorf("Clients() = %d after one client stalled for %d events, want 1", n, events)
	}
}

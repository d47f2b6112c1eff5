package rest

import (
	"bufio"
	"fmt"
	"net"
	"net/http/httputil"
	"strings"
	"syscall"
	"testing"
)

// A stream whose socket fills up while events keep coming hands what the
// socket does not take to a goroutine that waits for the client; once
// the client reads again it gets every event, whole and in order, each
// after the stream's id line. The same holds for a connection without a
// descriptor of its own (TLS), where every write waits that way.
func TestSSEStreamCatchesUp(t *testing.T) {
	tests := []struct {
		name string
		pair func(t *testing.T) (server, client net.Conn)
	}{
		{"TCP with a full socket", tcpPair},
		{"no descriptor, as TLS", func(*testing.T) (net.Conn, net.Conn) { return net.Pipe() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tt.pair(t)
			defer client.Close()
			defer server.Close()
			h := newSSEHub(nil, nil)
			s := &sseStream{hub: h, conn: server, idLine: "id:test"}
			if sc, ok := server.(syscall.Conn); ok {
				s.raw, _ = sc.SyscallConn()
			}

			// 600 KB, more than the socket buffers and less than a stream
			// may queue; nothing is read until every event is queued.
			const events = 1200
			pad := strings.Repeat("x", 500)
			for i := range events {
				if !s.push(sseEntry{frame: fmt.Appendf(nil, "\nevent:e\ndata:%d %s\n\n", i, pad), event: true}) {
					t.Fatalf("push(event %d) = false, want it queued", i)
				}
			}
			body := bufio.NewReader(httputil.NewChunkedReader(client))
			for i := range events {
				want := []string{"id:test", "event:e", fmt.Sprintf("data:%d %s", i, pad), ""}
				for _, w := range want {
					line, err := body.ReadString('\n')
					if err != nil {
						t.Fatalf("event %d: %v", i, err)
					}
					if line != w+"\n" {
						t.Fatalf("event %d: line %.40q, want %.40q", i, line, w+"\n")
					}
				}
			}
		})
	}
}

// tcpPair is a loopback connection whose server side has a small send
// buffer, so that a client that does not read fills it soon.
func tcpPair(t *testing.T) (server, client net.Conn) {
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

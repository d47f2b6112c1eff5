package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStreamReader feeds a chunked event stream through the reader in
// pieces of every size, with chunks that split lines and lines that span
// chunks, and checks that every line comes out once and whole.
func TestStreamReader(t *testing.T) {
	var want []string
	var body strings.Builder
	for i := range 300 {
		ev := fmt.Sprintf("id:client\nevent:posts/*\ndata:{\"sent\":%d,\"title\":%q}\n\n", i, strings.Repeat("x", i*7%500))
		want = append(want, strings.Split(strings.TrimSuffix(ev, "\n"), "\n")...)
		body.WriteString(ev)
	}
	want = append(want, strings.Repeat("y", 40000)) // longer than the buffer
	body.WriteString(want[len(want)-1] + "\n")

	tests := []struct {
		name     string
		chunkMax int // largest chunk of the body
		writeMax int // largest write of the framed bytes
	}{
		{"one event a chunk, one write", 1 << 20, 1 << 20},
		{"tiny chunks", 3, 1 << 20},
		{"tiny writes", 1 << 20, 5},
		{"tiny both", 7, 3},
		{"random", 600, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var framed strings.Builder
			framed.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			rest := body.String()
			for rest != "" {
				n := min(len(rest), 1+rng.IntN(tt.chunkMax))
				fmt.Fprintf(&framed, "%x\r\n%s\r\n", n, rest[:n])
				rest = rest[n:]
			}
			framed.WriteString("0\r\n\r\n")

			got, err := readInPieces(t, framed.String(), rng, tt.writeMax, false)
			if err == nil || err.Error() != "EOF" {
				t.Errorf("readLines() = %v, want EOF", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%.2000s", diff)
			}
		})
	}
}

// TestWebSocketReader feeds server frames through the reader in writes of
// every size: messages split into continuation frames, empty messages,
// pings between frames, a message longer than the buffer, lengths of
// every header form; each message comes out once and whole, as a line.
func TestWebSocketReader(t *testing.T) {
	frame := func(b *strings.Builder, op byte, fin bool, p string) {
		if fin {
			op |= 0x80
		}
		b.WriteByte(op)
		switch n := len(p); {
		case n < 126:
			b.WriteByte(byte(n))
		case n <= 0xffff:
			b.Write([]byte{126, byte(n >> 8), byte(n)})
		default:
			b.WriteByte(127)
			b.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
		}
		b.WriteString(p)
	}
	var want []string
	var body strings.Builder
	for i := range 300 {
		m := fmt.Sprintf(`{"type":"event","record":{"sent":%d,"title":%q}}`, i, strings.Repeat("x", i*37%700))
		if i%10 == 3 {
			m = ""
		}
		want = append(want, m)
		if i%4 == 1 && len(m) > 10 { // in three frames, a ping among them
			frame(&body, 0x1, false, m[:5])
			frame(&body, 0x9, true, "ping")
			frame(&body, 0x0, false, m[5:9])
			frame(&body, 0x0, true, m[9:])
		} else {
			frame(&body, 0x1, true, m)
		}
	}
	long := strings.Repeat("y", 70000)
	want = append(want, long)
	frame(&body, 0x1, true, long)
	frame(&body, 0x8, true, "\x03\xe8")

	for _, writeMax := range []int{1 << 20, 1, 3, 700} {
		t.Run(fmt.Sprint("writes up to ", writeMax), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			got, err := readInPieces(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"+body.String(), rng, writeMax, true)
			if err == nil || err.Error() != "EOF" {
				t.Errorf("readLines() = %v, want EOF", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("messages (-want +got):\n%.2000s", diff)
			}
		})
	}
}

// readInPieces serves response through a pipe in writes of 1 to writeMax
// bytes and returns every line a streamReader reads from it, and the
// error that ended them: an SSE response (200, chunked), or a WebSocket
// one (101, frames) when ws is set.
func readInPieces(t *testing.T, response string, rng *rand.Rand, writeMax int, ws bool) ([]string, error) {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		b := []byte(response)
		for len(b) > 0 {
			n := min(len(b), 1+rng.IntN(writeMax))
			if _, err := server.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	s := &streamReader{conn: client, src: client, buf: make([]byte, streamBuffer), ws: ws}
	status, header := "200", "transfer-encoding: chunked"
	if ws {
		status, header = "101", "upgrade: websocket"
	}
	if err := s.readHead(status, header); err != nil {
		t.Fatalf("readHead() = %v", err)
	}
	var got []string
	err := s.readLines(func(line []byte) bool {
		got = append(got, string(line))
		return true
	})
	return got, err
}

package main

import (
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

			client, server := net.Pipe()
			go func() {
				defer server.Close()
				b := []byte(framed.String())
				for len(b) > 0 {
					n := min(len(b), 1+rng.IntN(tt.writeMax))
					if _, err := server.Write(b[:n]); err != nil {
						return
					}
					b = b[n:]
				}
			}()
			s := &streamReader{conn: client, src: client, buf: make([]byte, streamBuffer)}
			if err := s.readHead(); err != nil {
				t.Fatalf("readHead() = %v", err)
			}
			var got []string
			err := s.readLines(func(line []byte) bool {
				got = append(got, string(line))
				return true
			})
			if err == nil || err.Error() != "EOF" {
				t.Errorf("readLines() = %v, want EOF", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%.2000s", diff)
			}
		})
	}
}

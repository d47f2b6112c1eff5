package stream

import (
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
)

// BenchmarkFrame is the framing of one write of a round: 8 events of
// about 1 KB for one stream, as a WebSocket's through coder/websocket
// (plain, and compressed when the client offers permessage-deflate)
// and as an SSE stream's chunks; the system call is not included.
func BenchmarkFrame(b *testing.B) {
	const events = 8
	hub := newTestHub(nil)
	msgs := make([]*realtime.Message, events)
	for i := range msgs {
		msgs[i] = &realtime.Message{Topic: "posts/*", Action: "update", Record: &underhood.Record{
			Data: map[string]any{"id": fmt.Sprintf("post%011d", i), "title": "A title", "body": strings.Repeat("lorem ipsum ", 80)},
		}}
	}
	for _, tt := range []struct {
		name string
		mode websocket.CompressionMode
		ext  string
	}{
		{"websocket", websocket.CompressionDisabled, ""},
		{"websocket deflate", websocket.CompressionNoContextTakeover, "permessage-deflate"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			server, client := tcpPair(b)
			defer client.Close()
			defer server.Close()
			ws, _ := acceptTestWebSocketWith(b, server, client, tt.mode, tt.ext)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				buf, ok = ws.frame(buf[:0], msgs, hub.encodeWS)
				if !ok {
					b.Fatal("frame: the socket is busy")
				}
				ws.out.release()
			}
			b.SetBytes(int64(len(buf)))
		})
	}
	b.Run("sse", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = buf[:0]
			for _, m := range msgs {
				buf = appendChunk(buf, "id:abcdefghijklmno", m.Encoded("sse", hub.encodeSSE))
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

package stream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
)

// BenchmarkFrame is the framing of one write of a round, 8 events of
// about 1 KB for one stream, without the system call: as the hub frames
// them for a WebSocket and for an SSE stream, and as coder/websocket's
// Write would (plain, and compressed for a client that offers
// permessage-deflate), which is what go.mod's reason for the hub's own
// frames refers to.
func BenchmarkFrame(b *testing.B) {
	const events = 8
	hub := newTestHub(nil)
	msgs := make([]*realtime.Message, events)
	for i := range msgs {
		msgs[i] = &realtime.Message{Topic: "posts/*", Action: "update", Record: &underhood.Record{
			Data: map[string]any{"id": fmt.Sprintf("post%011d", i), "title": "A title", "body": strings.Repeat("lorem ipsum ", 80)},
		}}
	}
	b.Run("websocket", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = buf[:0]
			for _, m := range msgs {
				buf = appendTextFrame(buf, m.Encoded("ws", hub.encodeWS))
			}
		}
	})
	b.Run("sse", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = buf[:0]
			for _, m := range msgs {
				buf = appendChunk(buf, "id:abcdefghijklmno", m.Encoded("sse", hub.encodeSSE))
			}
		}
	})
	for _, tt := range []struct {
		name string
		mode websocket.CompressionMode
		ext  string
	}{
		{"coder/websocket Write", websocket.CompressionDisabled, ""},
		{"coder/websocket Write, deflate", websocket.CompressionNoContextTakeover, "permessage-deflate"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			server, client := tcpPair(b)
			defer client.Close()
			defer server.Close()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Sec-WebSocket-Version", "13")
			r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if tt.ext != "" {
				r.Header.Set("Sec-WebSocket-Extensions", tt.ext)
			}
			// The library writes to nothing, so that only its framing counts.
			c, err := websocket.Accept(&testHijacker{header: http.Header{}, conn: server, out: io.Discard}, r,
				&websocket.AcceptOptions{CompressionMode: tt.mode})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				for _, m := range msgs {
					if err := c.Write(ctx, websocket.MessageText, m.Encoded("ws", hub.encodeWS)); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

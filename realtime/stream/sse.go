package stream

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
)

// The realtime API over Server-Sent Events, as the pocketbase SDK speaks
// it: GET /api/realtime opens the stream and names the client in a
// PB_CONNECT event; the REST adapter's POST /api/realtime sets the
// client's subscriptions.

// ssePing is the comment that keeps an idle stream alive.
var ssePing = []byte(":ping\n\n")

// ServeSSE serves GET /api/realtime: the hub takes the stream over when
// its connection can be taken over (HTTP/1.1), else a goroutine of its
// own writes it for as long as the request lasts.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request) {
	if !h.serveSSE(w, r) {
		h.serveSSEInHandler(w, r)
	}
}

// serveSSE takes over r's connection as an event stream; it reports false
// when the connection cannot be taken over (then nothing was written).
func (h *Hub) serveSSE(w http.ResponseWriter, r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 { // chunked needs HTTP/1.1
		return false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	_ = conn.SetDeadline(time.Time{})
	s := h.newStream(conn, nil)

	// The headers the middleware set (CORS, security, request id) and the
	// stream's own, then PB_CONNECT, in the first write.
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	hdr := w.Header().Clone()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("Transfer-Encoding", "chunked")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hdr.Del("Content-Length")
	_ = hdr.Write(&b)
	b.WriteString("\r\n")
	b.Write(appendChunk(nil, s.idLine, connectEvent(s.client.ID)))
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = conn.Write(b.Bytes())
	_ = conn.SetWriteDeadline(time.Time{})
	if err != nil {
		h.broker.Disconnect(s.client)
		return true
	}
	// The buffered reader of the hijacked request is dropped: a client
	// sends nothing more on an event stream.
	_ = brw
	h.add(s)
	go s.watch()
	return true
}

// connectEvent is the PB_CONNECT event of client id, after its id line.
func connectEvent(id string) []byte {
	b := []byte("\nevent:PB_CONNECT\ndata:")
	b = underhood.AppendJSONString(append(b, `{"clientId":`...), id)
	return append(b, "}\n\n"...)
}

// serveSSEInHandler writes an event stream from the handler's goroutine,
// for a connection that cannot be taken over (HTTP/2).
func (h *Hub) serveSSEInHandler(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	c := h.broker.Connect()
	defer h.broker.Disconnect(c)

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	b := append([]byte("id:"+c.ID), connectEvent(c.ID)...)
	if _, err := w.Write(b); err != nil || rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(h.pingEvery)
	defer ping.Stop()
	idle := time.NewTimer(h.idleAfter)
	defer idle.Stop()
	for {
		select {
		case m := <-c.Messages():
			// Every queued message goes out in one write: a client that
			// falls behind catches up with fewer system calls.
			b = b[:0]
			for m != nil {
				b = append(b, "id:"...)
				b = append(b, c.ID...)
				b = append(b, m.Encoded("sse", h.encodeSSE)...)
				select {
				case m = <-c.Messages():
				default:
					m = nil
				}
			}
			if _, err := w.Write(b); err != nil || rc.Flush() != nil {
				return
			}
		case <-ping.C:
			if _, err := w.Write(ssePing); err != nil || rc.Flush() != nil {
				return
			}
		case <-idle.C:
			if len(c.Subscriptions()) == 0 {
				return
			}
			idle.Reset(h.idleAfter)
		case <-c.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

// encodeSSE renders the part of an event's SSE frame after its id line,
// once for every client of the message. A message of a direct topic
// carries its data as it is.
func (h *Hub) encodeSSE(m *realtime.Message) []byte {
	b := append([]byte("\nevent:"), m.Topic...)
	b = append(b, "\ndata:"...)
	if m.Record == nil {
		b = append(b, m.Data...)
		return append(b, "\n\n"...)
	}
	b = append(b, `{"action":`...)
	b = underhood.AppendJSONString(b, m.Action)
	b = append(b, `,"record":`...)
	b = h.appendRecord(b, m)
	b = appendExpandError(b, m.ExpandError)
	return append(b, "}\n\n"...)
}

// appendExpandError adds the "expandError" key of an event whose record
// comes without the expand the subscription asked for.
func appendExpandError(b []byte, fe *underhood.FieldError) []byte {
	if fe == nil {
		return b
	}
	j, err := json.Marshal(fe)
	if err != nil {
		return b
	}
	b = append(b, `,"expandError":`...)
	return append(b, j...)
}

package stream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
)

// Realtime over WebSocket (our addition; docs/realtime-ws.md): the same
// broker, topics and rules as the SSE API, in JSON text messages on
// GET /api/realtime/ws.
//
//	client → server  {"type":"subscribe","topics":["posts/*"],"token":"…"}
//	                 {"type":"unsubscribe","topics":["posts/*"]}  (no topics: all)
//	                 {"type":"ping"}
//	server → client  {"type":"connected","clientId":"…"}
//	                 {"type":"subscribed","topics":[…]}
//	                 {"type":"event","topic":"posts/*","action":"create","record":{…}}
//	                 {"type":"message","topic":"@oauth2","data":{…}}
//	                 {"type":"error","status":400,"message":"…","data":{…}}
//	                 {"type":"pong"}

// wsRate and wsBurst bound a client's messages per second; a client that
// sends faster is closed with 1008.
const (
	wsRate  = 10
	wsBurst = 30
)

// wsClientMessage is what a client sends.
type wsClientMessage struct {
	Type   string   `json:"type"`
	Topics []string `json:"topics"`
	Token  *string  `json:"token"`
}

// ServeWebSocket serves GET /api/realtime/ws: the hub writes the client's
// events and pings in its rounds, as for an SSE stream, and a goroutine
// reads the client's messages until the connection ends. It returns an
// error, having written nothing, when r is not a WebSocket handshake.
func (h *Hub) ServeWebSocket(w http.ResponseWriter, r *http.Request) error {
	if err := checkHandshake(w, r); err != nil {
		return underhood.Errorf(underhood.EInvalid, "Expected a WebSocket handshake: %s.", err.Error())
	}
	ws, err := acceptWebSocket(w, r, h.readTimeout)
	if err != nil {
		// The handshake was checked: only taking the connection over
		// can fail, and then the client is gone.
		h.log.Debug("realtime: accept websocket", "err", err)
		return nil
	}
	s := h.newStream(ws.conn, ws)
	// The first message, with the client id, goes before any event can.
	hello, _ := json.Marshal(map[string]string{"type": "connected", "clientId": s.client.ID})
	if ws.send(hello) != nil {
		h.broker.Disconnect(s.client)
		return nil
	}
	h.add(s)
	// The client's messages are read by a goroutine of its own and this
	// one ends: an idle client then holds a small stack, not the one the
	// request grew. The request's context ends with this handler; its
	// values (the identity, the request id) stay.
	r = r.WithContext(context.WithoutCancel(r.Context()))
	go func() {
		defer h.broker.Disconnect(s.client) // closes ws through the stream
		// From an Authorization header on the handshake, if any.
		h.readWS(r, ws, s.client, underhood.Identity(r.Context()))
	}()
	return nil
}

// encodeWS renders an event message, once for every client of it; a
// message of a direct topic is {"type":"message","topic","data"}.
func (h *Hub) encodeWS(m *realtime.Message) []byte {
	if m.Record == nil {
		b := append([]byte(`{"type":"message","topic":`), underhood.AppendJSONString(nil, m.Topic)...)
		b = append(b, `,"data":`...)
		b = append(b, m.Data...)
		return append(b, '}')
	}
	b := append([]byte(`{"type":"event","topic":`), underhood.AppendJSONString(nil, m.Topic)...)
	b = append(b, `,"action":`...)
	b = underhood.AppendJSONString(b, m.Action)
	b = append(b, `,"record":`...)
	b = h.appendRecord(b, m)
	b = appendExpandError(b, m.ExpandError)
	return append(b, '}')
}

// readWS reads the client's messages until the connection ends.
func (h *Hub) readWS(r *http.Request, ws *wsConn, c *realtime.Client, identity *underhood.Record) {
	send := func(v any) {
		if b, err := json.Marshal(v); err == nil {
			_ = ws.send(b)
		}
	}
	tokens, last := float64(wsBurst), time.Now()
	for {
		typ, msg, err := ws.read()
		if err != nil {
			closeAfterReadError(ws, err)
			return
		}
		now := time.Now()
		tokens = min(wsBurst, tokens+now.Sub(last).Seconds()*wsRate)
		last = now
		if tokens < 1 {
			ws.close(websocket.StatusPolicyViolation, "too many messages")
			return
		}
		tokens--
		if typ != websocket.MessageText {
			ws.close(websocket.StatusInvalidFramePayloadData, "messages are JSON text")
			return
		}
		if !utf8.Valid(msg) {
			ws.close(websocket.StatusInvalidFramePayloadData, "text is not UTF-8")
			return
		}
		var m wsClientMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			send(h.wsError(r, underhood.Errorf(underhood.EInvalid, "A message is a JSON object with a type.")))
			continue
		}
		switch m.Type {
		case "ping":
			send(map[string]string{"type": "pong"})
		case "subscribe", "unsubscribe":
			who := identity
			if m.Token != nil {
				who, err = h.auth.Identify(r.Context(), *m.Token)
				if err != nil {
					send(h.wsError(r, err))
					continue
				}
			}
			topics := m.Topics
			if m.Type == "unsubscribe" {
				topics = remaining(c.Subscriptions(), m.Topics)
			}
			if err := h.broker.Subscribe(c.ID, who, topics); err != nil {
				send(h.wsError(r, err))
				continue
			}
			if topics == nil {
				topics = []string{}
			}
			send(map[string]any{"type": "subscribed", "topics": topics})
		default:
			send(h.wsError(r, underhood.Errorf(underhood.EInvalid, "Unknown message type %q.", m.Type)))
		}
	}
}

// closeAfterReadError ends a connection whose reading failed. The client
// went away, fell silent or closed it, or broke the protocol: then
// coder/websocket has mostly sent the close frame with the matching code
// itself, but not for every fault (an unmasked frame), and those get
// 1002 here. The stream's close, which follows, sends nothing more.
func closeAfterReadError(ws *wsConn, err error) {
	var ne net.Error
	switch {
	case websocket.CloseStatus(err) != -1: // closed by the client, and answered
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.As(err, &ne):
		// Gone or silent: the stream's close says 1001 if it still can.
	default:
		ws.close(websocket.StatusProtocolError, "protocol error")
	}
}

// remaining returns topics without drop; no drop means none remain.
func remaining(topics, drop []string) []string {
	if len(drop) == 0 {
		return nil
	}
	gone := map[string]bool{}
	for _, t := range drop {
		gone[t] = true
	}
	var out []string
	for _, t := range topics {
		if !gone[t] {
			out = append(out, t)
		}
	}
	return out
}

// wsError is an error message in the shape of the REST errors.
func (h *Hub) wsError(r *http.Request, err error) map[string]any {
	status, message, data := h.errorBody(r, err)
	return map[string]any{"type": "error", "status": status, "message": message, "data": data}
}

package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
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

// Limits of one WebSocket client.
const (
	wsMaxMessage  = 64 << 10 // bytes of one client message
	wsReadTimeout = 60 * time.Second
	// wsRate and wsBurst bound the client's messages per second; a client
	// that sends faster is closed with 1008.
	wsRate  = 10
	wsBurst = 30
)

// wsClientMessage is what a client sends.
type wsClientMessage struct {
	Type   string   `json:"type"`
	Topics []string `json:"topics"`
	Token  *string  `json:"token"`
}

// handleRealtimeWS serves a WebSocket client: the hub writes its events
// and pings in its rounds (streams.go), as for an SSE stream, and a
// goroutine reads the client's messages until the connection ends.
func (a *api) handleRealtimeWS(hub *streamHub, w http.ResponseWriter, r *http.Request) {
	ws, err := upgradeWebSocket(w, r, wsMaxMessage, wsReadTimeout)
	if err != nil {
		a.writeError(w, r, underhood.Errorf(underhood.EInvalid, "Expected a WebSocket handshake: %s.", err.Error()))
		return
	}
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		return ws.WriteMessage(wsText, b) == nil
	}
	s := hub.addWS(ws, func(id string) bool {
		return send(map[string]string{"type": "connected", "clientId": id})
	})
	if s == nil {
		return
	}
	// The client's messages are read by a goroutine of its own and this
	// one ends: an idle client then holds a small stack, not the one the
	// request grew. The request's context ends with this handler; its
	// values (the identity, the request id) stay.
	r = r.WithContext(context.WithoutCancel(r.Context()))
	go func() {
		defer a.realtime.Disconnect(s.client) // closes ws through the stream
		// From an Authorization header on the handshake, if any.
		a.readRealtimeWS(r, ws, s.client, auth.IdentityFrom(r.Context()), send)
	}()
}

// encodeWSEvent renders an event message, once for every client of it;
// a message of a direct topic is {"type":"message","topic","data"}.
func encodeWSEvent(m *realtime.Message) []byte {
	if m.Record == nil {
		b := append([]byte(`{"type":"message","topic":`), underhood.AppendJSONString(nil, m.Topic)...)
		b = append(b, `,"data":`...)
		b = append(b, m.Data...)
		return append(b, '}')
	}
	proj, err := parseFields(m.Fields)
	if err != nil {
		proj = nil
	}
	b := append([]byte(`{"type":"event","topic":`), underhood.AppendJSONString(nil, m.Topic)...)
	b = append(b, `,"action":`...)
	b = underhood.AppendJSONString(b, m.Action)
	b = append(b, `,"record":`...)
	b = encodeRecord(b, m.Record, proj)
	b = appendExpandError(b, m.ExpandError)
	return append(b, '}')
}

// readRealtimeWS reads the client's messages until the connection ends.
func (a *api) readRealtimeWS(r *http.Request, ws *wsConn, c *realtime.Client, identity *underhood.Record, send func(any) bool) {
	tokens, last := float64(wsBurst), time.Now()
	for {
		op, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		tokens = min(wsBurst, tokens+now.Sub(last).Seconds()*wsRate)
		last = now
		if tokens < 1 {
			ws.Close(wsPolicyViolation, "too many messages")
			return
		}
		tokens--
		if op != wsText {
			ws.Close(wsInvalidData, "messages are JSON text")
			return
		}
		var m wsClientMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			send(a.wsError(r, underhood.Errorf(underhood.EInvalid, "A message is a JSON object with a type.")))
			continue
		}
		switch m.Type {
		case "ping":
			send(map[string]string{"type": "pong"})
		case "subscribe", "unsubscribe":
			who := identity
			if m.Token != nil {
				who, err = a.auth.Identify(r.Context(), *m.Token)
				if err != nil {
					send(a.wsError(r, err))
					continue
				}
			}
			topics := m.Topics
			if m.Type == "unsubscribe" {
				topics = remaining(c.Subscriptions(), m.Topics)
			}
			if err := a.realtime.Subscribe(c.ID, who, topics); err != nil {
				send(a.wsError(r, err))
				continue
			}
			if topics == nil {
				topics = []string{}
			}
			send(map[string]any{"type": "subscribed", "topics": topics})
		default:
			send(a.wsError(r, underhood.Errorf(underhood.EInvalid, "Unknown message type %q.", m.Type)))
		}
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
func (a *api) wsError(r *http.Request, err error) map[string]any {
	body := a.errorResponse(r, err)
	return map[string]any{"type": "error", "status": body.Status, "message": body.Message, "data": body.Data}
}

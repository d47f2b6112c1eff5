package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/realtime"
)

// The realtime API over Server-Sent Events, as the pocketbase SDK speaks
// it: GET /api/realtime opens the stream and names the client in a
// PB_CONNECT event; POST /api/realtime sets the client's subscriptions,
// with the caller's token as the subscriber's identity.

// Timings of a realtime stream.
const (
	// realtimePing is how often an idle stream gets a comment line, which
	// keeps proxies from closing it.
	realtimePing = 25 * time.Second
	// realtimeIdle is how long a client may stay without subscriptions.
	realtimeIdle = 5 * time.Minute
)

func (a *api) realtimeRoutes() {
	if a.realtime == nil {
		return
	}
	// A stream is served by the hub (streams.go) when its connection can
	// be taken over (HTTP/1.x, and every WebSocket), else by a handler
	// goroutine of its own.
	hub := newStreamHub(a.realtime, a.log)
	a.mux.HandleFunc("GET /api/realtime", func(w http.ResponseWriter, r *http.Request) {
		if !hub.serve(w, r) {
			a.handleRealtimeConnect(w, r)
		}
	})
	a.handle("POST /api/realtime", a.handleRealtimeSubscribe)
	a.mux.HandleFunc("GET /api/realtime/ws", func(w http.ResponseWriter, r *http.Request) {
		a.handleRealtimeWS(hub, w, r) // realtime_ws.go
	})
}

func (a *api) handleRealtimeConnect(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	c := a.realtime.Connect()
	defer a.realtime.Disconnect(c)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var b []byte
	send := func(name string, data []byte) bool {
		b = b[:0]
		b = append(b, "id:"...)
		b = append(b, c.ID...)
		b = append(b, "\nevent:"...)
		b = append(b, name...)
		b = append(b, "\ndata:"...)
		b = append(b, data...)
		b = append(b, "\n\n"...)
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("PB_CONNECT", append(underhood.AppendJSONString([]byte(`{"clientId":`), c.ID), '}')) {
		return
	}
	ping := time.NewTicker(realtimePing)
	defer ping.Stop()
	idle := time.NewTimer(realtimeIdle)
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
				b = append(b, m.Encoded("sse", encodeSSE)...)
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
			if _, err := w.Write([]byte(":ping\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-idle.C:
			if len(c.Subscriptions()) == 0 {
				return
			}
			idle.Reset(realtimeIdle)
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
func encodeSSE(m *realtime.Message) []byte {
	b := append([]byte("\nevent:"), m.Topic...)
	b = append(b, "\ndata:"...)
	if m.Record == nil {
		b = append(b, m.Data...)
		return append(b, "\n\n"...)
	}
	proj, err := parseFields(m.Fields)
	if err != nil {
		proj = nil
	}
	b = append(b, `{"action":`...)
	b = underhood.AppendJSONString(b, m.Action)
	b = append(b, `,"record":`...)
	b = encodeRecord(b, m.Record, proj)
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

func (a *api) handleRealtimeSubscribe(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	id, _ := body["clientId"].(string)
	var topics []string
	switch v := body["subscriptions"].(type) {
	case []any:
		for _, t := range v {
			if s, ok := t.(string); ok && !bytes.ContainsAny([]byte(s), "\r\n") {
				topics = append(topics, s)
			}
		}
	case nil:
	default:
		return errBadBody()
	}
	if err := a.realtime.Subscribe(id, auth.IdentityFrom(r.Context()), topics); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

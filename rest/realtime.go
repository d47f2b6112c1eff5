package rest

import (
	"bytes"
	"net/http"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/realtime/stream"
)

// The realtime API: GET /api/realtime opens a Server-Sent Events stream,
// as the pocketbase SDK speaks it, and GET /api/realtime/ws a WebSocket
// (docs/realtime-ws.md); both are served by realtime/stream. POST
// /api/realtime sets an SSE client's subscriptions, with the caller's
// token as the subscriber's identity.

// newRealtimeHub returns the hub that serves the realtime streams (routes
// registers its handlers), rendering records and errors as the REST API
// does.
func (a *api) newRealtimeHub() *stream.Hub {
	return stream.NewHub(stream.Config{
		Broker:       a.realtime,
		Auth:         a.auth,
		Log:          a.log,
		AppendRecord: appendRealtimeRecord,
		ErrorBody: func(r *http.Request, err error) (int, string, map[string]any) {
			body := a.errorResponse(r, err)
			return body.Status, body.Message, body.Data
		},
	})
}

// appendRealtimeRecord appends an event's record as the REST API renders
// it, projected to the subscription's fields.
func appendRealtimeRecord(b []byte, m *realtime.Message) []byte {
	proj, err := parseFields(m.Fields)
	if err != nil {
		proj = nil
	}
	return encodeRecord(b, m.Record, proj)
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
	if err := a.realtime.Subscribe(id, underhood.Identity(r.Context()), topics); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/events"
)

// The webhooks API (our addition), for superusers only (events.Webhooks
// decides; see superuser):
//
//	GET    /api/webhooks                                   list
//	POST   /api/webhooks                                   create {name, url, collections, actions, filter, secrets?, paused?}
//	GET    /api/webhooks/{id}                              view
//	PATCH  /api/webhooks/{id}                              change any of those fields
//	DELETE /api/webhooks/{id}                              delete, with its deliveries
//	POST   /api/webhooks/{id}/rotate-secret                new first secret, the old one still valid
//	POST   /api/webhooks/{id}/pause, /resume               stop and restart deliveries
//	GET    /api/webhooks/{id}/deliveries?state=&eventId=   deliveries, newest first
//	GET    /api/webhooks/{id}/deliveries/{deliveryId}      one delivery, its payload and attempts
//	GET    /api/webhooks/{id}/attempts?deliveryId=&eventId= the delivery log, newest first
//	POST   /api/webhooks/{id}/replay {eventId} | {from, to} send events again

// superuser asks the webhooks service whether the caller may use it
// before h reads the request, so that a caller it refuses gets a 401 or
// 403 whatever it sends, never a validation error. Each of the service's
// methods checks the caller again.
func (a *api) superuser(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.webhooks.Authorize(callerOf(r)); err != nil {
			return err
		}
		return h(w, r)
	}
}

func (a *api) handleWebhookList(w http.ResponseWriter, r *http.Request) error {
	list, err := a.webhooks.List(r.Context(), callerOf(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

// readWebhookInput decodes a webhook's JSON body; unknown keys are errors,
// so a typo does not silently leave a field as it was.
func readWebhookInput(r *http.Request) (events.WebhookInput, error) {
	var in events.WebhookInput
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return in, bodyError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, underhood.Errorf(underhood.EInvalid, "Failed to load the submitted data: %s.", err.Error())
	}
	return in, nil
}

func (a *api) handleWebhookCreate(w http.ResponseWriter, r *http.Request) error {
	in, err := readWebhookInput(r)
	if err != nil {
		return err
	}
	h, err := a.webhooks.Create(r.Context(), callerOf(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (a *api) handleWebhookView(w http.ResponseWriter, r *http.Request) error {
	h, err := a.webhooks.Get(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (a *api) handleWebhookUpdate(w http.ResponseWriter, r *http.Request) error {
	in, err := readWebhookInput(r)
	if err != nil {
		return err
	}
	h, err := a.webhooks.Update(r.Context(), callerOf(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (a *api) handleWebhookDelete(w http.ResponseWriter, r *http.Request) error {
	if err := a.webhooks.Delete(r.Context(), callerOf(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) handleWebhookRotate(w http.ResponseWriter, r *http.Request) error {
	h, err := a.webhooks.RotateSecret(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (a *api) handleWebhookPause(paused bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h, err := a.webhooks.Update(r.Context(), callerOf(r), r.PathValue("id"), events.WebhookInput{Paused: &paused})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, h)
	}
}

// listOptions reads page, perPage, state, eventId and deliveryId.
func listOptions(r *http.Request) events.ListOptions {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	perPage, _ := strconv.Atoi(q.Get("perPage"))
	return events.ListOptions{Page: page, PerPage: perPage, State: q.Get("state"), EventID: q.Get("eventId"), DeliveryID: q.Get("deliveryId")}
}

func (a *api) handleWebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	page, err := a.webhooks.Deliveries(r.Context(), callerOf(r), r.PathValue("id"), listOptions(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (a *api) handleWebhookDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := a.webhooks.Delivery(r.Context(), callerOf(r), r.PathValue("id"), r.PathValue("delivery"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (a *api) handleWebhookAttempts(w http.ResponseWriter, r *http.Request) error {
	page, err := a.webhooks.Attempts(r.Context(), callerOf(r), r.PathValue("id"), listOptions(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (a *api) handleWebhookReplay(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	var rp events.Replay
	rp.EventID, _ = body["eventId"].(string)
	for key, t := range map[string]*time.Time{"from": &rp.From, "to": &rp.To} {
		s, _ := body[key].(string)
		if s == "" {
			continue
		}
		v, err := underhood.ParseTime(s)
		if err != nil {
			return underhood.Invalid("Invalid replay range.", map[string]any{key: underhood.FieldError{
				Code: "validation_invalid_datetime", Message: "Must be a datetime."}})
		}
		*t = v
	}
	n, err := a.webhooks.Replay(r.Context(), callerOf(r), r.PathValue("id"), rp)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
}

package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// The delivery log, as the API shows it, and replays.

// Delivery is one event sent (or to be sent) to one webhook.
type Delivery struct {
	ID           string          `json:"id"`
	WebhookID    string          `json:"webhookId"`
	EventID      string          `json:"eventId"`
	State        string          `json:"state"` // pending, delivered, dead
	Attempts     int             `json:"attempts"`
	NextAttempt  string          `json:"nextAttempt"`
	FirstAttempt string          `json:"firstAttempt"`
	LastStatus   int             `json:"lastStatus"`
	LastError    string          `json:"lastError"`
	Replay       bool            `json:"replay"`
	Created      string          `json:"created"`
	Updated      string          `json:"updated"`
	Payload      json.RawMessage `json:"payload,omitempty"`
	Log          []Attempt       `json:"log,omitempty"`
}

// Attempt is one try at a delivery. It has the fields of
// sqlstore.WebhookAttempt, so that one converts to it.
type Attempt struct {
	ID         string `json:"id"`
	DeliveryID string `json:"deliveryId"`
	WebhookID  string `json:"webhookId"`
	EventID    string `json:"eventId"`
	Attempt    int    `json:"attempt"`
	Status     int    `json:"status"` // HTTP status; 0 when no response came
	Error      string `json:"error"`
	LatencyMs  int64  `json:"latencyMs"`
	Response   string `json:"response"` // at most the first KiB of the body
	Created    string `json:"created"`
}

// Page is one page of a list, in PocketBase's list shape.
type Page[T any] struct {
	Page       int `json:"page"`
	PerPage    int `json:"perPage"`
	TotalItems int `json:"totalItems"`
	TotalPages int `json:"totalPages"`
	Items      []T `json:"items"`
}

// ListOptions select a page of a log, newest first.
type ListOptions struct {
	Page, PerPage int
	State         string // deliveries: only this state
	EventID       string // only this event
	DeliveryID    string // attempts: only this delivery
}

func (o *ListOptions) normalize() {
	if o.Page < 1 {
		o.Page = 1
	}
	if o.PerPage <= 0 {
		o.PerPage = 30
	}
	o.PerPage = min(o.PerPage, 500)
}

// deliveryOf returns the delivery that row logs.
func deliveryOf(row sqlstore.WebhookDelivery) Delivery {
	d := Delivery{ID: row.ID, WebhookID: row.WebhookID, EventID: row.EventID, State: row.State, Attempts: row.Attempts,
		NextAttempt: row.NextAttempt, FirstAttempt: row.FirstAttempt, LastStatus: row.LastStatus, LastError: row.LastError,
		Replay: row.Replay, Created: row.Created, Updated: row.Updated}
	if row.Payload != nil {
		d.Payload = json.RawMessage(row.Payload)
	}
	return d
}

// attemptsOf returns the attempts that rows log.
func attemptsOf(rows []sqlstore.WebhookAttempt) []Attempt {
	out := make([]Attempt, len(rows))
	for i, a := range rows {
		out[i] = Attempt(a)
	}
	return out
}

// Deliveries lists a webhook's deliveries, newest first, to a superuser.
func (w *Webhooks) Deliveries(ctx context.Context, caller *underhood.Record, webhookID string, o ListOptions) (*Page[Delivery], error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	o.normalize()
	if o.State != "" && o.State != StatePending && o.State != StateDelivered && o.State != StateDead {
		return nil, underhood.Errorf(underhood.EInvalid, "Unknown delivery state %q.", o.State)
	}
	res := &Page[Delivery]{Page: o.Page, PerPage: o.PerPage, Items: []Delivery{}}
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		if _, err := w.get(ctx, q, webhookID); err != nil {
			return err
		}
		total, rows, err := w.store.DeliveryPage(ctx, q, webhookID, sqlstore.DeliveryFilter{State: o.State, EventID: o.EventID},
			o.PerPage, (o.Page-1)*o.PerPage)
		if err != nil {
			return err
		}
		res.TotalItems = total
		for _, row := range rows {
			res.Items = append(res.Items, deliveryOf(row))
		}
		return nil
	})
	if err != nil {
		return nil, wrapInternal("list deliveries", err)
	}
	res.TotalPages = (res.TotalItems + o.PerPage - 1) / o.PerPage
	return res, nil
}

// Delivery returns to a superuser one delivery with its payload and
// every attempt.
func (w *Webhooks) Delivery(ctx context.Context, caller *underhood.Record, webhookID, id string) (*Delivery, error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	var d Delivery
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		row, err := w.store.DeliveryByID(ctx, q, webhookID, id)
		if errors.Is(err, sql.ErrNoRows) {
			return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
		}
		if err != nil {
			return err
		}
		d = deliveryOf(row)
		attempts, err := w.store.DeliveryAttempts(ctx, q, id, 1000)
		d.Log = attemptsOf(attempts)
		return err
	})
	if err != nil {
		return nil, wrapInternal("read delivery", err)
	}
	return &d, nil
}

// Attempts lists a webhook's attempts, newest first, to a superuser.
func (w *Webhooks) Attempts(ctx context.Context, caller *underhood.Record, webhookID string, o ListOptions) (*Page[Attempt], error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	o.normalize()
	res := &Page[Attempt]{Page: o.Page, PerPage: o.PerPage}
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		if _, err := w.get(ctx, q, webhookID); err != nil {
			return err
		}
		total, rows, err := w.store.AttemptPage(ctx, q, webhookID, sqlstore.AttemptFilter{DeliveryID: o.DeliveryID, EventID: o.EventID},
			o.PerPage, (o.Page-1)*o.PerPage)
		if err != nil {
			return err
		}
		res.TotalItems, res.Items = total, attemptsOf(rows)
		return nil
	})
	if err != nil {
		return nil, wrapInternal("list attempts", err)
	}
	res.TotalPages = (res.TotalItems + o.PerPage - 1) / o.PerPage
	return res, nil
}

// Replay selects events to send to a webhook again: one event by id,
// whether or not it matches the webhook, or every event of a time range
// that matches it, as far as the outbox still keeps them.
type Replay struct {
	EventID  string    `json:"eventId"`
	From, To time.Time `json:"-"`
}

// Replay makes, for a superuser, new deliveries of the events r selects
// for webhook id, with the events' own ids (so receivers can
// deduplicate), and returns how many it made.
func (w *Webhooks) Replay(ctx context.Context, caller *underhood.Record, id string, r Replay) (int, error) {
	h, err := w.Get(ctx, caller, id)
	if err != nil {
		return 0, err
	}
	var list []delivery
	switch {
	case r.EventID != "":
		d, err := w.replayOne(ctx, h, r.EventID)
		if err != nil {
			return 0, err
		}
		list = append(list, d)
	case !r.From.IsZero() && !r.To.IsZero():
		if r.To.Before(r.From) {
			return 0, underhood.Errorf(underhood.EInvalid, "The end of the range is before its start.")
		}
		if list, err = w.replayRange(ctx, h, r.From, r.To); err != nil {
			return 0, err
		}
	default:
		return 0, underhood.Errorf(underhood.EInvalid, "Give an eventId, or from and to.")
	}
	if len(list) == 0 {
		return 0, nil
	}
	err = w.store.Write(ctx, func(q sqlstore.Querier) error { return w.insertDeliveries(ctx, q, list, true) })
	if err != nil {
		return 0, wrapInternal("replay", err)
	}
	w.wake()
	return len(list), nil
}

// replayOne finds event id in the outbox or, once retention dropped it
// there, in an earlier delivery to the same webhook.
func (w *Webhooks) replayOne(ctx context.Context, h *Webhook, id string) (delivery, error) {
	e, err := w.records.OutboxEventByID(ctx, id)
	if err == nil {
		return delivery{ID: underhood.NewID(), WebhookID: h.ID, EventID: e.ID, Position: e.Position, Payload: e.JSON()}, nil
	}
	if underhood.ErrorCode(err) != underhood.ENotFound {
		return delivery{}, err
	}
	var (
		payload []byte
		pos     int64
	)
	err = w.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		payload, pos, err = w.store.LatestDelivery(ctx, q, h.ID, id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return delivery{}, underhood.Errorf(underhood.ENotFound, "The event %q is not kept any more.", id)
	}
	if err != nil {
		return delivery{}, err
	}
	return delivery{ID: underhood.NewID(), WebhookID: h.ID, EventID: id, Position: pos, Payload: payload}, nil
}

func (w *Webhooks) replayRange(ctx context.Context, h *Webhook, from, to time.Time) ([]delivery, error) {
	var out []delivery
	after := int64(0)
	for {
		list, err := w.records.OutboxBetween(ctx, from, to, after, 500)
		if err != nil {
			return nil, err
		}
		for i := range list {
			e := &list[i]
			if !h.matches(e) {
				continue
			}
			if h.Filter != "" {
				rec, err := w.records.DecodeEventRecord(e)
				if err != nil || !w.filterMatches(ctx, h, rec) {
					continue
				}
			}
			if len(out) >= maxReplay {
				return nil, underhood.Errorf(underhood.EInvalid, "The range holds more than %d events; replay a shorter one.", maxReplay)
			}
			out = append(out, delivery{ID: underhood.NewID(), WebhookID: h.ID, EventID: e.ID, Position: e.Position, Payload: e.JSON()})
		}
		if len(list) < 500 {
			return out, nil
		}
		after = list[len(list)-1].Position
	}
}

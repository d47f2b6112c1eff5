package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// Webhooks send the outbox's events to HTTP endpoints that superusers
// register: each event matching a webhook's collections, actions and
// filter becomes a delivery, committed with the relay's position (so none
// is lost or made up by a crash), then POSTed, signed (sign.go), until the
// endpoint answers 2xx, retried with exponential backoff and jitter for at
// least a day, then dead-lettered. Every attempt is logged.

// Webhook is one registered endpoint.
type Webhook struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	URL         string   `json:"url"`
	Collections []string `json:"collections"` // names or ids; empty = all
	Actions     []string `json:"actions"`     // create, update, delete; empty = all
	Filter      string   `json:"filter"`      // filter language, on the record; "" = all
	Secrets     []string `json:"secrets"`     // one or two (rotation): every one signs
	Paused      bool     `json:"paused"`
	Created     string   `json:"created"`
	Updated     string   `json:"updated"`

	// start is the outbox position when the webhook was created: it gets
	// the events after it.
	start int64
}

// webhookOf returns the webhook that row stores.
func webhookOf(row sqlstore.Webhook) *Webhook {
	return &Webhook{ID: row.ID, Name: row.Name, URL: row.URL, Collections: nonNil(row.Collections), Actions: nonNil(row.Actions),
		Filter: row.Filter, Secrets: nonNil(row.Secrets), Paused: row.Paused, Created: row.Created, Updated: row.Updated, start: row.Start}
}

// row returns h as the store keeps it.
func (h *Webhook) row() *sqlstore.Webhook {
	return &sqlstore.Webhook{ID: h.ID, Name: h.Name, URL: h.URL, Collections: h.Collections, Actions: h.Actions,
		Filter: h.Filter, Secrets: h.Secrets, Paused: h.Paused, Start: h.start, Created: h.Created, Updated: h.Updated}
}

// WebhookOptions tune delivery; zero values take the defaults.
type WebhookOptions struct {
	// Client sends the requests. The default is an outbound client that
	// refuses internal addresses and follows no redirect.
	Client *http.Client
	// Timeout bounds one attempt (default 15 seconds).
	Timeout time.Duration
	// RetryBase is the delay after the first failed attempt, doubled after
	// each further failure up to RetryMax (defaults 5 seconds and 4 hours),
	// each with ±25% jitter.
	RetryBase, RetryMax time.Duration
	// GiveUpAfter is how long after its first attempt a delivery that keeps
	// failing is dead-lettered (default 24 hours).
	GiveUpAfter time.Duration
	// Concurrency bounds the attempts in flight (default 32), and
	// PerWebhook those to one webhook (default 8).
	Concurrency, PerWebhook int
	// KeepLog is how long finished deliveries and attempts are kept
	// (default 7 days).
	KeepLog time.Duration
}

// Defaults of WebhookOptions.
const (
	defaultAttemptTimeout = 15 * time.Second
	defaultRetryBase      = 5 * time.Second
	defaultRetryMax       = 4 * time.Hour
	DefaultGiveUpAfter    = 24 * time.Hour
	defaultConcurrency    = 32
	defaultPerWebhook     = 8
	defaultKeepLog        = 7 * 24 * time.Hour
	// maxExcerpt is how much of a response body an attempt keeps.
	maxExcerpt = 1024
	// maxReplay bounds the deliveries one replay request makes.
	maxReplay = 10000
	// maxWebhooks bounds how many webhooks may be registered.
	maxWebhooks = 1000
)

// Delivery states.
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateDead      = "dead"
)

// Webhooks keeps the webhooks and delivers their events. It is the relay
// consumer named "webhooks".
type Webhooks struct {
	records *record.Service
	store   *sqlstore.Store
	log     *slog.Logger
	opts    WebhookOptions

	kick     chan struct{}
	mu       sync.Mutex
	inflight map[string]int // webhook id → attempts in flight
	running  int

	stopLoop  context.CancelFunc // stops starting attempts
	cancel    context.CancelFunc // cuts the attempts in flight short
	loopDone  chan struct{}
	inFlight  sync.WaitGroup
	closeOnce sync.Once
}

// NewWebhooks creates the webhook tables in store when missing and starts
// the delivery loop; Close stops it. Events reach it once it is a consumer
// of a Relay. records checks the webhooks' collections and filters.
func NewWebhooks(ctx context.Context, store *sqlstore.Store, records *record.Service, log *slog.Logger, opts WebhookOptions) (*Webhooks, error) {
	if log == nil {
		log = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultAttemptTimeout
	}
	if opts.Client == nil {
		opts.Client = outbound.New(outbound.Options{MaxRedirects: -1, Timeout: opts.Timeout})
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = defaultRetryBase
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = defaultRetryMax
	}
	if opts.GiveUpAfter <= 0 {
		opts.GiveUpAfter = DefaultGiveUpAfter
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultConcurrency
	}
	if opts.PerWebhook <= 0 {
		opts.PerWebhook = defaultPerWebhook
	}
	if opts.KeepLog <= 0 {
		opts.KeepLog = defaultKeepLog
	}
	w := &Webhooks{records: records, store: store, log: log, opts: opts,
		kick: make(chan struct{}, 1), inflight: map[string]int{}}
	if err := w.migrate(ctx); err != nil {
		return nil, err
	}
	attemptCtx, cancel := context.WithCancel(context.Background())
	loopCtx, stopLoop := context.WithCancel(attemptCtx)
	w.cancel, w.stopLoop, w.loopDone = cancel, stopLoop, make(chan struct{})
	go func() {
		defer close(w.loopDone)
		w.deliverLoop(loopCtx, attemptCtx)
	}()
	return w, nil
}

// closeGrace is how long Close lets the attempts in flight finish.
const closeGrace = 5 * time.Second

// Close stops delivering. Attempts in flight get a few seconds to finish;
// those cut short are made again after a restart.
func (w *Webhooks) Close() {
	w.closeOnce.Do(func() {
		w.stopLoop()
		<-w.loopDone
		done := make(chan struct{})
		go func() { w.inFlight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeGrace):
			w.cancel()
			<-done
		}
		w.cancel()
	})
}

func (w *Webhooks) migrate(ctx context.Context) error {
	return w.store.Write(ctx, func(q sqlstore.Querier) error {
		if err := w.store.CreateWebhookTables(ctx, q); err != nil {
			return err
		}
		if !w.store.Shared() {
			// One process owns a database no other shares: the attempts it
			// had in flight when it stopped are not running anywhere.
			return w.store.ReleaseDeliveryLeases(ctx, q)
		}
		return nil
	})
}

// WebhookInput is what a superuser sends to create or change a webhook;
// nil fields are left as they are (or defaulted on create).
type WebhookInput struct {
	Name        *string   `json:"name"`
	URL         *string   `json:"url"`
	Collections *[]string `json:"collections"`
	Actions     *[]string `json:"actions"`
	Filter      *string   `json:"filter"`
	Secrets     *[]string `json:"secrets"`
	Paused      *bool     `json:"paused"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Authorize refuses every caller but a superuser: guests with
// EUnauthorized, others with EForbidden. Every method of the webhooks API
// checks its caller with it; an adapter may ask first, before it reads a
// request.
func (w *Webhooks) Authorize(caller *underhood.Record) error {
	return underhood.RequireSuperuser(caller)
}

// List returns every webhook, oldest first, to a superuser.
func (w *Webhooks) List(ctx context.Context, caller *underhood.Record) ([]*Webhook, error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	return w.list(ctx)
}

func (w *Webhooks) list(ctx context.Context) ([]*Webhook, error) {
	var rows []sqlstore.Webhook
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		rows, err = w.store.ListWebhooks(ctx, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*Webhook, len(rows))
	for i, row := range rows {
		out[i] = webhookOf(row)
	}
	return out, nil
}

// Get returns one webhook to a superuser, ENotFound when there is none.
func (w *Webhooks) Get(ctx context.Context, caller *underhood.Record, id string) (*Webhook, error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	var h *Webhook
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		h, err = w.get(ctx, q, id)
		return err
	})
	return h, err
}

func (w *Webhooks) get(ctx context.Context, q sqlstore.Querier, id string) (*Webhook, error) {
	row, err := w.store.WebhookByID(ctx, q, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
	}
	if err != nil {
		return nil, err
	}
	return webhookOf(row), nil
}

// Create registers a webhook for a superuser; it gets the events
// committed from now on. Without secrets it gets a fresh one.
func (w *Webhooks) Create(ctx context.Context, caller *underhood.Record, in WebhookInput) (*Webhook, error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	ts := now()
	h := &Webhook{ID: underhood.NewID(), Collections: []string{}, Actions: []string{}, Created: ts, Updated: ts}
	if err := w.apply(h, in); err != nil {
		return nil, err
	}
	if len(h.Secrets) == 0 {
		h.Secrets = []string{NewSecret()}
	}
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		n, err := w.store.CountWebhooks(ctx, q)
		if err != nil {
			return err
		}
		if n >= maxWebhooks {
			return underhood.Errorf(underhood.EInvalid, "At most %d webhooks can be registered.", maxWebhooks)
		}
		// The webhook starts at the newest event, read in this writing
		// transaction: no event commits between the two.
		row := h.row()
		if err := w.store.InsertWebhook(ctx, q, row); err != nil {
			return err
		}
		h.start = row.Start
		return nil
	})
	if err != nil {
		return nil, wrapInternal("create webhook", err)
	}
	return h, nil
}

// Update changes, for a superuser, the fields of in that are set.
func (w *Webhooks) Update(ctx context.Context, caller *underhood.Record, id string, in WebhookInput) (*Webhook, error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	var h *Webhook
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		var err error
		if h, err = w.get(ctx, q, id); err != nil {
			return err
		}
		if err := w.apply(h, in); err != nil {
			return err
		}
		return w.save(ctx, q, h)
	})
	if err != nil {
		return nil, wrapInternal("update webhook", err)
	}
	w.wake()
	return h, nil
}

func (w *Webhooks) save(ctx context.Context, q sqlstore.Querier, h *Webhook) error {
	h.Updated = now()
	return w.store.UpdateWebhook(ctx, q, h.row())
}

// RotateSecret makes, for a superuser, a new secret the webhook's first
// and keeps the previous first one valid beside it, so a receiver can
// switch over; the secret before that stops being used.
func (w *Webhooks) RotateSecret(ctx context.Context, caller *underhood.Record, id string) (*Webhook, error) {
	if err := w.Authorize(caller); err != nil {
		return nil, err
	}
	var h *Webhook
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		var err error
		if h, err = w.get(ctx, q, id); err != nil {
			return err
		}
		keep := h.Secrets
		if len(keep) > 1 {
			keep = keep[:1]
		}
		h.Secrets = append([]string{NewSecret()}, keep...)
		return w.save(ctx, q, h)
	})
	if err != nil {
		return nil, wrapInternal("rotate webhook secret", err)
	}
	return h, nil
}

// Delete removes, for a superuser, a webhook with its deliveries and
// their log.
func (w *Webhooks) Delete(ctx context.Context, caller *underhood.Record, id string) error {
	if err := w.Authorize(caller); err != nil {
		return err
	}
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		if _, err := w.get(ctx, q, id); err != nil {
			return err
		}
		return w.store.DeleteWebhook(ctx, q, id)
	})
	return wrapInternal("delete webhook", err)
}

// apply validates in and sets it on h.
func (w *Webhooks) apply(h *Webhook, in WebhookInput) error {
	errs := map[string]any{}
	bad := func(field, msg string) {
		errs[field] = underhood.FieldError{Code: "validation_invalid_value", Message: msg}
	}
	if in.Name != nil {
		h.Name = strings.TrimSpace(*in.Name)
	}
	if len(h.Name) > 200 {
		bad("name", "Must be at most 200 characters.")
	}
	if in.URL != nil {
		h.URL = strings.TrimSpace(*in.URL)
	}
	if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(h.URL) > 2000 {
		bad("url", "Must be an http or https URL without credentials.")
	}
	if in.Collections != nil {
		h.Collections = nonNil(*in.Collections)
	}
	var colls []*underhood.Collection
	for _, name := range h.Collections {
		c, err := w.records.Collection(name)
		if err != nil {
			bad("collections", fmt.Sprintf("Unknown collection %q.", name))
			continue
		}
		colls = append(colls, c)
	}
	if in.Actions != nil {
		h.Actions = nonNil(*in.Actions)
	}
	for _, a := range h.Actions {
		if a != record.ActionCreate && a != record.ActionUpdate && a != record.ActionDelete {
			bad("actions", "Actions are create, update and delete.")
		}
	}
	if in.Filter != nil {
		h.Filter = strings.TrimSpace(*in.Filter)
	}
	if h.Filter != "" {
		if len(colls) == 0 {
			bad("filter", "A filter needs the collections it applies to.")
		}
		for _, c := range colls {
			if err := w.records.CheckFilter(w.records.SystemRequest(), c, h.Filter); err != nil {
				bad("filter", fmt.Sprintf("Invalid filter for %s: %s", c.Name, underhood.ErrorMessage(err)))
				break
			}
		}
	}
	if in.Secrets != nil {
		h.Secrets = nonNil(*in.Secrets)
		if len(h.Secrets) > 2 {
			bad("secrets", "At most two secrets are valid at a time.")
		}
		if len(h.Secrets) == 0 {
			bad("secrets", "A webhook needs a secret.")
		}
		for _, s := range h.Secrets {
			if _, err := secretKey(s); err != nil {
				bad("secrets", "Invalid secret: "+err.Error()+".")
			}
		}
	}
	if in.Paused != nil {
		h.Paused = *in.Paused
	}
	if len(errs) > 0 {
		return underhood.Invalid("Invalid webhook.", errs)
	}
	return nil
}

// wrapInternal wraps err with op unless it is an error for the client.
func wrapInternal(op string, err error) error {
	if err == nil {
		return nil
	}
	var ue *underhood.Error
	if errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// matches reports whether e is for h, without its filter.
func (h *Webhook) matches(e *record.OutboxEvent) bool {
	if len(h.Actions) > 0 && !contains(h.Actions, e.Action) {
		return false
	}
	if len(h.Collections) == 0 {
		return true
	}
	for _, c := range h.Collections {
		if c == e.CollectionID || strings.EqualFold(c, e.Collection) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

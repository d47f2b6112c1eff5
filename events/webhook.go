package events

import (
	"context"
	"database/sql"
	"encoding/json"
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

// Tables of the webhooks.
const (
	webhookTable  = "_webhooks"
	deliveryTable = "_webhookDeliveries"
	attemptTable  = "_webhookAttempts"
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

// NewWebhooks creates the webhook tables when missing and starts the
// delivery loop; Close stops it. Events reach it once it is a consumer of
// a Relay.
func NewWebhooks(ctx context.Context, records *record.Service, log *slog.Logger, opts WebhookOptions) (*Webhooks, error) {
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
	w := &Webhooks{records: records, store: records.Store(), log: log, opts: opts,
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
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + webhookTable + ` (
			id          TEXT PRIMARY KEY NOT NULL,
			name        TEXT NOT NULL,
			url         TEXT NOT NULL,
			collections TEXT NOT NULL,
			actions     TEXT NOT NULL,
			filter      TEXT NOT NULL,
			secrets     TEXT NOT NULL,
			paused      BOOLEAN NOT NULL,
			start       BIGINT NOT NULL,
			created     TEXT NOT NULL,
			updated     TEXT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS ` + deliveryTable + ` (
			id           TEXT PRIMARY KEY NOT NULL,
			webhookId    TEXT NOT NULL,
			eventId      TEXT NOT NULL,
			position     BIGINT NOT NULL,
			payload      TEXT NOT NULL,
			state        TEXT NOT NULL,
			attempts     INTEGER NOT NULL,
			nextAttempt  TEXT NOT NULL,
			firstAttempt TEXT NOT NULL,
			leaseUntil   TEXT NOT NULL,
			lastStatus   INTEGER NOT NULL,
			lastError    TEXT NOT NULL,
			replay       BOOLEAN NOT NULL,
			created      TEXT NOT NULL,
			updated      TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_due ON ` + deliveryTable + ` (state, nextAttempt)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_hook ON ` + deliveryTable + ` (webhookId, created)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_event ON ` + deliveryTable + ` (eventId)`,
		`CREATE TABLE IF NOT EXISTS ` + attemptTable + ` (
			id         TEXT PRIMARY KEY NOT NULL,
			deliveryId TEXT NOT NULL,
			webhookId  TEXT NOT NULL,
			eventId    TEXT NOT NULL,
			attempt    INTEGER NOT NULL,
			status     INTEGER NOT NULL,
			error      TEXT NOT NULL,
			latencyMs  INTEGER NOT NULL,
			response   TEXT NOT NULL,
			created    TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_attempts_hook ON ` + attemptTable + ` (webhookId, created)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_attempts_delivery ON ` + attemptTable + ` (deliveryId)`,
	}
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		for _, st := range stmts {
			if _, err := q.ExecContext(ctx, st); err != nil {
				return err
			}
		}
		if w.store.Dialect().Name() == "sqlite" {
			// One process owns an SQLite database: attempts it had in flight
			// when it stopped are not running anywhere.
			_, err := q.ExecContext(ctx, `UPDATE `+deliveryTable+` SET leaseUntil = '' WHERE state = 'pending' AND leaseUntil != ''`)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create webhook tables: %w", err)
	}
	return nil
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

const webhookColumns = `id, name, url, collections, actions, filter, secrets, paused, start, created, updated`

func scanWebhook(sc interface{ Scan(...any) error }) (*Webhook, error) {
	var (
		h                      Webhook
		colls, actions, secret string
	)
	if err := sc.Scan(&h.ID, &h.Name, &h.URL, &colls, &actions, &h.Filter, &secret, &h.Paused, &h.start, &h.Created, &h.Updated); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(colls), &h.Collections)
	_ = json.Unmarshal([]byte(actions), &h.Actions)
	_ = json.Unmarshal([]byte(secret), &h.Secrets)
	h.Collections, h.Actions, h.Secrets = nonNil(h.Collections), nonNil(h.Actions), nonNil(h.Secrets)
	return &h, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// List returns every webhook, oldest first.
func (w *Webhooks) List(ctx context.Context) ([]*Webhook, error) {
	var out []*Webhook
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		out, err = listWebhooks(ctx, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

func listWebhooks(ctx context.Context, q sqlstore.Querier) ([]*Webhook, error) {
	out := []*Webhook{}
	err := sqlstore.ScanRows(ctx, q, `SELECT `+webhookColumns+` FROM `+webhookTable+` ORDER BY created, id`, nil, func(rows *sql.Rows) error {
		h, err := scanWebhook(rows)
		if err != nil {
			return err
		}
		out = append(out, h)
		return nil
	})
	return out, err
}

// Get returns one webhook, ENotFound when there is none.
func (w *Webhooks) Get(ctx context.Context, id string) (*Webhook, error) {
	var h *Webhook
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		h, err = w.get(ctx, q, id)
		return err
	})
	return h, err
}

func (w *Webhooks) get(ctx context.Context, q sqlstore.Querier, id string) (*Webhook, error) {
	h, err := scanWebhook(q.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM `+webhookTable+` WHERE id = `+w.p(1), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook: %w", err)
	}
	return h, nil
}

func (w *Webhooks) p(n int) string { return w.store.Dialect().Placeholder(n) }

// Create registers a webhook; it gets the events committed from now on.
// Without secrets it gets a fresh one.
func (w *Webhooks) Create(ctx context.Context, in WebhookInput) (*Webhook, error) {
	ts := now()
	h := &Webhook{ID: underhood.NewID(), Collections: []string{}, Actions: []string{}, Created: ts, Updated: ts}
	if err := w.apply(h, in); err != nil {
		return nil, err
	}
	if len(h.Secrets) == 0 {
		h.Secrets = []string{NewSecret()}
	}
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+webhookTable).Scan(&n); err != nil {
			return err
		}
		if n >= maxWebhooks {
			return underhood.Errorf(underhood.EInvalid, "At most %d webhooks can be registered.", maxWebhooks)
		}
		// The start is read in the writing transaction: no event commits
		// between it and the webhook.
		if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM `+record.OutboxTable).Scan(&h.start); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO `+webhookTable+` (`+webhookColumns+`) VALUES (`+
			w.p(1)+`, `+w.p(2)+`, `+w.p(3)+`, `+w.p(4)+`, `+w.p(5)+`, `+w.p(6)+`, `+w.p(7)+`, `+w.p(8)+`, `+w.p(9)+`, `+w.p(10)+`, `+w.p(11)+`)`,
			h.ID, h.Name, h.URL, jsonList(h.Collections), jsonList(h.Actions), h.Filter, jsonList(h.Secrets), h.Paused, h.start, h.Created, h.Updated)
		return err
	})
	if err != nil {
		return nil, wrapInternal("create webhook", err)
	}
	return h, nil
}

// Update changes the fields of in that are set.
func (w *Webhooks) Update(ctx context.Context, id string, in WebhookInput) (*Webhook, error) {
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
	_, err := q.ExecContext(ctx, `UPDATE `+webhookTable+` SET name = `+w.p(1)+`, url = `+w.p(2)+`, collections = `+w.p(3)+
		`, actions = `+w.p(4)+`, filter = `+w.p(5)+`, secrets = `+w.p(6)+`, paused = `+w.p(7)+`, updated = `+w.p(8)+` WHERE id = `+w.p(9),
		h.Name, h.URL, jsonList(h.Collections), jsonList(h.Actions), h.Filter, jsonList(h.Secrets), h.Paused, h.Updated, h.ID)
	return err
}

// RotateSecret makes a new secret the webhook's first and keeps the
// previous first one valid beside it, so a receiver can switch over; the
// secret before that stops being used.
func (w *Webhooks) RotateSecret(ctx context.Context, id string) (*Webhook, error) {
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

// Delete removes a webhook with its deliveries and their log.
func (w *Webhooks) Delete(ctx context.Context, id string) error {
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		if _, err := w.get(ctx, q, id); err != nil {
			return err
		}
		for _, t := range []string{attemptTable, deliveryTable} {
			if _, err := q.ExecContext(ctx, `DELETE FROM `+t+` WHERE webhookId = `+w.p(1), id); err != nil {
				return err
			}
		}
		_, err := q.ExecContext(ctx, `DELETE FROM `+webhookTable+` WHERE id = `+w.p(1), id)
		return err
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

func jsonList(s []string) string {
	b, _ := json.Marshal(nonNil(s))
	return string(b)
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

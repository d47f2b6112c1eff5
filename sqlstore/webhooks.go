package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
)

// This file holds the statements of the webhooks' tables, which package
// events owns: _webhooks (the endpoints), _webhookDeliveries (one event
// to send to one webhook, until it is delivered or dead) and
// _webhookAttempts (the log of every try). Times are stored as
// underhood.FormatTime text, which sorts as the times do; an empty
// leaseUntil or nextAttempt is before any time.

// Webhook is a row of _webhooks.
type Webhook struct {
	ID          string
	Name        string
	URL         string
	Collections []string // stored as a JSON array
	Actions     []string // stored as a JSON array
	Filter      string
	Secrets     []string // stored as a JSON array
	Paused      bool
	Start       int64 // the outbox position when it was created
	Created     string
	Updated     string
}

// NewDelivery is an event to send to a webhook, as it is queued.
type NewDelivery struct {
	ID        string
	WebhookID string
	EventID   string
	Position  int64 // the event's
	Payload   []byte
}

// DueDelivery is a pending delivery whose attempt is due, with what
// sending it takes from its webhook.
type DueDelivery struct {
	ID           string
	WebhookID    string
	EventID      string
	Position     int64
	Payload      []byte
	Attempts     int
	FirstAttempt string
	URL          string   // the webhook's
	Secrets      []string // the webhook's
}

// WebhookDelivery is a row of _webhookDeliveries as the log shows it.
type WebhookDelivery struct {
	ID           string
	WebhookID    string
	EventID      string
	State        string
	Attempts     int
	NextAttempt  string
	FirstAttempt string
	LastStatus   int
	LastError    string
	Replay       bool
	Created      string
	Updated      string
	Payload      []byte // read by DeliveryByID only
}

// WebhookAttempt is a row of _webhookAttempts: one try at a delivery.
type WebhookAttempt struct {
	ID         string
	DeliveryID string
	WebhookID  string
	EventID    string
	Attempt    int
	Status     int // HTTP status; 0 when no response came
	Error      string
	LatencyMs  int64
	Response   string
	Created    string
}

// DeliveryFilter selects deliveries of a webhook; empty fields select all.
type DeliveryFilter struct {
	State   string
	EventID string
}

// AttemptFilter selects attempts of a webhook; empty fields select all.
type AttemptFilter struct {
	DeliveryID string
	EventID    string
}

// CreateWebhookTables creates the webhooks' tables and indexes when they
// are missing.
func (s *Store) CreateWebhookTables(ctx context.Context, q Querier) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS _webhooks (
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
		`CREATE TABLE IF NOT EXISTS _webhookDeliveries (
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
		`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_due ON _webhookDeliveries (state, nextAttempt)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_hook ON _webhookDeliveries (webhookId, created)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_event ON _webhookDeliveries (eventId)`,
		`CREATE TABLE IF NOT EXISTS _webhookAttempts (
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
		`CREATE INDEX IF NOT EXISTS idx_webhook_attempts_hook ON _webhookAttempts (webhookId, created)`,
		`CREATE INDEX IF NOT EXISTS idx_webhook_attempts_delivery ON _webhookAttempts (deliveryId)`,
	}
	for _, st := range stmts {
		if _, err := q.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("create webhook tables: %w", err)
		}
	}
	return nil
}

// ReleaseDeliveryLeases ends the lease of every pending delivery, for a
// process that knows no attempt runs anywhere else.
func (s *Store) ReleaseDeliveryLeases(ctx context.Context, q Querier) error {
	_, err := q.ExecContext(ctx, `UPDATE _webhookDeliveries SET leaseUntil = '' WHERE state = 'pending' AND leaseUntil != ''`)
	if err != nil {
		return fmt.Errorf("release delivery leases: %w", err)
	}
	return nil
}

const webhookColumns = `id, name, url, collections, actions, filter, secrets, paused, start, created, updated`

func scanWebhook(sc interface{ Scan(...any) error }) (Webhook, error) {
	var (
		h                       Webhook
		colls, actions, secrets string
	)
	if err := sc.Scan(&h.ID, &h.Name, &h.URL, &colls, &actions, &h.Filter, &secrets, &h.Paused, &h.Start, &h.Created, &h.Updated); err != nil {
		return Webhook{}, err
	}
	h.Collections, h.Actions, h.Secrets = decodeList(colls), decodeList(actions), decodeList(secrets)
	return h, nil
}

// decodeList reads a stored JSON array of strings; what is not one reads
// as an empty list.
func decodeList(s string) []string {
	var out []string
	_ = json.Unmarshal([]byte(s), &out)
	return out
}

// encodeList stores list as a JSON array; nil is stored as [].
func encodeList(list []string) string {
	if list == nil {
		return "[]"
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// ListWebhooks returns every webhook, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, q Querier) ([]Webhook, error) {
	out := []Webhook{}
	err := ScanRows(ctx, q, `SELECT `+webhookColumns+` FROM _webhooks ORDER BY created, id`, nil, func(rows *sql.Rows) error {
		h, err := scanWebhook(rows)
		if err != nil {
			return err
		}
		out = append(out, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// WebhookByID returns the webhook id; an error that is sql.ErrNoRows
// (errors.Is) when there is none.
func (s *Store) WebhookByID(ctx context.Context, q Querier, id string) (Webhook, error) {
	h, err := scanWebhook(q.QueryRowContext(ctx, s.numbered(`SELECT `+webhookColumns+` FROM _webhooks WHERE id = $1`), id))
	if err != nil {
		return Webhook{}, fmt.Errorf("read webhook %s: %w", id, err)
	}
	return h, nil
}

// CountWebhooks returns how many webhooks there are.
func (s *Store) CountWebhooks(ctx context.Context, q Querier) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM _webhooks`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count webhooks: %w", err)
	}
	return n, nil
}

// InsertWebhook stores a new webhook starting at the outbox's newest
// event, which it sets as h.Start. It reads that position in q's
// transaction, so in a Write no event commits between the two: the
// webhook gets exactly the events committed after it.
func (s *Store) InsertWebhook(ctx context.Context, q Querier, h *Webhook) error {
	start, err := s.OutboxHead(ctx, q)
	if err != nil {
		return err
	}
	h.Start = start
	_, err = q.ExecContext(ctx, s.numbered(`INSERT INTO _webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`),
		h.ID, h.Name, h.URL, encodeList(h.Collections), encodeList(h.Actions), h.Filter, encodeList(h.Secrets), h.Paused, h.Start, h.Created, h.Updated)
	if err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// UpdateWebhook stores every field of h but its start and creation time.
func (s *Store) UpdateWebhook(ctx context.Context, q Querier, h *Webhook) error {
	_, err := q.ExecContext(ctx, s.numbered(`UPDATE _webhooks SET name = $1, url = $2, collections = $3, actions = $4, filter = $5,
		secrets = $6, paused = $7, updated = $8 WHERE id = $9`),
		h.Name, h.URL, encodeList(h.Collections), encodeList(h.Actions), h.Filter, encodeList(h.Secrets), h.Paused, h.Updated, h.ID)
	if err != nil {
		return fmt.Errorf("update webhook: %w", err)
	}
	return nil
}

// DeleteWebhook deletes webhook id with its deliveries and their attempts.
func (s *Store) DeleteWebhook(ctx context.Context, q Querier, id string) error {
	for _, st := range []string{
		`DELETE FROM _webhookAttempts WHERE webhookId = $1`,
		`DELETE FROM _webhookDeliveries WHERE webhookId = $1`,
		`DELETE FROM _webhooks WHERE id = $1`,
	} {
		if _, err := q.ExecContext(ctx, s.numbered(st), id); err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
	}
	return nil
}

// InsertDeliveries queues list as pending deliveries, due at once, created
// at created; replay marks those that a superuser asked for again.
func (s *Store) InsertDeliveries(ctx context.Context, q Querier, list []NewDelivery, created string, replay bool) error {
	stmt := s.numbered(`INSERT INTO _webhookDeliveries (id, webhookId, eventId, position, payload, state, attempts, nextAttempt, firstAttempt,
		leaseUntil, lastStatus, lastError, replay, created, updated) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, '', '', 0, '', $7, $6, $6)`)
	for _, d := range list {
		if _, err := q.ExecContext(ctx, stmt, d.ID, d.WebhookID, d.EventID, d.Position, string(d.Payload), created, replay); err != nil {
			return fmt.Errorf("enqueue delivery: %w", err)
		}
	}
	return nil
}

// dueWhere selects the pending deliveries d of unpaused webhooks h whose
// next attempt is due at $1 and whose lease, if any, has ended; $2 is
// false (paused is a BOOLEAN, compared as the engine stores it).
const dueWhere = `d.state = 'pending' AND d.nextAttempt <= $1 AND d.leaseUntil <= $1 AND h.paused = $2`

// AnyDeliveryDue reports whether an attempt is due at now. It only reads,
// so it can run in a Read: a write, even an empty one, would end every
// cached read result at each poll.
func (s *Store) AnyDeliveryDue(ctx context.Context, q Querier, now string) (bool, error) {
	rows, err := q.QueryContext(ctx, s.numbered(`SELECT 1 FROM _webhookDeliveries d JOIN _webhooks h ON h.id = d.webhookId
		WHERE `+dueWhere+` LIMIT 1`), now, false)
	if err != nil {
		return false, fmt.Errorf("find due deliveries: %w", err)
	}
	defer rows.Close()
	due := rows.Next()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("find due deliveries: %w", err)
	}
	return due, nil
}

// DueDeliveries returns up to limit deliveries whose attempt is due at
// now, the longest due first. They are not claimed: LeaseDelivery does it.
func (s *Store) DueDeliveries(ctx context.Context, q Querier, now string, limit int) ([]DueDelivery, error) {
	rows, err := q.QueryContext(ctx, s.numbered(`SELECT d.id, d.webhookId, d.eventId, d.position, d.payload, d.attempts, d.firstAttempt, h.url, h.secrets
		FROM _webhookDeliveries d JOIN _webhooks h ON h.id = d.webhookId
		WHERE `+dueWhere+` ORDER BY d.nextAttempt, d.position LIMIT $3`), now, false, limit)
	if err != nil {
		return nil, fmt.Errorf("read due deliveries: %w", err)
	}
	defer rows.Close()
	var out []DueDelivery
	for rows.Next() {
		var (
			d                DueDelivery
			payload, secrets string
		)
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.Position, &payload, &d.Attempts, &d.FirstAttempt, &d.URL, &secrets); err != nil {
			return nil, fmt.Errorf("read due deliveries: %w", err)
		}
		d.Payload, d.Secrets = []byte(payload), decodeList(secrets)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due deliveries: %w", err)
	}
	return out, nil
}

// LeaseDelivery claims delivery id until until, if it is still pending and
// no lease on it runs at now, and reports whether it did. The condition is
// the compare-and-set that lets nodes sharing the database read the same
// due deliveries while only one of them makes each attempt.
func (s *Store) LeaseDelivery(ctx context.Context, q Querier, id, until, now string) (bool, error) {
	res, err := q.ExecContext(ctx, s.numbered(`UPDATE _webhookDeliveries SET leaseUntil = $1 WHERE id = $2 AND state = 'pending' AND leaseUntil <= $3`),
		until, id, now)
	if err != nil {
		return false, fmt.Errorf("lease delivery %s: %w", id, err)
	}
	return changedOne(res, "lease delivery "+id)
}

// changedOne reports whether the statement that gave res changed one row.
func changedOne(res sql.Result, op string) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: rows affected: %w", op, err)
	}
	return n == 1, nil
}

// RecordAttempt logs attempt a and leaves its delivery in state, with the
// next attempt due at next ("" for none) and its first attempt at first,
// its lease ended: a.Attempt counts the attempts, a.Status and a.Error
// are the delivery's last, a.Created its update time.
func (s *Store) RecordAttempt(ctx context.Context, q Querier, a WebhookAttempt, state, next, first string) error {
	_, err := q.ExecContext(ctx, s.numbered(`INSERT INTO _webhookAttempts (id, deliveryId, webhookId, eventId, attempt, status, error, latencyMs, response, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`),
		a.ID, a.DeliveryID, a.WebhookID, a.EventID, a.Attempt, a.Status, a.Error, a.LatencyMs, a.Response, a.Created)
	if err != nil {
		return fmt.Errorf("log attempt: %w", err)
	}
	_, err = q.ExecContext(ctx, s.numbered(`UPDATE _webhookDeliveries SET state = $1, attempts = $2, nextAttempt = $3, firstAttempt = $4, leaseUntil = '',
		lastStatus = $5, lastError = $6, updated = $7 WHERE id = $8`),
		state, a.Attempt, next, first, a.Status, a.Error, a.Created, a.DeliveryID)
	if err != nil {
		return fmt.Errorf("update delivery %s: %w", a.DeliveryID, err)
	}
	return nil
}

// DeleteWebhookLog deletes the attempts made before before and the
// finished deliveries last changed before it.
func (s *Store) DeleteWebhookLog(ctx context.Context, q Querier, before string) error {
	if _, err := q.ExecContext(ctx, s.numbered(`DELETE FROM _webhookAttempts WHERE created < $1`), before); err != nil {
		return fmt.Errorf("clean webhook attempts: %w", err)
	}
	if _, err := q.ExecContext(ctx, s.numbered(`DELETE FROM _webhookDeliveries WHERE state != 'pending' AND updated < $1`), before); err != nil {
		return fmt.Errorf("clean webhook deliveries: %w", err)
	}
	return nil
}

const deliveryColumns = `id, webhookId, eventId, state, attempts, nextAttempt, firstAttempt, lastStatus, lastError, replay, created, updated`

func scanDelivery(sc interface{ Scan(...any) error }, payload *string) (WebhookDelivery, error) {
	var d WebhookDelivery
	dest := []any{&d.ID, &d.WebhookID, &d.EventID, &d.State, &d.Attempts, &d.NextAttempt, &d.FirstAttempt, &d.LastStatus, &d.LastError, &d.Replay, &d.Created, &d.Updated}
	if payload != nil {
		dest = append(dest, payload)
	}
	err := sc.Scan(dest...)
	return d, err
}

// conditions renders "col = $n" for each non-empty value after the
// parameters already in args, joined by AND, and appends the values.
func conditions(args []any, cols []string, values []string) (string, []any) {
	where := ""
	for i, v := range values {
		if v == "" {
			continue
		}
		args = append(args, v)
		where += ` AND ` + cols[i] + ` = $` + strconv.Itoa(len(args))
	}
	return where, args
}

// DeliveryPage returns how many deliveries of webhook id f selects and
// those of them from offset on, at most limit, newest first.
func (s *Store) DeliveryPage(ctx context.Context, q Querier, webhookID string, f DeliveryFilter, limit, offset int) (int, []WebhookDelivery, error) {
	more, args := conditions([]any{webhookID}, []string{"state", "eventId"}, []string{f.State, f.EventID})
	where := `webhookId = $1` + more
	var total int
	if err := q.QueryRowContext(ctx, s.numbered(`SELECT COUNT(*) FROM _webhookDeliveries WHERE `+where), args...).Scan(&total); err != nil {
		return 0, nil, fmt.Errorf("count deliveries: %w", err)
	}
	rows, err := q.QueryContext(ctx, s.numbered(`SELECT `+deliveryColumns+` FROM _webhookDeliveries WHERE `+where+
		` ORDER BY created DESC, position DESC, id`+s.dialect.LimitOffset(limit, offset)), args...)
	if err != nil {
		return 0, nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out := []WebhookDelivery{}
	for rows.Next() {
		d, err := scanDelivery(rows, nil)
		if err != nil {
			return 0, nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("list deliveries: %w", err)
	}
	return total, out, nil
}

// DeliveryByID returns delivery id of webhook webhookID with its payload;
// an error that is sql.ErrNoRows (errors.Is) when there is none.
func (s *Store) DeliveryByID(ctx context.Context, q Querier, webhookID, id string) (WebhookDelivery, error) {
	var payload string
	d, err := scanDelivery(q.QueryRowContext(ctx, s.numbered(`SELECT `+deliveryColumns+`, payload FROM _webhookDeliveries
		WHERE webhookId = $1 AND id = $2`), webhookID, id), &payload)
	if err != nil {
		return WebhookDelivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	d.Payload = []byte(payload)
	return d, nil
}

// LatestDelivery returns the payload and event position of the newest
// delivery of event eventID to webhook webhookID; an error that is
// sql.ErrNoRows (errors.Is) when there is none.
func (s *Store) LatestDelivery(ctx context.Context, q Querier, webhookID, eventID string) ([]byte, int64, error) {
	var (
		payload string
		pos     int64
	)
	err := q.QueryRowContext(ctx, s.numbered(`SELECT payload, position FROM _webhookDeliveries WHERE webhookId = $1 AND eventId = $2
		ORDER BY created DESC LIMIT 1`), webhookID, eventID).Scan(&payload, &pos)
	if err != nil {
		return nil, 0, fmt.Errorf("find a delivery of event %s: %w", eventID, err)
	}
	return []byte(payload), pos, nil
}

// DeliveryAttempts returns up to limit attempts at delivery id, newest
// first.
func (s *Store) DeliveryAttempts(ctx context.Context, q Querier, deliveryID string, limit int) ([]WebhookAttempt, error) {
	return s.attempts(ctx, q, `deliveryId = $1`, []any{deliveryID}, limit, 0)
}

// AttemptPage returns how many attempts of webhook id f selects and those
// of them from offset on, at most limit, newest first.
func (s *Store) AttemptPage(ctx context.Context, q Querier, webhookID string, f AttemptFilter, limit, offset int) (int, []WebhookAttempt, error) {
	more, args := conditions([]any{webhookID}, []string{"deliveryId", "eventId"}, []string{f.DeliveryID, f.EventID})
	where := `webhookId = $1` + more
	var total int
	if err := q.QueryRowContext(ctx, s.numbered(`SELECT COUNT(*) FROM _webhookAttempts WHERE `+where), args...).Scan(&total); err != nil {
		return 0, nil, fmt.Errorf("count attempts: %w", err)
	}
	list, err := s.attempts(ctx, q, where, args, limit, offset)
	if err != nil {
		return 0, nil, err
	}
	return total, list, nil
}

func (s *Store) attempts(ctx context.Context, q Querier, where string, args []any, limit, offset int) ([]WebhookAttempt, error) {
	rows, err := q.QueryContext(ctx, s.numbered(`SELECT id, deliveryId, webhookId, eventId, attempt, status, error, latencyMs, response, created
		FROM _webhookAttempts WHERE `+where+` ORDER BY created DESC, attempt DESC`+s.dialect.LimitOffset(limit, offset)), args...)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	out := []WebhookAttempt{}
	for rows.Next() {
		var a WebhookAttempt
		if err := rows.Scan(&a.ID, &a.DeliveryID, &a.WebhookID, &a.EventID, &a.Attempt, &a.Status, &a.Error, &a.LatencyMs, &a.Response, &a.Created); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	return out, nil
}

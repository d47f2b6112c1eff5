package events

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// delivery is one event to send to one webhook. It has the fields of
// sqlstore.DueDelivery, so that a due delivery read from the store
// converts to it.
type delivery struct {
	ID           string
	WebhookID    string
	EventID      string
	Position     int64
	Payload      []byte
	Attempts     int
	FirstAttempt string
	URL          string
	Secrets      []string
}

// Name is the webhooks' relay consumer name.
func (w *Webhooks) Name() string { return "webhooks" }

// Consume turns events into the deliveries of the webhooks they match;
// the deliveries commit with the relay's position.
func (w *Webhooks) Consume(ctx context.Context, list []record.OutboxEvent) (Commit, error) {
	hooks, err := w.list(ctx)
	if err != nil || len(hooks) == 0 {
		return nil, err
	}
	var out []delivery
	for i := range list {
		e := &list[i]
		var (
			rec     *underhood.Record
			decoded bool
		)
		for _, h := range hooks {
			if e.Position <= h.start || !h.matches(e) {
				continue
			}
			if h.Filter != "" {
				if !decoded {
					decoded = true
					rec, err = w.records.DecodeEventRecord(e)
					if err != nil {
						rec = nil // the collection is gone: filters cannot match
					}
				}
				if rec == nil || !w.filterMatches(ctx, h, rec) {
					continue
				}
			}
			out = append(out, delivery{ID: underhood.NewID(), WebhookID: h.ID, EventID: e.ID, Position: e.Position, Payload: e.JSON()})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return func(ctx context.Context, q sqlstore.Querier) error { return w.insertDeliveries(ctx, q, out, false) }, nil
}

// Committed wakes the delivery loop once new deliveries have committed.
func (w *Webhooks) Committed() { w.wake() }

func (w *Webhooks) filterMatches(ctx context.Context, h *Webhook, rec *underhood.Record) bool {
	ok, err := w.records.CanSee(ctx, w.records.SystemRequest(), rec, nil, h.Filter)
	if err != nil {
		// The schema changed under the filter: it matches nothing until fixed.
		w.log.Warn("webhook filter fails; event skipped", "webhook", h.ID, "err", err)
		return false
	}
	return ok
}

// insertDeliveries queues list, due at once.
func (w *Webhooks) insertDeliveries(ctx context.Context, q sqlstore.Querier, list []delivery, replay bool) error {
	rows := make([]sqlstore.NewDelivery, len(list))
	for i, d := range list {
		rows[i] = sqlstore.NewDelivery{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, Position: d.Position, Payload: d.Payload}
	}
	return w.store.InsertDeliveries(ctx, q, rows, now(), replay)
}

func (w *Webhooks) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// deliverLoop starts the attempts that are due until ctx ends.
// Attempts run under attemptCtx, which outlives ctx while Close lets them
// finish.
func (w *Webhooks) deliverLoop(ctx, attemptCtx context.Context) {
	const poll = time.Second
	lastClean := time.Time{}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-t.C:
		}
		if time.Since(lastClean) > time.Hour {
			lastClean = time.Now()
			if err := w.cleanLog(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("webhooks: clean log", "err", err)
			}
		}
		started, err := w.startDue(ctx, attemptCtx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("webhooks: read due deliveries", "err", err)
		}
		wait := poll
		if started {
			wait = 0 // there may be more due
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		if wait == 0 {
			// Let a slot free up or a new delivery commit before looking again.
			t.Reset(50 * time.Millisecond)
		} else {
			t.Reset(wait)
		}
	}
}

// startDue claims the due deliveries there is room for and starts their
// attempts. It reports whether it started any.
func (w *Webhooks) startDue(ctx, attemptCtx context.Context) (bool, error) {
	w.mu.Lock()
	free := w.opts.Concurrency - w.running
	w.mu.Unlock()
	if free <= 0 {
		return false, nil
	}
	nowTS := now()
	// Look before taking the writer: a write transaction, even one that
	// changes nothing, ends every cached read result, and this runs every
	// poll whether or not anything is due.
	var anyDue bool
	err := w.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		anyDue, err = w.store.AnyDeliveryDue(ctx, q, nowTS)
		return err
	})
	if err != nil || !anyDue {
		return false, err
	}
	lease := underhood.FormatTime(time.Now().Add(w.opts.Timeout + 30*time.Second))
	var claimed []delivery
	err = w.store.Write(ctx, func(q sqlstore.Querier) error {
		claimed = claimed[:0]
		due, err := w.store.DueDeliveries(ctx, q, nowTS, 4*free)
		if err != nil {
			return err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		taken := map[string]int{}
		for _, d := range due {
			if len(claimed) >= free || w.inflight[d.WebhookID]+taken[d.WebhookID] >= w.opts.PerWebhook {
				continue
			}
			// Another node may have claimed it since it was read.
			leased, err := w.store.LeaseDelivery(ctx, q, d.ID, lease, nowTS)
			if err != nil {
				return err
			}
			if leased {
				taken[d.WebhookID]++
				claimed = append(claimed, delivery(d))
			}
		}
		return nil
	})
	if err != nil || len(claimed) == 0 {
		return false, err
	}
	w.mu.Lock()
	for _, d := range claimed {
		w.inflight[d.WebhookID]++
		w.running++
	}
	w.mu.Unlock()
	for _, d := range claimed {
		w.inFlight.Add(1)
		go func() {
			defer w.inFlight.Done()
			w.attempt(attemptCtx, d)
			w.mu.Lock()
			w.running--
			if w.inflight[d.WebhookID]--; w.inflight[d.WebhookID] == 0 {
				delete(w.inflight, d.WebhookID)
			}
			w.mu.Unlock()
			w.wake()
		}()
	}
	return true, nil
}

// attempt sends one delivery once and records the outcome.
func (w *Webhooks) attempt(ctx context.Context, d delivery) {
	start := time.Now()
	status, excerpt, sendErr := w.send(ctx, d, start)
	if sendErr != nil && ctx.Err() != nil {
		return // stopping cut the attempt short: it is made again after a restart
	}
	latency := time.Since(start)
	d.Attempts++
	if d.FirstAttempt == "" {
		d.FirstAttempt = underhood.FormatTime(start)
	}
	ok := sendErr == nil && status >= 200 && status < 300
	errText := ""
	switch {
	case sendErr != nil:
		errText = sendErr.Error()
	case !ok:
		errText = "HTTP " + strconv.Itoa(status)
	}
	state, next := StateDelivered, ""
	if !ok {
		state, next = StatePending, underhood.FormatTime(time.Now().Add(w.backoff(d.Attempts)))
		if first, err := underhood.ParseTime(d.FirstAttempt); err == nil && time.Since(first) >= w.opts.GiveUpAfter {
			state, next = StateDead, ""
			w.log.Warn("webhook delivery dead-lettered", "webhook", d.WebhookID, "event", d.EventID, "attempts", d.Attempts)
		}
	}
	ts := now()
	// The outcome is recorded even if the loop stops meanwhile.
	ctx = context.WithoutCancel(ctx)
	a := sqlstore.WebhookAttempt{ID: underhood.NewID(), DeliveryID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, Attempt: d.Attempts,
		Status: status, Error: errText, LatencyMs: latency.Milliseconds(), Response: excerpt, Created: ts}
	err := w.store.Write(ctx, func(q sqlstore.Querier) error {
		return w.store.RecordAttempt(ctx, q, a, state, next, d.FirstAttempt)
	})
	if err != nil {
		w.log.Error("webhooks: record attempt", "webhook", d.WebhookID, "event", d.EventID, "err", err)
	}
}

// send POSTs the delivery's payload, signed, and returns the status and
// the start of the response body.
func (w *Webhooks) send(ctx context.Context, d delivery, at time.Time) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Underhood-Webhooks/1")
	req.Header.Set(HeaderID, d.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(d.Secrets, d.EventID, at, d.Payload))
	res, err := w.opts.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxExcerpt))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, validUTF8(b), nil
}

// validUTF8 returns b as a string, cut at a rune boundary and with
// invalid bytes replaced.
func validUTF8(b []byte) string {
	for len(b) > 0 && !utf8.Valid(b) {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size > 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// backoff is the delay after the n-th failed attempt: RetryBase doubled
// n-1 times, at most RetryMax, ±25%.
func (w *Webhooks) backoff(n int) time.Duration {
	d := w.opts.RetryBase
	for i := 1; i < n && d < w.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.RetryMax)
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
}

// cleanLog deletes finished deliveries and attempts older than KeepLog.
func (w *Webhooks) cleanLog(ctx context.Context) error {
	before := underhood.FormatTime(time.Now().Add(-w.opts.KeepLog))
	return w.store.Write(ctx, func(q sqlstore.Querier) error { return w.store.DeleteWebhookLog(ctx, q, before) })
}

// Package events carries the outbox's events (record/outbox.go) to the
// consumers that must not miss one: webhooks, and other services through
// NATS. A Relay reads the committed events in order and hands them to each
// consumer, remembering per consumer, in the database, the position it
// has passed; a consumer's work and its new position commit together, so
// after a crash every event is consumed again from the last position that
// committed: at least once, never an invented one. Events every consumer
// has passed are deleted after a retention delay.
//
// Realtime subscribers do not go through the relay: they are fed straight
// from the commit (record.Service.Listen), as a closed stream loses its
// events anyway.
package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// Consumer receives the outbox's events in order.
type Consumer interface {
	// Name names the consumer's position in the database; it must stay
	// the same across restarts.
	Name() string
	// Consume handles events, in position order. It returns the work that
	// must commit together with the consumer's new position (nil when
	// there is none), or an error to be offered the same events again
	// after a pause.
	Consume(ctx context.Context, events []record.OutboxEvent) (Commit, error)
}

// Commit is work that runs in the transaction moving a consumer's position.
type Commit func(ctx context.Context, q sqlstore.Querier) error

// Notified is implemented by consumers that want to know when the work
// returned by Consume has committed.
type Notified interface {
	Committed()
}

// RelayOptions tune a Relay; zero values take the defaults.
type RelayOptions struct {
	// Retention is how long an event every consumer has passed is kept,
	// for replays (default 72 hours).
	Retention time.Duration
	// Poll is how often the outbox is read when no commit was heard
	// (default 1 second); commits of this process wake the relay at once.
	Poll time.Duration
	// Batch is how many events a consumer is offered at once (default 256).
	Batch int
	// TrimEvery is how often retention runs (default 1 minute).
	TrimEvery time.Duration
}

// Defaults of RelayOptions.
const (
	DefaultRetention = 72 * time.Hour
	defaultPoll      = time.Second
	defaultBatch     = 256
	defaultTrimEvery = time.Minute
	// maxConsumerPause bounds the pause after a failing Consume.
	maxConsumerPause = 30 * time.Second
)

// errMoved is a position that another node moved first.
var errMoved = errors.New("events: consumer position moved by another node")

// cursorTable keeps each consumer's position.
const cursorTable = "_eventConsumers"

// Relay delivers the outbox's events to its consumers, each at its own pace.
type Relay struct {
	records *record.Service
	store   *sqlstore.Store
	log     *slog.Logger
	opts    RelayOptions

	wakes []chan struct{}
	names []string

	stopListen func()
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// NewRelay starts a relay that feeds consumers. A consumer seen for the
// first time starts at the newest event: it gets the changes committed
// from then on. Close stops it.
func NewRelay(ctx context.Context, records *record.Service, log *slog.Logger, opts RelayOptions, consumers ...Consumer) (*Relay, error) {
	if log == nil {
		log = slog.Default()
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Poll <= 0 {
		opts.Poll = defaultPoll
	}
	if opts.Batch <= 0 {
		opts.Batch = defaultBatch
	}
	if opts.TrimEvery <= 0 {
		opts.TrimEvery = defaultTrimEvery
	}
	r := &Relay{records: records, store: records.Store(), log: log, opts: opts}
	if err := r.migrate(ctx); err != nil {
		return nil, err
	}
	type start struct {
		c   Consumer
		pos int64
	}
	var starts []start
	for _, c := range consumers {
		pos, err := r.position(ctx, c.Name())
		if err != nil {
			return nil, err
		}
		starts = append(starts, start{c, pos})
		r.names = append(r.names, c.Name())
		r.wakes = append(r.wakes, make(chan struct{}, 1))
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.stopListen = records.Listen(func(underhood.Event) { r.wake() })
	for i, s := range starts {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.run(runCtx, s.c, s.pos, r.wakes[i])
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.retain(runCtx)
	}()
	return r, nil
}

// Close stops the relay after the batches being consumed.
func (r *Relay) Close() {
	r.closeOnce.Do(func() {
		r.stopListen()
		r.cancel()
		r.wg.Wait()
	})
}

// wake tells every consumer that an event has committed. It never blocks:
// it runs on the writer's goroutine.
func (r *Relay) wake() {
	for _, w := range r.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (r *Relay) migrate(ctx context.Context) error {
	err := r.store.Write(ctx, func(q sqlstore.Querier) error {
		_, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+cursorTable+` (
			name     TEXT PRIMARY KEY NOT NULL,
			position BIGINT NOT NULL,
			updated  TEXT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", cursorTable, err)
	}
	return nil
}

// position returns the consumer's position, registering a new consumer at
// the newest event.
func (r *Relay) position(ctx context.Context, name string) (int64, error) {
	p := r.store.Dialect().Placeholder
	var pos int64
	err := r.store.Read(ctx, func(q sqlstore.Querier) error {
		return q.QueryRowContext(ctx, `SELECT position FROM `+cursorTable+` WHERE name = `+p(1), name).Scan(&pos)
	})
	if err == nil {
		return pos, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read position of %s: %w", name, err)
	}
	// The head is read in the writing transaction, so no event can commit
	// between reading it and storing it.
	err = r.store.Write(ctx, func(q sqlstore.Querier) error {
		if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM `+record.OutboxTable).Scan(&pos); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO `+cursorTable+` (name, position, updated) VALUES (`+p(1)+`, `+p(2)+`, `+p(3)+`)`,
			name, pos, now())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("register consumer %s: %w", name, err)
	}
	return pos, nil
}

// run feeds one consumer until ctx ends.
func (r *Relay) run(ctx context.Context, c Consumer, pos int64, wake <-chan struct{}) {
	pause := time.Duration(0)
	poll := time.NewTimer(r.opts.Poll)
	defer poll.Stop()
	for ctx.Err() == nil {
		next, err := r.step(ctx, c, pos)
		switch {
		case err != nil && ctx.Err() == nil:
			pause = min(max(2*pause, 100*time.Millisecond), maxConsumerPause)
			r.log.Error("events: consumer failed; retrying", "consumer", c.Name(), "position", pos, "retryIn", pause, "err", err)
			if !sleep(ctx, pause) {
				return
			}
			continue
		case err != nil:
			return
		}
		pause = 0
		if next != pos {
			pos = next
			continue // there may be more
		}
		poll.Reset(r.opts.Poll)
		select {
		case <-wake:
		case <-poll.C:
		case <-ctx.Done():
			return
		}
	}
}

// step offers the consumer the events after pos and moves its position
// past them, together with its work. It returns the new position.
func (r *Relay) step(ctx context.Context, c Consumer, pos int64) (int64, error) {
	list, err := r.records.ReadOutbox(ctx, pos, r.opts.Batch)
	if err != nil || len(list) == 0 {
		return pos, err
	}
	work, err := c.Consume(ctx, list)
	if err != nil {
		return pos, err
	}
	next := list[len(list)-1].Position
	p := r.store.Dialect().Placeholder
	err = r.store.Write(ctx, func(q sqlstore.Querier) error {
		if work != nil {
			if err := work(ctx, q); err != nil {
				return err
			}
		}
		// Nodes sharing a database run the same consumers: the work of
		// a batch commits only if no other node has moved the position
		// meanwhile, so each batch's work commits once.
		res, err := q.ExecContext(ctx, `UPDATE `+cursorTable+` SET position = `+p(1)+`, updated = `+p(2)+
			` WHERE name = `+p(3)+` AND position = `+p(4), next, now(), c.Name(), pos)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n != 1 {
			return errMoved
		}
		return nil
	})
	if errors.Is(err, errMoved) {
		moved, err := r.position(ctx, c.Name())
		return moved, err
	}
	if err != nil {
		return pos, fmt.Errorf("commit position %d: %w", next, err)
	}
	if n, ok := c.(Notified); ok && work != nil {
		n.Committed()
	}
	return next, nil
}

// retain deletes the events every consumer has passed once they are older
// than the retention delay.
func (r *Relay) retain(ctx context.Context) {
	t := time.NewTicker(r.opts.TrimEvery)
	defer t.Stop()
	for {
		if err := r.trim(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("events: retention", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// trim runs retention once.
func (r *Relay) trim(ctx context.Context) error {
	upTo, err := r.records.OutboxHead(ctx)
	if err != nil {
		return err
	}
	for _, name := range r.names {
		pos, err := r.position(ctx, name)
		if err != nil {
			return err
		}
		upTo = min(upTo, pos)
	}
	_, err = r.records.TrimOutbox(ctx, upTo, time.Now().Add(-r.opts.Retention))
	return err
}

func now() string { return underhood.FormatTime(time.Now()) }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

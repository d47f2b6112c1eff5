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
// events anyway. docs/architecture.md follows a change down both roads.
//
// The package reads the outbox only through record.Service; its own tables
// (the consumers' positions, the webhooks, their deliveries and attempts)
// it keeps through the *sqlstore.Store it is given, whose methods hold
// their SQL.
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

// NewRelay starts a relay that feeds consumers the events of records'
// outbox, keeping their positions in store. A consumer seen for the first
// time starts at the newest event: it gets the changes committed from
// then on. Close stops it.
func NewRelay(ctx context.Context, store *sqlstore.Store, records *record.Service, log *slog.Logger, opts RelayOptions, consumers ...Consumer) (*Relay, error) {
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
	r := &Relay{records: records, store: store, log: log, opts: opts}
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
	return r.store.Write(ctx, func(q sqlstore.Querier) error { return r.store.CreateCursorTable(ctx, q) })
}

// position returns the consumer's position, registering a new consumer at
// the newest event.
func (r *Relay) position(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := r.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		pos, err = r.store.CursorPosition(ctx, q, name)
		return err
	})
	if !errors.Is(err, sql.ErrNoRows) {
		return pos, err
	}
	// The newest event is read in the writing transaction that stores it
	// as the position, so no event can commit in between.
	err = r.store.Write(ctx, func(q sqlstore.Querier) error {
		var err error
		pos, err = r.store.RegisterCursor(ctx, q, name)
		return err
	})
	return pos, err
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
	err = r.store.Write(ctx, func(q sqlstore.Querier) error {
		if work != nil {
			if err := work(ctx, q); err != nil {
				return err
			}
		}
		// Nodes sharing a database run the same consumers: the work of
		// a batch commits only if no other node has moved the position
		// meanwhile, so each batch's work commits once.
		advanced, err := r.store.AdvanceCursor(ctx, q, c.Name(), pos, next)
		if err != nil {
			return err
		}
		if !advanced {
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

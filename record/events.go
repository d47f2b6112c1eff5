package record

import (
	"context"
	"sync"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// Every committed create, update and delete becomes an underhood.Event
// that the in-process listeners (realtime) receive after the commit; the
// same write also stages the event in the outbox table (outbox.go), which
// webhooks, NATS and the other nodes read. The operations of a write note their changes in the write's
// context; the service publishes them only once the store has committed,
// so a listener never sees a change that was rolled back.

// Event actions.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

type changesKey struct{}

// changes collects the events of one write.
type changes struct {
	mu   sync.Mutex
	list []*underhood.Event // their sequences are set at the commit
}

// withChanges returns a context in which the operations of a write note
// their changes.
func withChanges(ctx context.Context) (context.Context, *changes) {
	ch := &changes{}
	return context.WithValue(ctx, changesKey{}, ch), ch
}

// noteChange records that r (of its collection) was created, updated or
// deleted by the write running in ctx on q: it appends the event to the
// outbox in that transaction (outbox.go) and keeps it for the listeners.
func (s *Service) noteChange(ctx context.Context, q sqlstore.Querier, action string, r *underhood.Record) error {
	return s.noteChangeFrom(ctx, q, action, nil, r)
}

// noteUpdate is noteChange for an update of old (which the write no
// longer changes) into r; listeners see both.
func (s *Service) noteUpdate(ctx context.Context, q sqlstore.Querier, old, r *underhood.Record) error {
	return s.noteChangeFrom(ctx, q, ActionUpdate, old, r)
}

func (s *Service) noteChangeFrom(ctx context.Context, q sqlstore.Querier, action string, old, r *underhood.Record) error {
	e := &underhood.Event{ID: underhood.NewID(), Action: action, Collection: r.Collection.Name}
	if err := s.appendOutbox(q, e, r); err != nil {
		return err
	}
	ch, _ := ctx.Value(changesKey{}).(*changes)
	if ch == nil {
		return nil
	}
	e.Record = r.Clone()
	e.Old = old
	ch.mu.Lock()
	ch.list = append(ch.list, e)
	ch.mu.Unlock()
	return nil
}

// listeners is the set of functions events are delivered to.
type listeners struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(underhood.Event)
}

// Listen registers fn to receive every committed change, in commit order.
// fn runs on the writer's goroutine and must not block: a slow consumer
// queues the event and returns. The returned function unregisters fn.
func (s *Service) Listen(fn func(underhood.Event)) (stop func()) {
	l := &s.listeners
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fns == nil {
		l.fns = map[int]func(underhood.Event){}
	}
	id := l.next
	l.next++
	l.fns[id] = fn
	return func() {
		l.mu.Lock()
		delete(l.fns, id)
		l.mu.Unlock()
	}
}

// publish delivers the changes of a committed write.
func (s *Service) publish(ch *changes) {
	if ch == nil || len(ch.list) == 0 {
		return
	}
	l := &s.listeners
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range ch.list {
		for _, fn := range l.fns {
			fn(*e)
		}
	}
}

package record

import (
	"context"
	"sync"

	"github.com/underhood/underhood"
)

// Every committed create, update and delete becomes an underhood.Event
// that listeners (realtime, later webhooks and other nodes) receive after
// the commit. The operations of a write note their changes in the write's
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
	list []underhood.Event
}

// withChanges returns a context in which the operations of a write note
// their changes.
func withChanges(ctx context.Context) (context.Context, *changes) {
	ch := &changes{}
	return context.WithValue(ctx, changesKey{}, ch), ch
}

// noteChange records that r (of its collection) was created, updated or
// deleted by the write running in ctx.
func noteChange(ctx context.Context, action string, r *underhood.Record) {
	ch, _ := ctx.Value(changesKey{}).(*changes)
	if ch == nil {
		return
	}
	ch.mu.Lock()
	ch.list = append(ch.list, underhood.Event{Action: action, Collection: r.Collection.Name, Record: r.Clone()})
	ch.mu.Unlock()
}

// listeners is the set of functions events are delivered to.
type listeners struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(underhood.Event)
	seq  map[string]int64 // per-collection sequence
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
		l.seq = map[string]int64{}
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
		if l.seq == nil {
			l.seq = map[string]int64{}
		}
		l.seq[e.Collection]++
		e.ID = underhood.NewID()
		e.Sequence = l.seq[e.Collection]
		for _, fn := range l.fns {
			fn(e)
		}
	}
}

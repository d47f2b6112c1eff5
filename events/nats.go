package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// NATS carries the events to NATS (serve --nats URL): as a relay
// consumer it publishes every event, in order, to
// underhood.<collection>.<action> for other services, with the event id as
// Nats-Msg-Id (JetStream streams deduplicate on it); and it hands the
// events that other nodes committed to a function, the realtime broker of
// this node, so that a subscriber on one node sees a write made through
// another. Publishing is at least once: a batch is offered again until
// the server has acknowledged it (a flush), so a receiver deduplicates by
// event id, as this node does.

// SubjectPrefix is the first token of every event subject.
const SubjectPrefix = "underhood"

// recentIDs bounds how many event ids are remembered for deduplication.
const recentIDs = 1 << 14

// NATS publishes events to a NATS server and receives other nodes' events.
type NATS struct {
	nc      *nats.Conn
	records *record.Service
	log     *slog.Logger

	local      *idSet // events this node committed (from Listen)
	remote     *idSet // events of other nodes already handed on
	stopListen func()

	mu  sync.Mutex
	sub *nats.Subscription
}

// NewNATS connects to the NATS server at url. Close disconnects.
func NewNATS(ctx context.Context, url string, records *record.Service, log *slog.Logger) (*NATS, error) {
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name("underhood"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats: reconnected") }),
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	n := &NATS{nc: nc, records: records, log: log, local: newIDSet(recentIDs), remote: newIDSet(recentIDs)}
	n.stopListen = records.Listen(func(e underhood.Event) { n.local.add(e.ID) })
	return n, nil
}

// Close stops receiving and disconnects after pending messages are sent.
func (n *NATS) Close() {
	n.stopListen()
	n.mu.Lock()
	if n.sub != nil {
		_ = n.sub.Unsubscribe()
		n.sub = nil
	}
	n.mu.Unlock()
	_ = n.nc.FlushTimeout(5 * time.Second)
	n.nc.Close()
}

// Subject is the subject an event of collection and action is published to.
func Subject(collection, action string) string {
	return SubjectPrefix + "." + collection + "." + action
}

// Name is the NATS publisher's relay consumer name.
func (n *NATS) Name() string { return "nats" }

// Consume publishes events and waits until the server has them.
func (n *NATS) Consume(ctx context.Context, list []record.OutboxEvent) (Commit, error) {
	for i := range list {
		e := &list[i]
		m := nats.NewMsg(Subject(e.Collection, e.Action))
		m.Header.Set(nats.MsgIdHdr, e.ID)
		m.Data = e.JSON()
		if err := n.nc.PublishMsg(m); err != nil {
			return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.nc.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("flush to nats: %w", err)
	}
	return nil, nil
}

// wireEvent is the JSON of an event (record.OutboxEvent.JSON).
type wireEvent struct {
	ID           string          `json:"id"`
	Position     int64           `json:"position"`
	Sequence     int64           `json:"sequence"`
	Action       string          `json:"action"`
	CollectionID string          `json:"collectionId"`
	Collection   string          `json:"collection"`
	Created      string          `json:"created"`
	Record       json.RawMessage `json:"record"`
}

// OnRemote subscribes to every event subject and calls fn, on the NATS
// client's goroutine, with each event committed by another node, once.
func (n *NATS) OnRemote(fn func(underhood.Event)) error {
	sub, err := n.nc.Subscribe(SubjectPrefix+".>", func(m *nats.Msg) {
		var w wireEvent
		if err := json.Unmarshal(m.Data, &w); err != nil || w.ID == "" {
			n.log.Warn("nats: not an event", "subject", m.Subject)
			return
		}
		if n.local.has(w.ID) || !n.remote.add(w.ID) {
			return // committed here, or already handed on
		}
		oe := &record.OutboxEvent{ID: w.ID, Position: w.Position, Sequence: w.Sequence, Action: w.Action,
			CollectionID: w.CollectionID, Collection: w.Collection, Record: w.Record}
		rec, err := n.records.DecodeEventRecord(oe)
		if err != nil {
			return // a collection this node does not know (yet)
		}
		fn(underhood.Event{ID: w.ID, Sequence: w.Sequence, Action: w.Action, Collection: w.Collection, Record: rec})
	})
	if err != nil {
		return fmt.Errorf("subscribe to nats: %w", err)
	}
	n.mu.Lock()
	n.sub = sub
	n.mu.Unlock()
	return n.nc.Flush()
}

// idSet remembers the last max ids added.
type idSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func newIDSet(max int) *idSet {
	return &idSet{ids: make(map[string]struct{}, max), ring: make([]string, max)}
}

// add remembers id and reports whether it was new.
func (s *idSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.next = (s.next + 1) % len(s.ring)
	s.ids[id] = struct{}{}
	return true
}

func (s *idSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

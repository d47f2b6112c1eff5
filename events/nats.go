package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// NATS carries the events to NATS (serve --nats URL): as a relay
// consumer it publishes every event, in order, to
// underhood.<collection>.<action> for other services, with the event id as
// Nats-Msg-Id; and it hands the events that other nodes committed to a
// function, the realtime broker of this node, so that a subscriber on one
// node sees a write made through another.
//
// When the server runs JetStream, the events are kept in a stream (the one
// that already captures underhood.>, else one NATS creates under
// NATSOptions.Stream), so services that were away can read what they
// missed: a batch counts as published once the stream has acknowledged
// every event, and the stream drops the copies of an event that a retry
// or another node publishes again (it deduplicates on Nats-Msg-Id).
// Without JetStream a batch counts as published once the server has it (a
// flush). Either way publishing is at least once, so a plain subscriber
// deduplicates by event id, as this node does.

// SubjectPrefix is the first token of every event subject.
const SubjectPrefix = "underhood"

// recentIDs bounds how many event ids are remembered for deduplication.
const recentIDs = 1 << 14

// DefaultStream is the name of the JetStream stream created for the events
// when none captures them yet.
const DefaultStream = "UNDERHOOD"

// NATSOptions tune NewNATS.
type NATSOptions struct {
	// Stream is the name of the JetStream stream to create for the events
	// when the server runs JetStream and no stream captures underhood.>
	// yet; it keeps them for events.DefaultRetention. Empty: publish
	// without a stream even where JetStream runs.
	Stream string
}

// NATS publishes events to a NATS server and receives other nodes' events.
type NATS struct {
	nc      *nats.Conn
	js      jetstream.JetStream // nil without a stream
	stream  []string            // the subjects the stream captures
	records *record.Service
	log     *slog.Logger

	local      *idSet // events this node committed (from Listen)
	remote     *idSet // events of other nodes already handed on
	stopListen func()

	mu     sync.Mutex
	sub    *nats.Subscription
	direct *nats.Subscription
}

// NewNATS connects to the NATS server at url and finds or creates the
// events' stream (see NATSOptions). Close disconnects.
func NewNATS(ctx context.Context, url string, records *record.Service, log *slog.Logger, o NATSOptions) (*NATS, error) {
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
	if o.Stream != "" {
		if err := n.useStream(ctx, o.Stream); err != nil {
			nc.Close()
			return nil, err
		}
	}
	n.stopListen = records.Listen(func(e underhood.Event) { n.local.add(e.ID) })
	return n, nil
}

// useStream finds the JetStream stream that captures the event subjects,
// creating one named name if there is none; without JetStream on the
// server it leaves the events unstreamed.
func (n *NATS) useStream(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	js, err := jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("nats: jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			n.log.Info("nats: the server runs no JetStream; events are published without a stream")
			return nil
		}
		return fmt.Errorf("nats: jetstream: %w", err)
	}
	all := SubjectPrefix + ".>"
	var stream jetstream.Stream
	for attempt := 0; stream == nil; attempt++ {
		found, err := js.StreamNameBySubject(ctx, all)
		switch {
		case err == nil:
			if stream, err = js.Stream(ctx, found); err != nil {
				return fmt.Errorf("nats: stream %s: %w", found, err)
			}
		case errors.Is(err, jetstream.ErrStreamNotFound):
			stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        name,
				Description: "Underhood's events: " + all,
				Subjects:    []string{all},
				Storage:     jetstream.FileStorage,
				Retention:   jetstream.LimitsPolicy,
				Discard:     jetstream.DiscardOld,
				MaxAge:      DefaultRetention,
				Duplicates:  2 * time.Minute,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // another node created it meanwhile
			}
			if err != nil {
				return fmt.Errorf("nats: create stream %s: %w", name, err)
			}
		default:
			return fmt.Errorf("nats: find the events' stream: %w", err)
		}
	}
	info := stream.CachedInfo()
	n.js, n.stream = js, info.Config.Subjects
	n.log.Info("nats: events are kept in a JetStream stream", "stream", info.Config.Name)
	return nil
}

// streamed reports whether the stream captures subject.
func (n *NATS) streamed(subject string) bool {
	if n.js == nil {
		return false
	}
	for _, p := range n.stream {
		if subjectMatches(p, subject) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether the NATS subject pattern p (with the
// wildcards * for one token and > for the rest) matches subject.
func subjectMatches(p, subject string) bool {
	pt, st := strings.Split(p, "."), strings.Split(subject, ".")
	for i, tok := range pt {
		switch {
		case tok == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case tok != "*" && tok != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}

// Close stops receiving and disconnects after pending messages are sent.
func (n *NATS) Close() {
	n.stopListen()
	n.mu.Lock()
	for _, sub := range []**nats.Subscription{&n.sub, &n.direct} {
		if *sub != nil {
			_ = (*sub).Unsubscribe()
			*sub = nil
		}
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

// Consume publishes events and waits until the stream has acknowledged
// each of them, or, for the events no stream keeps, until the server has
// them.
func (n *NATS) Consume(ctx context.Context, list []record.OutboxEvent) (Commit, error) {
	var acks []jetstream.PubAckFuture
	for i := range list {
		e := &list[i]
		m := nats.NewMsg(Subject(e.Collection, e.Action))
		m.Header.Set(nats.MsgIdHdr, e.ID)
		m.Data = e.JSON()
		if n.streamed(m.Subject) {
			ack, err := n.js.PublishMsgAsync(m)
			if err != nil {
				return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
			}
			acks = append(acks, ack)
			continue
		}
		if err := n.nc.PublishMsg(m); err != nil {
			return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.nc.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("flush to nats: %w", err)
	}
	for _, ack := range acks {
		select {
		case <-ack.Ok():
		case err := <-ack.Err():
			return nil, fmt.Errorf("publish %s: %w", ack.Msg().Subject, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("publish %s: no acknowledgement from the stream: %w", ack.Msg().Subject, ctx.Err())
		}
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

// directSubject carries direct realtime messages between nodes (the
// OAuth2 popup's code, realtime.Broker.SendOnce) as requests: the node
// whose client it is answers. It is outside underhood.>, so no events'
// stream captures it.
const directSubject = "_underhood.realtime.direct"

// directWait is how long SendOnce waits for the node of a client.
const directWait = 2 * time.Second

// directMessage is a direct message on the wire.
type directMessage struct {
	ID    string          `json:"id"`
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

// OnDirect answers the direct messages other nodes send (SendOnce) with
// send, the broker's SendOnceHere: a node replies only when its client
// took the message.
func (n *NATS) OnDirect(send func(id, topic string, data []byte) error) error {
	sub, err := n.nc.Subscribe(directSubject, func(m *nats.Msg) {
		var d directMessage
		if err := json.Unmarshal(m.Data, &d); err != nil || m.Reply == "" {
			return
		}
		if send(d.ID, d.Topic, d.Data) == nil {
			_ = m.Respond([]byte("ok"))
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to nats: %w", err)
	}
	n.mu.Lock()
	n.direct = sub
	n.mu.Unlock()
	return n.nc.Flush()
}

// SendOnce hands a direct message to the node whose client id is, as
// realtime.Peers: ENotFound when no node took it within directWait.
func (n *NATS) SendOnce(id, topic string, data []byte) error {
	b, err := json.Marshal(directMessage{ID: id, Topic: topic, Data: data})
	if err != nil {
		return fmt.Errorf("direct message: %w", err)
	}
	if _, err := n.nc.Request(directSubject, b, directWait); err != nil {
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
			return underhood.Errorf(underhood.ENotFound, "Missing or invalid client id.")
		}
		return fmt.Errorf("direct message over nats: %w", err)
	}
	return nil
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

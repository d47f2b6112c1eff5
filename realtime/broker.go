// Package realtime delivers record changes to subscribed clients. A Broker
// keeps the clients and their subscriptions and, for every committed
// change, sends each client the events its identity may see: a "coll/*"
// subscription is gated by the collection's list rule, "coll/ID" by its
// view rule, each checked in memory per subscriber per event with the
// rules as they are at that moment. The protocol (SSE, WebSocket) lives
// in the adapters; this package knows none.
package realtime

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// Limits of one client.
const (
	MaxSubscriptions = 1000
	maxTopicLength   = 2500
	// clientQueue is how many undelivered messages a client may have; a
	// client that falls further behind is disconnected rather than slowing
	// everyone down.
	clientQueue = 512
	// eventQueue is how many changes may wait for dispatch.
	eventQueue = 8192
)

// Message is one event for one client: Topic is the subscription as the
// client wrote it (the SSE event name), Record is presented and expanded
// for the client, Fields is the subscription's projection.
type Message struct {
	Topic  string
	Action string
	Record *underhood.Record
	Fields string
}

// Subscription is one parsed topic.
type Subscription struct {
	Topic      string // as given
	Collection string // name or id
	RecordID   string // "*" for every record
	Filter     string
	Expand     string
	Fields     string
	Headers    map[string]string
	Query      map[string]string
}

// Client is one connected subscriber.
type Client struct {
	ID   string
	out  chan Message
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	auth *underhood.Record
	subs map[string]*Subscription
}

// Messages is the stream of the client's events; Done is closed when the
// broker drops the client.
func (c *Client) Messages() <-chan Message { return c.out }

// Done is closed when the client is disconnected by the broker.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) close() { c.once.Do(func() { close(c.done) }) }

// Subscriptions returns the client's current topics.
func (c *Client) Subscriptions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.subs))
	for t := range c.subs {
		out = append(out, t)
	}
	return out
}

// Broker keeps the realtime clients of one node.
type Broker struct {
	records *record.Service
	log     *slog.Logger

	mu      sync.RWMutex
	clients map[string]*Client

	events   chan underhood.Event
	stop     func()
	quit     chan struct{}
	finished chan struct{}
	closed   sync.Once
}

// New returns a broker fed by every committed change of records. Close
// stops it.
func New(records *record.Service, log *slog.Logger) *Broker {
	if log == nil {
		log = slog.Default()
	}
	b := &Broker{
		records:  records,
		log:      log,
		clients:  map[string]*Client{},
		events:   make(chan underhood.Event, eventQueue),
		quit:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	b.stop = records.Listen(b.enqueue)
	go b.run()
	return b
}

// enqueue takes a change from the writer without blocking it.
func (b *Broker) enqueue(e underhood.Event) {
	select {
	case b.events <- e:
	default:
		b.log.Error("realtime: event queue full; change not delivered", "collection", e.Collection, "action", e.Action, "id", e.Record.ID())
	}
}

func (b *Broker) run() {
	defer close(b.finished)
	for {
		select {
		case e := <-b.events:
			b.dispatch(e)
		case <-b.quit:
			return
		}
	}
}

// Close disconnects every client and stops the broker.
func (b *Broker) Close() {
	b.closed.Do(func() {
		b.stop()
		close(b.quit)
		<-b.finished
		b.mu.Lock()
		for id, c := range b.clients {
			c.close()
			delete(b.clients, id)
		}
		b.mu.Unlock()
	})
}

// Connect registers a new client.
func (b *Broker) Connect() *Client {
	c := &Client{ID: underhood.RandomString(40), out: make(chan Message, clientQueue), done: make(chan struct{}), subs: map[string]*Subscription{}}
	b.mu.Lock()
	b.clients[c.ID] = c
	b.mu.Unlock()
	return c
}

// Disconnect removes a client.
func (b *Broker) Disconnect(c *Client) {
	b.mu.Lock()
	delete(b.clients, c.ID)
	b.mu.Unlock()
	c.close()
}

// Clients counts the connected clients.
func (b *Broker) Clients() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.clients)
}

// Subscribe replaces the subscriptions of client id, made by auth (nil
// for a guest). A client that subscribed as someone cannot be taken over
// by a request of someone else.
func (b *Broker) Subscribe(id string, auth *underhood.Record, topics []string) error {
	b.mu.RLock()
	c := b.clients[id]
	b.mu.RUnlock()
	if c == nil {
		return underhood.Errorf(underhood.ENotFound, "Missing or invalid client id.")
	}
	if len(topics) > MaxSubscriptions {
		return underhood.Invalid("Failed to set the subscriptions.", map[string]any{"subscriptions": underhood.FieldError{
			Code: "validation_length_too_long", Message: "Too many subscriptions."}})
	}
	subs := make(map[string]*Subscription, len(topics))
	for i, t := range topics {
		s, err := b.parse(auth, t)
		if err != nil {
			return underhood.Invalid("Failed to set the subscriptions.", map[string]any{"subscriptions": map[string]any{
				itoa(i): underhood.FieldError{Code: "validation_invalid_subscription", Message: underhood.ErrorMessage(err)}}})
		}
		subs[t] = s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auth != nil && (auth == nil || auth.Collection.ID != c.auth.Collection.ID || auth.ID() != c.auth.ID()) {
		return underhood.Errorf(underhood.EForbidden, "The current and the previous request authorization don't match.")
	}
	c.auth = auth
	c.subs = subs
	return nil
}

// options is the JSON a topic carries in its "options" query parameter.
type options struct {
	Query   map[string]string `json:"query"`
	Headers map[string]string `json:"headers"`
}

// parse reads "coll/*" or "coll/ID", optionally followed by
// "?options=<url-encoded JSON {query:{filter,expand,fields,…}, headers:{…}}>".
func (b *Broker) parse(auth *underhood.Record, topic string) (*Subscription, error) {
	if topic == "" || len(topic) > maxTopicLength {
		return nil, underhood.Errorf(underhood.EInvalid, "Invalid topic.")
	}
	path, rawQuery, _ := strings.Cut(topic, "?")
	coll, id, ok := strings.Cut(path, "/")
	if !ok || coll == "" || id == "" {
		return nil, underhood.Errorf(underhood.EInvalid, "A topic is collection/* or collection/recordId.")
	}
	c, err := b.records.Collection(coll)
	if err != nil {
		return nil, underhood.Errorf(underhood.EInvalid, "Unknown collection %q.", coll)
	}
	s := &Subscription{Topic: topic, Collection: c.ID, RecordID: id, Query: map[string]string{}, Headers: map[string]string{}}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, underhood.Errorf(underhood.EInvalid, "Invalid topic options.")
		}
		if raw := q.Get("options"); raw != "" {
			var o options
			if err := json.Unmarshal([]byte(raw), &o); err != nil {
				return nil, underhood.Errorf(underhood.EInvalid, "Invalid topic options.")
			}
			for k, v := range o.Query {
				s.Query[k] = v
			}
			for k, v := range o.Headers {
				s.Headers[strings.ReplaceAll(strings.ToLower(k), "-", "_")] = v
			}
		}
	}
	s.Filter, s.Expand, s.Fields = s.Query["filter"], s.Query["expand"], s.Query["fields"]
	if s.Filter != "" {
		if err := b.records.CheckFilter(b.request(auth, s), c, s.Filter); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (b *Broker) request(auth *underhood.Record, s *Subscription) *record.Request {
	return &record.Request{Context: "realtime", Method: "GET", Headers: s.Headers, Query: s.Query, Auth: auth}
}

// dispatch sends one change to every client that may see it.
func (b *Broker) dispatch(e underhood.Event) {
	if e.Record == nil || e.Record.Collection == nil {
		return
	}
	b.mu.RLock()
	clients := make([]*Client, 0, len(b.clients))
	for _, c := range b.clients {
		clients = append(clients, c)
	}
	b.mu.RUnlock()
	// The rules of the collection as they are now, not as they were when
	// the client subscribed.
	coll, err := b.records.Collection(e.Record.Collection.ID)
	if err != nil {
		return
	}
	rec := e.Record.Clone()
	rec.Collection = coll
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range clients {
		c.mu.Lock()
		auth := c.auth
		var matched []*Subscription
		for _, s := range c.subs {
			if s.Collection == coll.ID && (s.RecordID == "*" || s.RecordID == rec.ID()) {
				matched = append(matched, s)
			}
		}
		c.mu.Unlock()
		for _, s := range matched {
			b.deliver(ctx, c, auth, s, e.Action, rec)
		}
	}
}

func (b *Broker) deliver(ctx context.Context, c *Client, auth *underhood.Record, s *Subscription, action string, rec *underhood.Record) {
	rule := rec.Collection.ListRule
	if s.RecordID != "*" {
		rule = rec.Collection.ViewRule
	}
	req := b.request(auth, s)
	ok, err := b.records.CanSee(ctx, req, rec, rule, s.Filter)
	if err != nil {
		b.log.Error("realtime: check rule", "collection", rec.Collection.Name, "err", err)
		return
	}
	if !ok {
		return
	}
	out, err := b.records.ExpandRecord(ctx, req, rec, s.Expand)
	if err != nil {
		b.log.Error("realtime: expand", "collection", rec.Collection.Name, "err", err)
		return
	}
	select {
	case c.out <- Message{Topic: s.Topic, Action: action, Record: out, Fields: s.Fields}:
	default:
		b.log.Warn("realtime: client too slow, disconnecting", "client", c.ID)
		b.Disconnect(c)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

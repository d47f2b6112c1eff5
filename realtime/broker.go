// Package realtime delivers record changes to subscribed clients. A Broker
// keeps the clients and their subscriptions and, for every committed
// change, sends each client the events its identity may see: a "coll/*"
// subscription is gated by the collection's list rule, "coll/ID" by its
// view rule, each checked in memory with the rules as they are at that
// moment. Subscribers with the same identity and the same topic (options
// included) form a group: the rule, the filter and the expansion are
// evaluated once per group per event, and the group's members share the
// resulting message, down to its encoded bytes. Groups are checked apart
// and at once, each with a budget of its own, so that a costly one delays
// and loses only its own events (check.go). A client takes what piled up
// for it in the feeds of its groups when its adapter is ready to write
// (ConnectFunc, feed.go), or is sent it on a channel (Connect), so that
// an event costs the broker one step per group rather than one per
// client. Besides record
// topics, a client may subscribe to a direct topic (TopicOAuth2), which no
// change reaches: a message on it is sent by SendOnce to that one client
// only. The protocol (SSE, WebSocket) lives in the adapters; this package
// knows none.
package realtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// everyone down. Adapters write every queued message before flushing,
	// so a client that keeps up rarely has more than a few.
	clientQueue = 256
	// eventQueue is how many changes may wait for dispatch.
	eventQueue = 8192
)

// TopicOAuth2 is the direct topic of PocketBase's OAuth2 popup flow: the
// SDK subscribes its realtime client to it and uses the client id as the
// OAuth2 state, and the provider's redirect (rest) sends the outcome to
// that client with SendOnce. No access rule applies to it: the only
// message it carries is for its own client.
const TopicOAuth2 = "@oauth2"

// isDirect reports whether topic is a direct topic, which takes no record
// events.
func isDirect(topic string) bool { return topic == TopicOAuth2 }

// Message is one event for the clients of one group: Topic is the
// subscription as the clients wrote it (the SSE event name), Record is
// presented and expanded for their identity, Fields is the subscription's
// projection. A message on a direct topic has no Record: Data is its JSON,
// sent as it is. A message is shared by the group's clients and must not
// be changed.
type Message struct {
	Topic  string
	Action string
	Record *underhood.Record
	Fields string
	Data   []byte
	// ExpandError, when set, says why Record comes without the expand the
	// subscription asked for: it would pass the realtime limit.
	ExpandError *underhood.FieldError

	// seq orders the messages of different groups as their events were
	// dispatched; it is the event's position, from 1.
	seq uint64
	// enc is the encodings made so far, replaced (never changed) under
	// encMu, so that the many readers of a shared message need no lock.
	encMu sync.Mutex
	enc   atomic.Pointer[[]encoding]
}

// encoding is one adapter's bytes of a message.
type encoding struct {
	kind string
	b    []byte
}

// Encoded returns encode(m), computed once per kind (an adapter's name
// for its encoding) for every client that shares m. It may be called
// from any goroutine.
func (m *Message) Encoded(kind string, encode func(*Message) []byte) []byte {
	if b, ok := m.encoded(kind); ok {
		return b
	}
	m.encMu.Lock()
	defer m.encMu.Unlock()
	if b, ok := m.encoded(kind); ok {
		return b
	}
	b := encode(m)
	var all []encoding
	if old := m.enc.Load(); old != nil {
		all = append(all, *old...)
	}
	all = append(all, encoding{kind, b})
	m.enc.Store(&all)
	return b
}

func (m *Message) encoded(kind string) ([]byte, bool) {
	if all := m.enc.Load(); all != nil {
		for _, e := range *all {
			if e.kind == kind {
				return e.b, true
			}
		}
	}
	return nil, false
}

// Subscription is one parsed topic.
type Subscription struct {
	Topic      string // as given
	Direct     bool   // a direct topic (TopicOAuth2): no collection, no events
	Collection string // name or id
	RecordID   string // "*" for every record
	Filter     string
	Expand     string
	Fields     string
	Headers    map[string]string
	Query      map[string]string
}

// Client is one connected subscriber. Its messages wait in the feeds of
// its groups until it takes them (ConnectFunc) or the broker sends them
// to its channel (Connect).
type Client struct {
	ID      string
	broker  *Broker
	out     chan *Message // a Connect client's
	wake    func()
	onClose func()
	done    chan struct{}
	once    sync.Once
	// asleep is set when Take found nothing: the next message calls wake.
	asleep atomic.Bool
	// pumping serializes the sends of a Connect client's messages.
	pumping sync.Mutex
	// waitingOn is the group whose horizon the client waits for, if any;
	// guarded by the broker's smu.
	waitingOn *group

	mu   sync.Mutex
	auth *underhood.Record
	subs map[string]*Subscription
	// groups are the groups of subs, each with the client's place in its
	// feed; changed under the broker's mu and mu both.
	groups []membership
	// direct is what SendOnce left for a ConnectFunc client to Take.
	direct []*Message
}

// membership is a client's part in one group.
type membership struct {
	g *group
	r *reader
}

// Messages is the stream of the client's events; Done is closed when the
// broker drops the client.
func (c *Client) Messages() <-chan *Message { return c.out }

// Done is closed when the client is disconnected by the broker.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) close() {
	c.once.Do(func() {
		close(c.done)
		if c.onClose != nil {
			c.onClose()
		}
	})
}

// send hands m to a Connect client without blocking; false means the
// client is too far behind.
func (c *Client) send(m *Message) bool {
	select {
	case c.out <- m:
		return true
	default:
		return false
	}
}

// sendDirect hands m, of a direct topic, to c; c.mu is held. A
// ConnectFunc client finds it at its next Take, and SendOnce wakes it.
func (c *Client) sendDirect(m *Message) bool {
	if c.out != nil {
		return c.send(m)
	}
	c.direct = append(c.direct, m)
	return true
}

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

// Take appends to dst the messages of a ConnectFunc client since its last
// Take, in the order they were dispatched, and returns it. When there are
// none, the client sleeps: the next message for it calls its wake.
//
// A message waits while another of the client's groups has not yet been
// checked for an earlier event (its horizon is before the message's
// event): the client is woken when that group's horizon moves.
func (c *Client) Take(dst []*Message) []*Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(dst)
	c.asleep.Store(true)
	dst = append(dst, c.direct...)
	c.direct = nil
	for {
		var done bool
		if dst, done = c.takeBefore(dst); done {
			break
		}
	}
	if len(dst) == n {
		return dst
	}
	c.asleep.Store(false)
	if len(c.groups) > 1 {
		slices.SortStableFunc(dst[n:], func(a, b *Message) int { return cmp.Compare(a.seq, b.seq) })
	}
	return dst
}

// noLimit is a horizon no event reaches.
const noLimit = math.MaxUint64

// horizons returns the two earliest horizons among c's groups, with the
// group of the first and whether that group had no event waiting. Such a
// group's horizon is the position after the last event dispatched, read
// before the groups' own: a message of a later event may already be in a
// feed, but the other groups got that event first. c.mu is held.
func (c *Client) horizons() (h1, h2 uint64, g1 *group, idle bool) {
	h1, h2 = noLimit, noLimit
	if len(c.groups) < 2 {
		return h1, h2, nil, false
	}
	fanned := c.broker.fanned.Load()
	for _, m := range c.groups {
		h, none := m.g.horizon.Load(), false
		if h == 0 {
			h, none = fanned+1, true
		}
		switch {
		case h < h1:
			h1, h2, g1, idle = h, h1, m.g, none
		case h < h2:
			h2 = h
		}
	}
	return h1, h2, g1, idle
}

// takeBefore takes from each of c's feeds the messages of events before
// the earliest horizon of c's other groups. When it held some back, it
// registers c to be woken once the group that held them has checked its
// event; it reports false when that happened meanwhile, or when the hold
// was only for a dispatch under way, so that Take tries again. c.mu is
// held.
func (c *Client) takeBefore(dst []*Message) ([]*Message, bool) {
	h1, h2, g1, idle := c.horizons()
	anyHeld := false
	for _, m := range c.groups {
		limit := h1
		if m.g == g1 {
			// A group's own messages never wait for it; and they are all
			// before h1, so that they never wait at all.
			limit = h2
		}
		var held bool
		dst, held = m.r.take(dst, limit)
		anyHeld = anyHeld || held
	}
	if !anyHeld {
		return dst, true
	}
	if idle {
		return dst, false
	}
	return dst, c.broker.waitFor(c, g1, h1)
}

// group is the clients subscribed to one topic with one identity: they
// read its feed.
type group struct {
	key     string
	sub     *Subscription
	auth    *underhood.Record
	feed    feed
	readers int // guarded by the broker's mu

	// The group's checks, guarded by the broker's smu (check.go).
	jobs []job // events waiting, the first ones being checked when running
	// inflight is the first events of jobs, taken by a checker; the
	// fields after it are the checker's, read under smu by finish.
	inflight   []job
	checkedNow int           // how many of inflight were checked
	costNow    time.Duration // the most one of them cost
	overBudget bool          // one went over the budget
	running    bool          // a checker has it
	queued     bool          // in a queue of the checkers
	gone       bool          // dropped: its events are not checked any more
	checked    bool          // cost is known
	cost       time.Duration
	waiters    []*Client // held back by this group's horizon
	// horizon is the position of the first event waiting for the group,
	// 0 when none does; written under smu, read by Take without it.
	horizon atomic.Uint64
}

// Broker keeps the realtime clients of one node.
type Broker struct {
	records *record.Service
	log     *slog.Logger

	mu      sync.RWMutex
	clients map[string]*Client
	// groups indexes the groups by collection id and group key.
	groups map[string]map[string]*group
	// seq numbers the dispatched events; used by dispatch only.
	seq uint64

	events   chan underhood.Event
	stop     func()
	quit     chan struct{}
	finished chan struct{}
	closed   sync.Once
	// fanned is the position of the last event queued for its groups.
	fanned atomic.Uint64

	// The checkers (check.go): smu guards the fields below it and the
	// groups' checks.
	ctx    context.Context // cancelled by Close, ending every check
	cancel context.CancelFunc
	wg     sync.WaitGroup // the checkers and their probes
	smu    sync.Mutex
	work   *sync.Cond // on smu: a checker waits for a group
	limits Limits
	// fastQueue and slowQueue are the groups waiting for a checker.
	fastQueue, slowQueue []*group
	// checkers counts the checkers, idle the ones waiting to be woken;
	// slowRunning counts the checks of slow or unknown cost under way.
	checkers, idle, slowRunning int
	closing                     bool

	// peers reaches the clients of the other nodes (UsePeers).
	peers Peers
}

// Peers sends a direct message to a client connected to another node:
// SendOnce's contract, across the cluster (events.NATS).
type Peers interface {
	SendOnce(id, topic string, data []byte) error
}

// UsePeers makes SendOnce try the other nodes when the client is not
// connected here. Call it before serving.
func (b *Broker) UsePeers(p Peers) { b.peers = p }

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
		groups:   map[string]map[string]*group{},
		events:   make(chan underhood.Event, eventQueue),
		quit:     make(chan struct{}),
		finished: make(chan struct{}),
		limits:   Limits{}.withDefaults(),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.work = sync.NewCond(&b.smu)
	b.stop = records.Listen(b.enqueue)
	go b.run()
	return b
}

// Inject dispatches a change committed elsewhere (by another node, as
// NATS tells): the same rules apply as to the changes of this node.
func (b *Broker) Inject(e underhood.Event) { b.enqueue(e) }

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
		b.smu.Lock()
		b.closing = true
		b.idle = 0
		b.work.Broadcast()
		b.smu.Unlock()
		b.cancel()
		b.wg.Wait()
		b.mu.Lock()
		for id, c := range b.clients {
			c.close()
			delete(b.clients, id)
		}
		b.groups = map[string]map[string]*group{}
		b.mu.Unlock()
	})
}

// Connect registers a new client whose messages are sent to
// Client.Messages.
func (b *Broker) Connect() *Client {
	c := &Client{ID: underhood.RandomString(40), broker: b, out: make(chan *Message, clientQueue), done: make(chan struct{}), subs: map[string]*Subscription{}}
	c.wake = func() { b.pump(c) }
	c.asleep.Store(true)
	b.add(c)
	return c
}

// pump sends what a Connect client has to take to its channel, and
// disconnects it when the channel is full. It is the client's wake: it
// runs on the goroutine that published the message, never blocks, and
// one pump at a time keeps the client's messages in order.
func (b *Broker) pump(c *Client) {
	c.pumping.Lock()
	var msgs []*Message
	full := false
	for !full {
		if msgs = c.Take(msgs[:0]); len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if !c.send(m) {
				full = true
				break
			}
		}
	}
	c.pumping.Unlock()
	if full {
		b.log.Warn("realtime: client too slow, disconnecting", "client", c.ID)
		b.Disconnect(c)
	}
}

// ConnectFunc registers a new client whose messages wait for it to Take
// them. wake is called, on the broker's goroutine or SendOnce's caller (it
// must not block), when a message comes after a Take that found none;
// onClose (may be nil) runs once when the client is dropped, by
// Disconnect, for being too slow, or because the broker closes. An adapter
// that writes from a pool of its own needs no goroutine and no queue per
// idle client, and the broker's work per event does not grow with the
// number of such clients.
func (b *Broker) ConnectFunc(wake func(), onClose func()) *Client {
	c := &Client{ID: underhood.RandomString(40), broker: b, wake: wake, onClose: onClose, done: make(chan struct{}), subs: map[string]*Subscription{}}
	c.asleep.Store(true)
	b.add(c)
	return c
}

func (b *Broker) add(c *Client) {
	b.mu.Lock()
	b.clients[c.ID] = c
	b.mu.Unlock()
}

// Disconnect removes a client.
func (b *Broker) Disconnect(c *Client) {
	b.mu.Lock()
	delete(b.clients, c.ID)
	c.mu.Lock()
	b.leaveGroups(c)
	c.mu.Unlock()
	b.mu.Unlock()
	c.close()
}

// leaveGroups takes c out of its groups. b.mu and c.mu are held.
func (b *Broker) leaveGroups(c *Client) {
	for _, m := range c.groups {
		b.leave(m.g, m.r)
	}
	c.groups = nil
}

// regroup puts c in the group of each of its subscriptions and takes it
// out of the others. In a group it stays in, it keeps its place in the
// feed, so that nothing waiting there is lost. b.mu and c.mu are held.
func (b *Broker) regroup(c *Client, auth *underhood.Record, subs map[string]*Subscription) {
	ident := identityKey(auth)
	old := make(map[*group]*reader, len(c.groups))
	for _, m := range c.groups {
		old[m.g] = m.r
	}
	groups := make([]membership, 0, len(subs))
	for t, s := range subs {
		if s.Direct {
			continue // no change is dispatched to a direct topic
		}
		key := ident + "\x00" + t
		byKey := b.groups[s.Collection]
		if byKey == nil {
			byKey = map[string]*group{}
			b.groups[s.Collection] = byKey
		}
		g := byKey[key]
		if g == nil {
			g = &group{key: key, sub: s, auth: auth}
			byKey[key] = g
		}
		if r, ok := old[g]; ok {
			groups = append(groups, membership{g, r})
			delete(old, g)
			continue
		}
		g.readers++
		groups = append(groups, membership{g, g.feed.join(c, c.asleep.Load())})
	}
	for g, r := range old {
		b.leave(g, r)
	}
	c.groups = groups
}

// leave takes c, with its reader r of g's feed, out of g, and drops g
// when nobody is left. b.mu is held.
func (b *Broker) leave(g *group, r *reader) {
	g.feed.leave(r)
	g.readers--
	if g.readers > 0 {
		return
	}
	byKey := b.groups[g.sub.Collection]
	delete(byKey, g.key)
	if len(byKey) == 0 {
		delete(b.groups, g.sub.Collection)
	}
	b.smu.Lock()
	g.gone = true
	b.dropJobs(g)
	b.smu.Unlock()
}

// identityKey names the identity auth as rules see it: the record, as it
// was when it subscribed (its updated time changes with its data).
func identityKey(auth *underhood.Record) string {
	if auth == nil {
		return "guest"
	}
	return auth.Collection.ID + "/" + auth.ID() + "/" + auth.String("updated")
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
	b.mu.Lock()
	defer b.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auth != nil && (auth == nil || auth.Collection.ID != c.auth.Collection.ID || auth.ID() != c.auth.ID()) {
		return underhood.Errorf(underhood.EForbidden, "The current and the previous request authorization don't match.")
	}
	if b.clients[c.ID] != c {
		return underhood.Errorf(underhood.ENotFound, "Missing or invalid client id.") // disconnected meanwhile
	}
	c.auth = auth
	c.subs = subs
	b.regroup(c, auth, subs)
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
	if isDirect(topic) {
		return &Subscription{Topic: topic, Direct: true}, nil
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

// SendOnce sends data (JSON) on the direct topic to client id alone and
// ends that subscription, so that one subscription gets one message: a
// second send with the same id finds nothing. A client that is not
// connected to this node is looked for on the others (UsePeers). It fails
// with ENotFound, sending nothing, when no connected client has that id or
// the client is not subscribed to topic.
func (b *Broker) SendOnce(id, topic string, data []byte) error {
	err := b.SendOnceHere(id, topic, data)
	if b.peers != nil && errors.Is(err, errNoClient) {
		return b.peers.SendOnce(id, topic, data)
	}
	return err
}

// errNoClient is SendOnce's error for an id no client of this node has.
var errNoClient = underhood.Errorf(underhood.ENotFound, "Missing or invalid client id.")

// SendOnceHere is SendOnce among the clients of this node only: how a
// node answers the others' Peers.
func (b *Broker) SendOnceHere(id, topic string, data []byte) error {
	if !isDirect(topic) {
		return underhood.Errorf(underhood.EInvalid, "Not a direct topic.")
	}
	m := &Message{Topic: topic, Data: data}
	b.mu.RLock()
	c := b.clients[id]
	if c == nil {
		b.mu.RUnlock()
		return errNoClient
	}
	// Taking the subscription and sending happen under the client's lock:
	// two concurrent sends cannot both find it.
	c.mu.Lock()
	_, subscribed := c.subs[topic]
	delete(c.subs, topic)
	sent := subscribed && c.sendDirect(m)
	c.mu.Unlock()
	b.mu.RUnlock()
	if sent && c.wake != nil && c.asleep.CompareAndSwap(true, false) {
		c.wake()
	}
	switch {
	case !subscribed:
		return underhood.Errorf(underhood.ENotFound, "The client is not subscribed to %s.", topic)
	case !sent:
		b.log.Warn("realtime: client too slow, disconnecting", "client", c.ID)
		b.Disconnect(c)
		return underhood.Errorf(underhood.ENotFound, "Missing or invalid client id.")
	}
	return nil
}

func (b *Broker) request(auth *underhood.Record, s *Subscription) *record.Request {
	return &record.Request{Context: "realtime", Method: "GET", Headers: s.Headers, Query: s.Query, Auth: auth}
}

// dispatch queues one change for the checks of every group it concerns
// (check.go), with the rules of the collection as they are now, not as
// they were when the clients subscribed. It never waits for a check.
func (b *Broker) dispatch(e underhood.Event) {
	if e.Record == nil || e.Record.Collection == nil {
		return
	}
	coll, err := b.records.Collection(e.Record.Collection.ID)
	if err != nil {
		return
	}
	rec := e.Record.Clone()
	rec.Collection = coll

	b.mu.RLock()
	var matched []*group
	for _, g := range b.groups[coll.ID] {
		if g.sub.RecordID == "*" || g.sub.RecordID == rec.ID() {
			matched = append(matched, g)
		}
	}
	b.mu.RUnlock()
	b.seq++
	for _, g := range b.fanOut(job{seq: b.seq, action: e.Action, rec: rec}, matched) {
		b.log.Warn("realtime: a subscription's checks fell too far behind; disconnecting its clients",
			"collection", coll.Name, "topic", g.sub.Topic)
		b.disconnectGroup(g)
	}
}

// evaluate returns the message of rec for group g, or nil when the
// group's identity may not see it.
func (b *Broker) evaluate(ctx context.Context, g *group, action string, rec *underhood.Record) *Message {
	s := g.sub
	rule := rec.Collection.ListRule
	if s.RecordID != "*" {
		rule = rec.Collection.ViewRule
	}
	req := b.request(g.auth, s)
	ok, err := b.records.CanSee(ctx, req, rec, rule, s.Filter)
	if err != nil {
		b.log.Error("realtime: check rule", "collection", rec.Collection.Name, "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	out, err := b.records.ExpandRecord(ctx, req, rec, s.Expand)
	expandErr := record.ExpandTooLarge(err)
	if expandErr != nil {
		out, err = b.records.Present(req, rec), nil
	}
	if err != nil {
		b.log.Error("realtime: expand", "collection", rec.Collection.Name, "err", err)
		return nil
	}
	return &Message{Topic: s.Topic, Action: action, Record: out, Fields: s.Fields, ExpandError: expandErr}
}

func itoa(i int) string { return strconv.Itoa(i) }

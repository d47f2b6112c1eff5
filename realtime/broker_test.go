package realtime_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

type env struct {
	t       testing.TB
	records *record.Service
	broker  *realtime.Broker
	users   map[string]*underhood.Record
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir()}, log)
	broker := realtime.New(records, log)
	t.Cleanup(broker.Close)
	e := &env{t: t, records: records, broker: broker, users: map[string]*underhood.Record{}}
	sys := records.SystemRequest()
	for _, name := range []string{"alice", "bob"} {
		u, err := records.Create(ctx, sys, "users", map[string]any{"email": name + "@example.com", "password": "1234567890", "passwordConfirm": "1234567890"}, "")
		if err != nil {
			t.Fatal(err)
		}
		full, err := records.FindRecord(ctx, u.Collection, u.ID())
		if err != nil {
			t.Fatal(err)
		}
		e.users[name] = full
	}
	rule := underhood.RuleOf("owner = @request.auth.id || public = true")
	if _, err := records.SaveCollection(ctx, sys.Auth, "", &underhood.Collection{Name: "posts", Type: underhood.TypeBase, ListRule: rule, ViewRule: rule,
		Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}, {Name: "public", Type: underhood.FieldBool},
			{Name: "owner", Type: underhood.FieldRelation, CollectionID: underhood.UsersID, MaxSelect: 1}}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect subscribes a new client as who ("" = guest) to topics.
func (e *env) connect(who string, topics ...string) *realtime.Client {
	e.t.Helper()
	c := e.broker.Connect()
	e.t.Cleanup(func() { e.broker.Disconnect(c) })
	if err := e.broker.Subscribe(c.ID, e.users[who], topics); err != nil {
		e.t.Fatalf("Subscribe(%s, %v) = %v", who, topics, err)
	}
	return c
}

func (e *env) post(title, owner string, public bool) *underhood.Record {
	e.t.Helper()
	r, err := e.records.Create(context.Background(), e.records.SystemRequest(), "posts", map[string]any{"title": title, "owner": e.users[owner].ID(), "public": public}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// titles drains what c received within a short while.
func titles(c *realtime.Client) []string {
	var out []string
	timeout := time.After(300 * time.Millisecond)
	for {
		select {
		case m := <-c.Messages():
			out = append(out, m.Action+" "+m.Record.String("title"))
		case <-timeout:
			return out
		}
	}
}

func TestBrokerGroupsShareEvaluationButNotVisibility(t *testing.T) {
	e := newEnv(t)
	alice1 := e.connect("alice", "posts/*")
	alice2 := e.connect("alice", "posts/*")
	bob := e.connect("bob", "posts/*")
	guest := e.connect("", "posts/*")
	aliceFiltered := e.connect("alice", `posts/*?options={"query":{"filter":"title ~ 'x'"}}`)

	e.post("alice private", "alice", false)
	m1, m2 := <-alice1.Messages(), <-alice2.Messages()
	if m1 != m2 {
		t.Errorf("two clients of one identity and topic got different messages; want one shared message")
	}
	if m1.Record.String("title") != "alice private" {
		t.Errorf("alice got %v", m1.Record.Data)
	}
	e.post("bob public x", "bob", true)

	tests := []struct {
		name string
		c    *realtime.Client
		want string
	}{
		{"alice, first connection", alice1, "create bob public x"},
		{"alice, second connection", alice2, "create bob public x"},
		{"bob", bob, "create bob public x"},
		{"guest", guest, "create bob public x"},
		{"alice with a filter", aliceFiltered, "create bob public x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := titles(tt.c); len(got) != 1 || got[0] != tt.want {
				t.Errorf("received %q, want [%q]", got, tt.want)
			}
		})
	}

	// A rule change applies to the open subscriptions at once.
	ctx := context.Background()
	posts, _ := e.records.Collection("posts")
	changed := *posts
	changed.ListRule = underhood.RuleOf("public = true")
	if _, err := e.records.SaveCollection(ctx, e.records.SystemRequest().Auth, posts.ID, &changed); err != nil {
		t.Fatal(err)
	}
	e.post("alice private 2", "alice", false)
	if got := titles(alice1); len(got) != 0 {
		t.Errorf("after the rule change alice got %q, want nothing", got)
	}

	// Resubscribing moves a client between groups; disconnecting removes it.
	if err := e.broker.Subscribe(bob.ID, e.users["bob"], nil); err != nil {
		t.Fatal(err)
	}
	e.broker.Disconnect(alice2)
	e.post("public again", "bob", true)
	if got := titles(bob); len(got) != 0 {
		t.Errorf("bob without subscriptions got %q", got)
	}
	if got := titles(alice1); len(got) != 1 {
		t.Errorf("alice's remaining connection got %q, want the public post", got)
	}
	if n := e.broker.Clients(); n != 4 {
		t.Errorf("Clients() = %d, want 4", n)
	}
}

func TestBrokerDropsASlowClientOnly(t *testing.T) {
	e := newEnv(t)
	slow := e.connect("", "posts/*")
	fast := e.connect("", "posts/*")
	got := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-fast.Messages():
				n++
			case <-time.After(time.Second):
				got <- n
				return
			}
		}
	}()
	const posts = 300 // more than a client's queue
	for i := 0; i < posts; i++ {
		e.post("p", "bob", true)
	}
	select {
	case <-slow.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a client that never reads was not disconnected")
	}
	if n := <-got; n != posts {
		t.Errorf("the client that reads got %d events, want %d", n, posts)
	}
}

func TestBrokerSendOnce(t *testing.T) {
	e := newEnv(t)
	waiting := e.connect("", realtime.TopicOAuth2)
	other := e.connect("alice", realtime.TopicOAuth2)
	both := e.connect("bob", realtime.TopicOAuth2, "posts/*")
	postsOnly := e.connect("bob", "posts/*")

	tests := []struct {
		name     string
		id       string
		topic    string
		wantCode string // "" = sent
		to       *realtime.Client
	}{
		{"to the waiting client", waiting.ID, realtime.TopicOAuth2, "", waiting},
		{"once only", waiting.ID, realtime.TopicOAuth2, underhood.ENotFound, nil},
		{"an unknown client", "no-such-client", realtime.TopicOAuth2, underhood.ENotFound, nil},
		{"a client not subscribed to the topic", postsOnly.ID, realtime.TopicOAuth2, underhood.ENotFound, nil},
		{"a record topic is not direct", postsOnly.ID, "posts/*", underhood.EInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(`{"state":"` + tt.id + `","code":"c"}`)
			err := e.broker.SendOnce(tt.id, tt.topic, data)
			if got := underhood.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("SendOnce(%s) = %v, want code %q", tt.name, err, tt.wantCode)
			}
			// A channel client gets its message before SendOnce returns:
			// every queue can be checked at once.
			for _, c := range []*realtime.Client{waiting, other, both, postsOnly} {
				n := len(c.Messages())
				switch {
				case c == tt.to && n != 1:
					t.Errorf("the addressee has %d messages, want 1", n)
				case c != tt.to && n != 0:
					t.Errorf("client %s has %d messages, want none", c.ID, n)
				}
			}
			if tt.to == nil {
				return
			}
			m := <-tt.to.Messages()
			if m.Topic != realtime.TopicOAuth2 || m.Record != nil || string(m.Data) != string(data) {
				t.Errorf("message = {%s %v %s}, want {%s <nil> %s}", m.Topic, m.Record, m.Data, realtime.TopicOAuth2, data)
			}
		})
	}

	// A change reaches the record topic of a client that also waits on
	// @oauth2, and nobody through @oauth2. The broker dispatches changes
	// in order: once the second has arrived, the first went everywhere.
	e.post("first", "bob", true)
	e.post("second", "bob", true)
	for _, want := range []string{"first", "second"} {
		if m := <-both.Messages(); m.Record == nil || m.Record.String("title") != want {
			t.Fatalf("posts/* subscriber got %+v, want the post %q", m, want)
		}
	}
	if n := len(other.Messages()); n != 0 {
		t.Errorf("a client subscribed to @oauth2 only got %d record events", n)
	}
}

// A ConnectFunc client is woken when a message comes after it took all
// it had, takes every message since, in the order of the events even
// across its subscriptions, shares each message with the clients of its
// group, and is dropped once it is too far behind.
func TestBrokerFuncClients(t *testing.T) {
	e := newEnv(t)
	woken := make(chan string, 100)
	closed := make(chan string, 10)
	connect := func(name string, topics ...string) *realtime.Client {
		t.Helper()
		wake := func() {
			select {
			case woken <- name:
			default: // wake must not block
			}
		}
		c := e.broker.ConnectFunc(wake, func() { closed <- name })
		t.Cleanup(func() { e.broker.Disconnect(c) })
		if err := e.broker.Subscribe(c.ID, nil, topics); err != nil {
			t.Fatalf("Subscribe(%v) = %v", topics, err)
		}
		return c
	}
	a := connect("a", "posts/*", `posts/*?options={"query":{"filter":"title ~ 'x'"}}`)
	b := connect("b", "posts/*")

	e.post("x1", "bob", true)
	for _, want := range []string{"a", "b"} {
		select {
		case <-woken:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake for %s", want)
		}
	}
	e.post("y", "bob", true)
	e.post("x2", "bob", true)
	time.Sleep(300 * time.Millisecond)
	if n := len(woken); n != 0 {
		t.Errorf("%d more wakes while nobody took anything, want none", n)
	}
	// take takes from c until it has n messages: dispatch publishes an
	// event to a client's groups one by one, in no set order, so a wake
	// may come when only some of them have it.
	take := func(c *realtime.Client, n int) []*realtime.Message {
		t.Helper()
		var ms []*realtime.Message
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			if ms = c.Take(ms); len(ms) >= n {
				return ms
			}
			if time.Now().After(deadline) {
				t.Fatalf("took %d messages, want %d", len(ms), n)
			}
		}
	}
	// The two messages of one event may come in either order.
	var got []string
	var shared *realtime.Message
	ms := take(a, 5)
	for _, m := range ms {
		got = append(got, m.Record.String("title"))
		if m.Topic == "posts/*" && shared == nil {
			shared = m
		}
	}
	if want := []string{"x1", "x1", "y", "x2", "x2"}; !slices.Equal(got, want) {
		t.Errorf("a took %q, want %q", got, want)
	}
	// a has x2 under posts/*, so b, in that group too, has all three.
	if bs := b.Take(nil); len(bs) != 3 || bs[0] != shared {
		t.Errorf("b took %d messages (first shared with a: %v), want 3, the first shared", len(bs), len(bs) > 0 && bs[0] == shared)
	}
	if ms := a.Take(nil); len(ms) != 0 {
		t.Errorf("a took %d messages again, want none", len(ms))
	}
	for len(woken) > 0 { // from take finding a part of an event
		<-woken
	}
	e.post("x3", "bob", true)
	select {
	case name := <-woken:
		if name != "a" {
			t.Errorf("woken %q, want a, the one asleep", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no wake after the clients took everything and a post came")
	}
	take(a, 2)

	// Changing its subscriptions loses nothing waiting under the topics
	// a client keeps. w, in a's posts/* group, is woken once x4 is in
	// that group's feed.
	wWoken := make(chan struct{}, 1)
	w := e.broker.ConnectFunc(func() {
		select {
		case wWoken <- struct{}{}:
		default:
		}
	}, nil)
	if err := e.broker.Subscribe(w.ID, nil, []string{"posts/*"}); err != nil {
		t.Fatal(err)
	}
	w.Take(nil)
	e.post("x4", "bob", true)
	select {
	case <-wWoken:
	case <-time.After(5 * time.Second):
		t.Fatal("x4 never reached the posts/* group")
	}
	e.broker.Disconnect(w)
	if err := e.broker.Subscribe(a.ID, nil, []string{"posts/*", "posts/none"}); err != nil {
		t.Fatal(err)
	}
	if ms = a.Take(nil); len(ms) != 1 || ms[0].Record.String("title") != "x4" || ms[0].Topic != "posts/*" {
		t.Errorf("after resubscribing a took %d messages, want x4 on posts/*", len(ms))
	}

	// b takes nothing from here on: more than a reader may fall behind.
	posts, _ := e.records.Collection("posts")
	rec := ms[0].Record.Clone()
	rec.Collection = posts
	// a waits for each event as a client does when it is woken: events
	// are checked apart from Inject, and a burst faster than the checks
	// would pass the group's backlog, which a shares with b.
	for range 1100 {
		e.broker.Inject(underhood.Event{Action: "update", Collection: "posts", Record: rec})
		take(a, 1)
	}
	select {
	case name := <-closed:
		if name != "b" {
			t.Errorf("%s was dropped, want b, the one that did not take", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a client that never takes was not dropped")
	}
}

package realtime_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

type env struct {
	t       *testing.T
	records *record.Service
	broker  *realtime.Broker
	users   map[string]*underhood.Record
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	records, err := record.New(ctx, store, log)
	if err != nil {
		t.Fatal(err)
	}
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

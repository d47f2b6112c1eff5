package events_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/events"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// natsURL returns $NATS_URL or skips the test.
func natsURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("NATS_URL")
	if u == "" {
		t.Skip("NATS_URL is not set: skipping the NATS tests (.ci/run sets it to the local server)")
	}
	return u
}

func TestNATSPublishesEveryEvent(t *testing.T) {
	url := natsURL(t)
	e := newEnv(t)
	ctx := context.Background()
	// A subject of our own per test run, so parallel runs do not mix: the
	// collection has a random name.
	coll := "n" + strings.ToLower(underhood.RandomString(8))
	if _, err := e.records.SaveCollection(ctx, e.records.SystemRequest().Auth, "", &underhood.Collection{
		Name: coll, Type: underhood.TypeBase, Fields: []*underhood.Field{{Name: "text", Type: underhood.FieldText}}}); err != nil {
		t.Fatal(err)
	}
	watcher, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	msgs := make(chan *nats.Msg, 100)
	sub, err := watcher.ChanSubscribe(events.SubjectPrefix+"."+coll+".>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	watcher.Flush()

	bus, err := events.NewNATS(ctx, url, e.records, quiet, events.NATSOptions{Stream: events.DefaultStream})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	relay, err := events.NewRelay(ctx, e.store, e.records, quiet, events.RelayOptions{Poll: 50 * time.Millisecond}, bus)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	r := e.create(coll, map[string]any{"text": "a"})
	if _, err := e.records.Update(ctx, e.records.SystemRequest(), coll, r.ID(), map[string]any{"text": "b"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.records.Delete(ctx, e.records.SystemRequest(), coll, r.ID()); err != nil {
		t.Fatal(err)
	}
	list, _ := e.records.ReadOutbox(ctx, 0, 1000)
	var want []record.OutboxEvent
	for _, ev := range list {
		if ev.Collection == coll && ev.RecordID == r.ID() {
			want = append(want, ev)
		}
	}
	for i, w := range want {
		select {
		case m := <-msgs:
			var got map[string]any
			json.Unmarshal(m.Data, &got)
			if m.Subject != events.Subject(coll, w.Action) || got["id"] != w.ID || m.Header.Get(nats.MsgIdHdr) != w.ID {
				t.Errorf("message %d = %s %s (Nats-Msg-Id %s), want %s with event %s", i, m.Subject, m.Data, m.Header.Get(nats.MsgIdHdr), events.Subject(coll, w.Action), w.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d (%s) not published within 5s", i, w.Action)
		}
	}

	// The JetStream stream keeps each event once, also when a batch is
	// published again (a retry after a crash, or another node).
	if _, err := bus.Consume(ctx, want); err != nil {
		t.Fatalf("publishing the batch again: %v", err)
	}
	js, err := jetstream.New(watcher)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, events.DefaultStream)
	if err != nil {
		t.Fatalf("the events' stream: %v", err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectPrefix + "." + coll + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for m := range batch.Messages() {
		kept = append(kept, m.Headers().Get(nats.MsgIdHdr))
	}
	var wantIDs []string
	for _, w := range want {
		wantIDs = append(wantIDs, w.ID)
	}
	if strings.Join(kept, ",") != strings.Join(wantIDs, ",") {
		t.Errorf("the stream keeps events %v, want %v, each once", kept, wantIDs)
	}
}

// node is one server process's share of a cluster: its own store
// connection, service, broker, relay and NATS connection.
type node struct {
	records *record.Service
	broker  *realtime.Broker
}

func startNode(t *testing.T, dsn, url string) *node {
	t.Helper()
	ctx := context.Background()
	records, store := recordtest.OpenStore(t, sqlstore.Config{Dialect: postgres.Dialect{}, DSN: dsn}, quiet)
	broker := realtime.New(records, quiet)
	t.Cleanup(broker.Close)
	bus, err := events.NewNATS(ctx, url, records, quiet, events.NATSOptions{Stream: events.DefaultStream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.OnRemote(broker.Inject); err != nil {
		t.Fatal(err)
	}
	if err := bus.OnDirect(broker.SendOnceHere); err != nil {
		t.Fatal(err)
	}
	broker.UsePeers(bus)
	relay, err := events.NewRelay(ctx, store, records, quiet, events.RelayOptions{Poll: 50 * time.Millisecond}, bus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Close)
	return &node{records: records, broker: broker}
}

// Realtime across nodes needs a database the nodes share: on SQLite each
// process has its own, so this runs on PostgreSQL (DATABASE_URL) and NATS.
func TestNATSRealtimeAcrossNodes(t *testing.T) {
	url := natsURL(t)
	dsn := storetest.PostgresDSN(t) // skips without DATABASE_URL: two nodes on SQLite are not a cluster
	a := startNode(t, dsn, url)
	ctx := context.Background()
	coll := "x" + strings.ToLower(underhood.RandomString(8))
	if _, err := a.records.SaveCollection(ctx, a.records.SystemRequest().Auth, "", &underhood.Collection{
		Name: coll, Type: underhood.TypeBase, ListRule: underhood.RuleOf("public = true"),
		Fields: []*underhood.Field{{Name: "text", Type: underhood.FieldText}, {Name: "public", Type: underhood.FieldBool}}}); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, dsn, url)
	subscribe := func(n *node) *realtime.Client {
		c := n.broker.Connect()
		if err := n.broker.Subscribe(c.ID, nil, []string{coll + "/*"}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	onA, onB := subscribe(a), subscribe(b)
	for _, data := range []map[string]any{{"text": "hidden"}, {"text": "shown", "public": true}} {
		if _, err := a.records.Create(ctx, a.records.SystemRequest(), coll, data, ""); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]*realtime.Client{"node A (the writer)": onA, "node B": onB} {
		var got []string
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case m := <-c.Messages():
				got = append(got, m.Action+" "+m.Record.String("text"))
			case <-timeout:
				break wait
			}
			if len(got) == 1 {
				// Anything more (a copy through NATS) would come soon.
				timeout = time.After(500 * time.Millisecond)
			}
		}
		if strings.Join(got, ",") != "create shown" {
			t.Errorf("a guest on %s received %q, want the public create once", name, got)
		}
	}
}

// TestNATSDirectAcrossNodes: the OAuth2 popup's redirect reaches node A
// while the SDK's realtime client waits on node B: A hands the code to B's
// client, once; an unknown client is not found anywhere.
func TestNATSDirectAcrossNodes(t *testing.T) {
	url := natsURL(t)
	dsn := storetest.PostgresDSN(t)
	a, b := startNode(t, dsn, url), startNode(t, dsn, url)
	waiting, other := b.broker.Connect(), b.broker.Connect()
	if err := b.broker.Subscribe(waiting.ID, nil, []string{realtime.TopicOAuth2}); err != nil {
		t.Fatal(err)
	}
	if err := b.broker.Subscribe(other.ID, nil, []string{realtime.TopicOAuth2}); err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"state":"` + waiting.ID + `","code":"c0de"}`)
	if err := a.broker.SendOnce(waiting.ID, realtime.TopicOAuth2, data); err != nil {
		t.Fatalf("SendOnce on node A to a client of node B = %v", err)
	}
	select {
	case m := <-waiting.Messages():
		if m.Topic != realtime.TopicOAuth2 || string(m.Data) != string(data) {
			t.Errorf("the waiting client got %s %s, want %s on %s", m.Topic, m.Data, data, realtime.TopicOAuth2)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting client on node B got nothing")
	}
	if err := a.broker.SendOnce(waiting.ID, realtime.TopicOAuth2, data); underhood.ErrorCode(err) != underhood.ENotFound {
		t.Errorf("a second SendOnce to the same client = %v, want not found (one message per subscription)", err)
	}
	if err := a.broker.SendOnce("no-such-client", realtime.TopicOAuth2, data); underhood.ErrorCode(err) != underhood.ENotFound {
		t.Errorf("SendOnce to an unknown client = %v, want not found", err)
	}
	select {
	case m := <-other.Messages():
		t.Errorf("another client got %s %s", m.Topic, m.Data)
	default:
	}
}

// Nodes on one PostgreSQL database write at once; one relay must still
// see every event once, and sequences stay unique and gapless. (Write
// transactions of all nodes take turns, sqlstore/postgres LockWrites:
// ids drawn by concurrent transactions could otherwise commit out of
// order, and a relay past a larger id would skip a smaller one.)
func TestRelayMissesNothingWhenNodesWriteAtOnce(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	open := func() (*record.Service, *sqlstore.Store) {
		return recordtest.OpenStore(t, sqlstore.Config{Dialect: postgres.Dialect{}, DSN: dsn}, quiet)
	}
	a, aStore := open()
	if _, err := a.SaveCollection(ctx, a.SystemRequest().Auth, "", &underhood.Collection{
		Name: "notes", Type: underhood.TypeBase, Fields: []*underhood.Field{{Name: "text", Type: underhood.FieldText}}}); err != nil {
		t.Fatal(err)
	}
	b, _ := open()
	c := &collector{name: "all"}
	relay, err := events.NewRelay(ctx, aStore, a, quiet, events.RelayOptions{Poll: 10 * time.Millisecond, Batch: 7}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	const perWorker = 40
	var wg sync.WaitGroup
	for _, n := range []*record.Service{a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if _, err := n.Create(ctx, n.SystemRequest(), "notes", map[string]any{"text": "x"}, ""); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := 6 * perWorker
	c.wait(t, want)
	time.Sleep(200 * time.Millisecond)
	c.mu.Lock()
	got := append([]string(nil), c.got...)
	c.mu.Unlock()
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("event of record %s consumed twice", id)
		}
		seen[id] = true
	}
	if len(seen) != want {
		t.Errorf("consumed %d distinct events, want %d", len(seen), want)
	}
	list, _ := a.ReadOutbox(ctx, 0, 10000)
	seq := map[string]int64{}
	for _, e := range list {
		seq[e.CollectionID]++
		if e.Sequence != seq[e.CollectionID] {
			t.Fatalf("sequence %d of %s at position %d, want %d: not unique and gapless", e.Sequence, e.Collection, e.Position, seq[e.CollectionID])
		}
	}
}

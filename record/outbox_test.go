package record_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// outboxAll reads the whole outbox.
func outboxAll(t *testing.T, s *record.Service) []record.OutboxEvent {
	t.Helper()
	list, err := s.ReadOutbox(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// eventsOf keeps the events of one collection, as "action id" strings.
func eventsOf(list []record.OutboxEvent, coll string) []string {
	var out []string
	for _, e := range list {
		if e.Collection == coll {
			out = append(out, e.Action+" "+e.RecordID)
		}
	}
	return out
}

func TestOutboxRecordsEveryCommittedChange(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	blog(t, s)
	var (
		mu    sync.Mutex
		heard []underhood.Event
	)
	stop := s.Listen(func(e underhood.Event) { mu.Lock(); heard = append(heard, e); mu.Unlock() })
	defer stop()

	ann := mustCreate(t, s, "authors", map[string]any{"name": "Ann"})
	post := mustCreate(t, s, "posts", map[string]any{"title": "T", "author": ann.ID()})
	c1 := mustCreate(t, s, "comments", map[string]any{"text": "one", "post": post.ID()})
	if _, err := s.Update(ctx, s.SystemRequest(), "authors", ann.ID(), map[string]any{"name": "Ann B"}, ""); err != nil {
		t.Fatal(err)
	}
	// A write that fails leaves no event: the create rule rejects it
	// after the insert, in the same transaction.
	guarded := mustCollection(t, s, &underhood.Collection{Name: "guarded", Type: underhood.TypeBase,
		CreateRule: underhood.RuleOf("title = 'ok'"), Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}}})
	guest := &record.Request{Context: "default", Method: "POST"}
	if _, err := s.Create(ctx, guest, guarded.Name, map[string]any{"title": "no"}, ""); err == nil {
		t.Fatal("Create(guarded, title=no) succeeded, want the create rule to refuse it")
	}
	ok, err := s.Create(ctx, guest, guarded.Name, map[string]any{"title": "ok"}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Deleting the author cascades to the post and its comment.
	if err := s.Delete(ctx, s.SystemRequest(), "authors", ann.ID()); err != nil {
		t.Fatal(err)
	}

	list := outboxAll(t, s)
	want := map[string][]string{
		"authors":  {"create " + ann.ID(), "update " + ann.ID(), "delete " + ann.ID()},
		"posts":    {"create " + post.ID(), "delete " + post.ID()},
		"comments": {"create " + c1.ID(), "delete " + c1.ID()},
		"guarded":  {"create " + ok.ID()},
	}
	for coll, w := range want {
		if got := eventsOf(list, coll); strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("outbox events of %s = %v, want %v", coll, got, w)
		}
	}
	// Positions increase; each collection's sequence counts from 1 without
	// gaps (the refused create took none).
	seq := map[string]int64{}
	ids := map[string]bool{}
	for i, e := range list {
		if i > 0 && e.Position <= list[i-1].Position {
			t.Errorf("position %d after %d", e.Position, list[i-1].Position)
		}
		seq[e.CollectionID]++
		if e.Sequence != seq[e.CollectionID] {
			t.Errorf("event %d of %s has sequence %d, want %d", i, e.Collection, e.Sequence, seq[e.CollectionID])
		}
		if ids[e.ID] || e.ID == "" {
			t.Errorf("event id %q repeated or empty", e.ID)
		}
		ids[e.ID] = true
		var rec map[string]any
		if err := json.Unmarshal(e.Record, &rec); err != nil {
			t.Fatalf("event record %s: %v", e.Record, err)
		}
		if rec["id"] != e.RecordID || rec["collectionName"] != e.Collection {
			t.Errorf("event record = %s, want id %s of %s", e.Record, e.RecordID, e.Collection)
		}
		var whole map[string]any
		if err := json.Unmarshal(e.JSON(), &whole); err != nil {
			t.Errorf("event JSON %s: %v", e.JSON(), err)
		}
	}

	// Listeners hear the same events, with the same ids and sequences.
	mu.Lock()
	defer mu.Unlock()
	var fromOutbox, fromListen []string
	for _, e := range list {
		fromOutbox = append(fromOutbox, e.ID+" "+e.Action+" "+e.Collection+" "+itoa(e.Sequence))
	}
	for _, e := range heard {
		if strings.HasPrefix(e.Collection, "_") {
			continue
		}
		fromListen = append(fromListen, e.ID+" "+e.Action+" "+e.Collection+" "+itoa(e.Sequence))
	}
	if strings.Join(fromOutbox, "\n") != strings.Join(fromListen, "\n") {
		t.Errorf("listeners heard\n%s\nthe outbox has\n%s", strings.Join(fromListen, "\n"), strings.Join(fromOutbox, "\n"))
	}
}

// TestOutboxSequencesOfConcurrentCreates checks that creates committed
// together keep each collection's sequence gapless while some of them are
// refused by the create rule after their event was appended: each
// acknowledged create has exactly one event, a refused one none, and
// listeners hear the numbers the outbox holds.
func TestOutboxSequencesOfConcurrentCreates(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	guarded := mustCollection(t, s, &underhood.Collection{Name: "guarded", Type: underhood.TypeBase,
		CreateRule: underhood.RuleOf("title != 'no'"), Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}}})
	var (
		mu    sync.Mutex
		heard = map[string]int64{} // record id → sequence
	)
	stop := s.Listen(func(e underhood.Event) {
		if e.Collection == guarded.Name {
			mu.Lock()
			heard[e.Record.ID()] = e.Sequence
			mu.Unlock()
		}
	})
	defer stop()

	const writers, each = 8, 25
	guest := &record.Request{Context: "default", Method: "POST"}
	created := make([][]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				title := "yes"
				if (w+i)%3 == 0 {
					title = "no"
				}
				r, err := s.Create(ctx, guest, guarded.Name, map[string]any{"title": title}, "")
				switch {
				case title == "no" && err == nil:
					t.Errorf("Create(title=no) = %s, want the create rule to refuse it", r.ID())
				case title == "yes" && err != nil:
					t.Errorf("Create(title=yes) = %v", err)
				case err == nil:
					created[w] = append(created[w], r.ID())
				}
			}
		}()
	}
	wg.Wait()

	acknowledged := map[string]bool{}
	for _, ids := range created {
		for _, id := range ids {
			acknowledged[id] = true
		}
	}
	var seq int64
	for _, e := range outboxAll(t, s) {
		if e.Collection != guarded.Name {
			continue
		}
		seq++
		if e.Sequence != seq {
			t.Errorf("event of %s has sequence %d, want %d", e.RecordID, e.Sequence, seq)
		}
		if !acknowledged[e.RecordID] {
			t.Errorf("event of %s, which no create acknowledged (or a second one)", e.RecordID)
		}
		delete(acknowledged, e.RecordID)
		mu.Lock()
		if heard[e.RecordID] != e.Sequence {
			t.Errorf("listeners heard %s as number %d, the outbox has %d", e.RecordID, heard[e.RecordID], e.Sequence)
		}
		mu.Unlock()
	}
	if len(acknowledged) > 0 {
		t.Errorf("%d acknowledged creates have no event", len(acknowledged))
	}
}

// TestOutboxSequencesOfTwoStoresOnOneDatabase checks that two processes
// writing to one database, by turns and at once, keep each collection's
// sequence gapless and in the order of the outbox: each process counts
// only while the other has not written.
func TestOutboxSequencesOfTwoStoresOnOneDatabase(t *testing.T) {
	ctx := context.Background()
	cfg := storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{})
	open := func() *record.Service {
		t.Helper()
		store, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		s, err := record.New(ctx, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := open()
	mustCollection(t, a, &underhood.Collection{Name: "items", Type: underhood.TypeBase, Fields: []*underhood.Field{{Name: "n", Type: underhood.FieldNumber}}})
	b := open() // loads the collection
	nodes := []*record.Service{a, b}

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	create := func(s *record.Service, n int) {
		r, err := s.Create(ctx, s.SystemRequest(), "items", map[string]any{"n": float64(n)}, "")
		if err != nil {
			t.Errorf("Create(items) = %v", err)
			return
		}
		mu.Lock()
		acked[r.ID()] = true
		mu.Unlock()
	}
	for i := range 6 { // by turns
		create(nodes[i%2], i)
	}
	var wg sync.WaitGroup
	for w := range 6 { // at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				create(nodes[w%2], i)
			}
		}()
	}
	wg.Wait()
	create(a, 100)
	create(b, 101)

	var seq int64
	for _, e := range outboxAll(t, a) {
		if e.Collection != "items" {
			continue
		}
		seq++
		if e.Sequence != seq {
			t.Errorf("event %d of items (position %d) has sequence %d, want %d", seq, e.Position, e.Sequence, seq)
		}
		if !acked[e.RecordID] {
			t.Errorf("event of %s, which no create acknowledged (or a second one)", e.RecordID)
		}
		delete(acked, e.RecordID)
	}
	if len(acked) > 0 {
		t.Errorf("%d acknowledged creates have no event", len(acked))
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestOutboxHidesSecretsAndAuthState(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	u := mustCreate(t, s, "users", map[string]any{"email": "u@example.com", "password": "1234567890", "passwordConfirm": "1234567890", "name": "U"})
	if _, err := s.Create(ctx, s.SystemRequest(), record.OTPsName, map[string]any{
		"collectionRef": u.Collection.ID, "recordRef": u.ID(), "password": "123456"}, ""); err != nil {
		t.Fatal(err)
	}
	list := outboxAll(t, s)
	if got := eventsOf(list, "users"); len(got) != 1 {
		t.Fatalf("events of users = %v, want one create", got)
	}
	if got := eventsOf(list, record.OTPsName); len(got) != 0 {
		t.Errorf("events of %s = %v, want none (auth state stays private)", record.OTPsName, got)
	}
	var rec map[string]any
	json.Unmarshal(list[len(list)-1].Record, &rec)
	for _, k := range []string{"password", "tokenKey"} {
		if _, ok := rec[k]; ok {
			t.Errorf("event record has %q: %s", k, list[len(list)-1].Record)
		}
	}
	if rec["email"] != "u@example.com" {
		t.Errorf("event record email = %v, want it shown as to a superuser", rec["email"])
	}
	// The decoded record has typed values for filters.
	r, err := s.DecodeEventRecord(&list[len(list)-1])
	if err != nil {
		t.Fatal(err)
	}
	if r.ID() != u.ID() || r.String("name") != "U" || r.Bool("verified") {
		t.Errorf("DecodeEventRecord = %v", r.Data)
	}
}

func TestTrimOutboxKeepsEachCollectionsLastEvent(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	blog(t, s)
	for i := 0; i < 3; i++ {
		mustCreate(t, s, "authors", map[string]any{"name": "A"})
		mustCreate(t, s, "posts", map[string]any{"title": "P"})
	}
	list := outboxAll(t, s)
	head := list[len(list)-1].Position
	// Nothing is old enough yet.
	if n, err := s.TrimOutbox(ctx, head, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("TrimOutbox(recent) = %d, %v; want 0", n, err)
	}
	n, err := s.TrimOutbox(ctx, head, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("TrimOutbox deleted %d events, want 4 (all but the last of each collection)", n)
	}
	mustCreate(t, s, "authors", map[string]any{"name": "A"})
	list = outboxAll(t, s)
	last := list[len(list)-1]
	if last.Collection != "authors" || last.Sequence != 4 || last.Position <= head {
		t.Errorf("event after trimming = %s #%d at %d, want authors #4 after %d", last.Collection, last.Sequence, last.Position, head)
	}
}

// BenchmarkCreateWithOutbox measures a create, whose transaction also
// appends its event, without the fsync (synchronous OFF).
func BenchmarkCreateWithOutbox(b *testing.B) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: b.TempDir(), Synchronous: "OFF"})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	s, err := record.New(ctx, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SaveCollection(ctx, s.SystemRequest().Auth, "", &underhood.Collection{Name: "posts", Type: underhood.TypeBase,
		Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}, {Name: "views", Type: underhood.FieldNumber}}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Create(ctx, s.SystemRequest(), "posts", map[string]any{"title": "hello world", "views": 3.0}, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package record_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

func newService(t *testing.T) *record.Service {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}))
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

func mustCollection(t *testing.T, s *record.Service, c *underhood.Collection) *underhood.Collection {
	t.Helper()
	saved, err := s.SaveCollection(context.Background(), s.SystemRequest().Auth, "", c)
	if err != nil {
		t.Fatalf("SaveCollection(%s) = %v", c.Name, err)
	}
	return saved
}

func mustCreate(t *testing.T, s *record.Service, coll string, data map[string]any) *underhood.Record {
	t.Helper()
	r, err := s.Create(context.Background(), s.SystemRequest(), coll, data, "")
	if err != nil {
		t.Fatalf("Create(%s, %v) = %v", coll, data, err)
	}
	return r
}

func relation(name, target string, max int, cascade bool) *underhood.Field {
	return &underhood.Field{Name: name, Type: underhood.FieldRelation, CollectionID: target, MaxSelect: max, CascadeDelete: cascade}
}

// blog creates authors ← posts ← comments, all public.
func blog(t *testing.T, s *record.Service) {
	t.Helper()
	anyone := underhood.RuleOf("")
	authors := mustCollection(t, s, &underhood.Collection{Name: "authors", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone, CreateRule: anyone, UpdateRule: anyone, DeleteRule: anyone,
		Fields: []*underhood.Field{{Name: "name", Type: underhood.FieldText}}})
	posts := mustCollection(t, s, &underhood.Collection{Name: "posts", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone, CreateRule: anyone, UpdateRule: anyone, DeleteRule: anyone,
		Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}, relation("author", authors.ID, 1, true), relation("editors", authors.ID, 5, false)}})
	mustCollection(t, s, &underhood.Collection{Name: "comments", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: underhood.RuleOf("hidden = false"), CreateRule: anyone, UpdateRule: anyone, DeleteRule: anyone,
		Fields: []*underhood.Field{{Name: "text", Type: underhood.FieldText}, {Name: "hidden", Type: underhood.FieldBool}, relation("post", posts.ID, 1, true)}})
}

func TestExpandAndCascade(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	blog(t, s)
	ann := mustCreate(t, s, "authors", map[string]any{"name": "Ann"})
	bob := mustCreate(t, s, "authors", map[string]any{"name": "Bob"})
	post := mustCreate(t, s, "posts", map[string]any{"title": "T", "author": ann.ID(), "editors": []any{bob.ID(), ann.ID()}})
	mustCreate(t, s, "comments", map[string]any{"text": "visible", "post": post.ID()})
	mustCreate(t, s, "comments", map[string]any{"text": "hidden", "hidden": true, "post": post.ID()})

	guest := &record.Request{Context: "default", Method: "GET"}
	got, err := s.View(ctx, guest, "posts", post.ID(), "author,editors,comments_via_post.post.author")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := got.Expand["author"].(*underhood.Record); a == nil || a.String("name") != "Ann" {
		t.Errorf("expand author = %v, want Ann", got.Expand["author"])
	}
	if eds, _ := got.Expand["editors"].([]*underhood.Record); len(eds) != 2 || eds[0].String("name") != "Bob" {
		t.Errorf("expand editors = %v, want [Bob Ann] in stored order", got.Expand["editors"])
	}
	comments, _ := got.Expand["comments_via_post"].([]*underhood.Record)
	if len(comments) != 1 || comments[0].String("text") != "visible" {
		t.Fatalf("expand comments_via_post = %v, want only the comment the view rule shows", got.Expand["comments_via_post"])
	}
	nested, _ := comments[0].Expand["post"].(*underhood.Record)
	if nested == nil || nested.Expand["author"] == nil {
		t.Errorf("nested expand post.author missing: %v", comments[0].Expand)
	}

	// Deleting Bob removes him from editors (not required, no cascade).
	if err := s.Delete(ctx, guest, "authors", bob.ID()); err != nil {
		t.Fatal(err)
	}
	p, err := s.View(ctx, guest, "posts", post.ID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if eds := p.Strings("editors"); len(eds) != 1 || eds[0] != ann.ID() {
		t.Errorf("editors after deleting Bob = %v, want [%s]", eds, ann.ID())
	}
	// Deleting Ann cascades to her post and its comments.
	if err := s.Delete(ctx, guest, "authors", ann.ID()); err != nil {
		t.Fatal(err)
	}
	res, err := s.List(ctx, s.SystemRequest(), "comments", record.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalItems != 0 {
		t.Errorf("comments after cascade = %d, want 0", res.TotalItems)
	}
}

func TestCreateRuleSeesSubmittedData(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	mustCollection(t, s, &underhood.Collection{Name: "votes", Type: underhood.TypeBase,
		ListRule: underhood.RuleOf(""), CreateRule: underhood.RuleOf("score <= 5 && @request.body.score:isset = true"),
		Fields: []*underhood.Field{{Name: "score", Type: underhood.FieldNumber}}})
	req := func(body map[string]any) *record.Request {
		return &record.Request{Context: "default", Method: "POST", Body: body}
	}
	if _, err := s.Create(ctx, req(map[string]any{"score": 3}), "votes", map[string]any{"score": 3}, ""); err != nil {
		t.Fatalf("allowed create = %v", err)
	}
	for _, body := range []map[string]any{{"score": 9}, {}} {
		if _, err := s.Create(ctx, req(body), "votes", body, ""); underhood.ErrorCode(err) != underhood.EInvalid {
			t.Errorf("Create(%v) = %v, want a 400", body, err)
		}
	}
	res, err := s.List(ctx, req(nil), "votes", record.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalItems != 1 {
		t.Errorf("votes = %d, want 1: a rejected create must write nothing", res.TotalItems)
	}
}

func TestPasswordChangeRotatesTokenKey(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	u := mustCreate(t, s, "users", map[string]any{"email": "u@example.com", "password": "password1", "passwordConfirm": "password1"})
	full, err := s.FindRecord(ctx, u.Collection, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	self := &record.Request{Context: "default", Method: "PATCH", Auth: full}
	_, err = s.Update(ctx, self, "users", u.ID(), map[string]any{"password": "password2", "passwordConfirm": "password2", "oldPassword": "wrong"}, "")
	if underhood.ErrorCode(err) != underhood.EInvalid {
		t.Fatalf("update with a wrong oldPassword = %v, want 400", err)
	}
	if _, err := s.Update(ctx, self, "users", u.ID(), map[string]any{"password": "password2", "passwordConfirm": "password2", "oldPassword": "password1"}, ""); err != nil {
		t.Fatal(err)
	}
	after, err := s.FindRecord(ctx, u.Collection, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	if after.String("tokenKey") == full.String("tokenKey") {
		t.Error("tokenKey unchanged after a password change")
	}
	if !record.CheckPassword(after.String("password"), "password2") {
		t.Error("new password does not verify")
	}
	if _, ok := s.Present(self, after).Data["password"]; ok {
		t.Error("Present kept the password hash")
	}
}

// TestListTotalFollowsWrites checks that a list total never comes from
// before a write the caller has seen acknowledged: totals are cached until
// the next commit.
func TestListTotalFollowsWrites(t *testing.T) {
	s := newService(t)
	blog(t, s)
	ctx := context.Background()
	guest := &record.Request{}
	total := func() int {
		t.Helper()
		res, err := s.List(ctx, guest, "authors", record.ListParams{Filter: "name ~ 'a'"})
		if err != nil {
			t.Fatal(err)
		}
		return res.TotalItems
	}
	before := total()
	if again := total(); again != before {
		t.Fatalf("total changed without a write: %d then %d", before, again)
	}
	created := mustCreate(t, s, "authors", map[string]any{"name": "anna"})
	if got := total(); got != before+1 {
		t.Fatalf("total after create = %d, want %d", got, before+1)
	}
	if _, err := s.Update(ctx, s.SystemRequest(), "authors", created.ID(), map[string]any{"name": "zed"}, ""); err != nil {
		t.Fatal(err)
	}
	if got := total(); got != before {
		t.Fatalf("total after an update that stops matching = %d, want %d", got, before)
	}
	if v, err := s.View(ctx, guest, "authors", created.ID(), ""); err != nil || v.String("name") != "zed" {
		t.Fatalf("View after update = %v, %v, want name zed", v, err)
	}
	res, err := s.List(ctx, guest, "authors", record.ListParams{Filter: "name = 'zed'", SkipTotal: true})
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("List(name = 'zed') = %v, %v, want the updated record", res, err)
	}
	res.Items[0].Data["name"] = "mutated by the caller"
	if again, _ := s.List(ctx, guest, "authors", record.ListParams{Filter: "name = 'zed'", SkipTotal: true}); again.Items[0].String("name") != "zed" {
		t.Fatalf("a caller's change to a returned record leaked into the next read: %v", again.Items[0].Data)
	}
	mustCreate(t, s, "authors", map[string]any{"name": "bea"})
	if err := s.Delete(ctx, s.SystemRequest(), "authors", created.ID()); err != nil {
		t.Fatal(err)
	}
	if got := total(); got != before+1 {
		t.Fatalf("total after create and delete = %d, want %d", got, before+1)
	}
	if _, err := s.View(ctx, guest, "authors", created.ID(), ""); underhood.ErrorCode(err) != underhood.ENotFound {
		t.Fatalf("View after delete = %v, want not found", err)
	}
}

func TestSystemCollectionsFollowTheirOwner(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	for _, name := range []string{record.MFAsName, record.OTPsName, record.ExternalAuthsName, record.AuthOriginsName, record.TOTPsName} {
		if _, err := s.Collection(name); err != nil {
			t.Fatalf("system collection %s missing: %v", name, err)
		}
	}
	u := mustCreate(t, s, "users", map[string]any{"email": "u@example.com", "password": "12345678", "passwordConfirm": "12345678"})
	mustCreate(t, s, record.MFAsName, map[string]any{"collectionRef": underhood.UsersID, "recordRef": u.ID(), "method": "password"})
	if err := s.Delete(ctx, s.SystemRequest(), "users", u.ID()); err != nil {
		t.Fatal(err)
	}
	res, err := s.List(ctx, s.SystemRequest(), record.MFAsName, record.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalItems != 0 {
		t.Fatalf("_mfas rows after deleting their user = %d, want 0", res.TotalItems)
	}
	if err := s.DeleteCollection(ctx, s.SystemRequest().Auth, record.MFAsName); err == nil {
		t.Fatalf("DeleteCollection(%s) = nil, want an error for a system collection", record.MFAsName)
	}
}

func TestListenSeesCommittedChangesOnly(t *testing.T) {
	s := newService(t)
	blog(t, s)
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	stop := s.Listen(func(e underhood.Event) {
		mu.Lock()
		got = append(got, e.Action+" "+e.Collection+" "+e.Record.String("name"))
		mu.Unlock()
	})
	a := mustCreate(t, s, "authors", map[string]any{"name": "ann"})
	if _, err := s.Update(ctx, s.SystemRequest(), "authors", a.ID(), map[string]any{"name": "bo"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, &record.Request{}, "posts", map[string]any{"author": "missing0000000"}, ""); err == nil {
		t.Fatal("Create with a missing relation succeeded")
	}
	if err := s.Delete(ctx, s.SystemRequest(), "authors", a.ID()); err != nil {
		t.Fatal(err)
	}
	stop()
	mustCreate(t, s, "authors", map[string]any{"name": "after stop"})
	want := []string{"create authors ann", "update authors bo", "delete authors bo"}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

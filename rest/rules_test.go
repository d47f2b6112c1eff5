package rest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood/files"
)

// sendMultipart sends a multipart body of parts as who.
func (e *env) sendMultipart(method, path, who string, parts ...part) (int, string) {
	e.t.Helper()
	body, ct := multipartBody(e.t, parts...)
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if who != "" {
		req.Header.Set("Authorization", e.tokens[who])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// record returns the fields of a record as the superuser sees them.
func (e *env) record(coll, id string) map[string]any {
	e.t.Helper()
	st, body := e.do("GET", "/api/collections/"+coll+"/records/"+id, "su", nil)
	if st != 200 {
		e.t.Fatalf("GET %s/%s = %d %s", coll, id, st, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestModifiersCannotBypassBodyRules sends, over every path a write takes
// (JSON, multipart, batch create, update and upsert), field modifiers that
// set fields the rules forbid a user to set: each is refused and nothing
// is stored (C1). The rules are PocketBase's usual guard against
// privilege escalation: @request.body.X:isset = false.
func TestModifiersCannotBypassBodyRules(t *testing.T) {
	e := newEnv(t)
	alice := e.ids["alice"]
	const guard = "@request.body.tags:isset = false && @request.body.views:isset = false"
	if st, body := e.do("PATCH", "/api/collections/posts", "su", map[string]any{
		"createRule": "@request.auth.id != '' && owner = @request.auth.id && " + guard,
		"updateRule": "owner = @request.auth.id && " + guard,
	}); st != 200 {
		t.Fatalf("set rules: %d %s", st, body)
	}
	st, body := e.do("POST", "/api/collections/posts/records", "su", map[string]any{
		"title": "mine", "owner": alice, "views": 3, "tags": []string{"web"}})
	if st != 200 {
		t.Fatalf("create post: %d %s", st, body)
	}
	id := jsonField(t, body, "id")
	protected := func() map[string]any {
		t.Helper()
		r := e.record("posts", id)
		return map[string]any{"views": r["views"], "tags": r["tags"]}
	}
	want := protected()
	posts := "/api/collections/posts/records"
	batch := func(method, url string, body map[string]any) (int, string) {
		return e.do("POST", "/api/batch", "alice", map[string]any{"requests": []map[string]any{
			{"method": method, "url": url, "body": body}}})
	}
	tests := []struct {
		name   string
		send   func() (int, string)
		status int
	}{
		{"json update tags+", func() (int, string) { return e.do("PATCH", posts+"/"+id, "alice", map[string]any{"tags+": "go"}) }, 404},
		{"json update +tags", func() (int, string) {
			return e.do("PATCH", posts+"/"+id, "alice", map[string]any{"+tags": []string{"db"}})
		}, 404},
		{"json update tags-", func() (int, string) { return e.do("PATCH", posts+"/"+id, "alice", map[string]any{"tags-": "web"}) }, 404},
		{"json update views+", func() (int, string) { return e.do("PATCH", posts+"/"+id, "alice", map[string]any{"views+": 1000}) }, 404},
		{"json update views-", func() (int, string) { return e.do("PATCH", posts+"/"+id, "alice", map[string]any{"views-": 1}) }, 404},
		{"multipart update views+", func() (int, string) {
			return e.sendMultipart("PATCH", posts+"/"+id, "alice", value("views+", "1000"))
		}, 404},
		{"multipart update tags+", func() (int, string) {
			return e.sendMultipart("PATCH", posts+"/"+id, "alice", value("tags+", "go"), value("tags+", "db"))
		}, 404},
		{"multipart json payload update tags+", func() (int, string) {
			return e.sendMultipart("PATCH", posts+"/"+id, "alice", value("@jsonPayload", `{"tags+":"go"}`))
		}, 404},
		{"batch update views+", func() (int, string) { return batch("PATCH", posts+"/"+id, map[string]any{"views+": 1000}) }, 400},
		{"batch upsert tags+", func() (int, string) { return batch("PUT", posts, map[string]any{"id": id, "tags+": "go"}) }, 400},
		{"json create tags+", func() (int, string) {
			return e.do("POST", posts, "alice", map[string]any{"title": "new", "owner": alice, "tags+": "go"})
		}, 400},
		{"multipart create views+", func() (int, string) {
			return e.sendMultipart("POST", posts, "alice", value("title", "new"), value("owner", alice), value("views+", "9"))
		}, 400},
		{"batch create +tags", func() (int, string) {
			return batch("POST", posts, map[string]any{"title": "new", "owner": alice, "+tags": "go"})
		}, 400},
		{"batch upsert new views+", func() (int, string) {
			return batch("PUT", posts, map[string]any{"id": "newpost00000001", "title": "new", "owner": alice, "views+": 5})
		}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if st, body := tt.send(); st != tt.status {
				t.Errorf("status = %d %s, want %d", st, body, tt.status)
			}
			if diff := cmp.Diff(want, protected()); diff != "" {
				t.Errorf("post changed (-want +got):\n%s", diff)
			}
			if _, body := e.do("GET", posts+"?filter="+urlq("title = 'new'"), "su", nil); !strings.Contains(body, `"totalItems":0`) {
				t.Errorf("a refused create stored a post: %s", body)
			}
		})
	}
	// A write the rules allow still goes through.
	if st, body := e.do("PATCH", posts+"/"+id, "alice", map[string]any{"title": "renamed"}); st != 200 {
		t.Fatalf("allowed update = %d %s", st, body)
	}
}

// TestFileModifiersCannotBypassBodyRules is the same for files uploaded
// or removed with a modifier over multipart (C1).
func TestFileModifiersCannotBypassBodyRules(t *testing.T) {
	st, err := files.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newFileEnv(t, st, files.Options{})
	alice := e.ids["alice"]
	const guard = "@request.body.attachments:isset = false"
	if st, body := e.do("PATCH", "/api/collections/docs", "su", map[string]any{
		"createRule": "@request.auth.id != '' && owner = @request.auth.id && " + guard,
		"updateRule": "owner = @request.auth.id && " + guard,
	}); st != 200 {
		t.Fatalf("set rules: %d %s", st, body)
	}
	// The superuser attaches a file to alice's doc.
	status, rec, body := e.upload("POST", "", "su", value("title", "d"), value("owner", alice),
		file("attachments", "kept.txt", []byte("k")))
	if status != 200 {
		t.Fatalf("create doc = %d %s", status, body)
	}
	id := rec["id"].(string)
	kept := names(rec["attachments"])
	attachments := func() []string {
		t.Helper()
		return names(e.record("docs", id)["attachments"])
	}
	tests := []struct {
		name   string
		id     string
		parts  []part
		status int
	}{
		{"append", id, []part{file("attachments+", "new.txt", []byte("n"))}, 404},
		{"prepend", id, []part{file("+attachments", "new.txt", []byte("n"))}, 404},
		{"remove", id, []part{value("attachments-", kept[0])}, 404},
		{"create append", "", []part{value("title", "x"), value("owner", alice), file("attachments+", "new.txt", []byte("n"))}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "PATCH"
			if tt.id == "" {
				method = "POST"
			}
			if status, _, body := e.upload(method, tt.id, "alice", tt.parts...); status != tt.status {
				t.Errorf("status = %d %s, want %d", status, body, tt.status)
			}
			if diff := cmp.Diff(kept, attachments()); diff != "" {
				t.Errorf("attachments changed (-want +got):\n%s", diff)
			}
		})
	}
	if got := e.stored(); len(got) != 1 {
		t.Errorf("stored files = %v, want only %s", got, kept[0])
	}
}

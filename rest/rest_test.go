package rest_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// env is a running API over a fresh SQLite database with a superuser,
// two users and a "posts" collection owned by users.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	records *record.Service
	tokens  map[string]string // "su", "alice", "bob"
	ids     map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), log)
	authSvc := auth.New(records, log)
	broker := realtime.New(records, log)
	t.Cleanup(broker.Close)
	api := rest.NewHandler(rest.Deps{Records: records, Auth: authSvc, Log: log, Realtime: broker})
	srv := httptest.NewServer(server.New(server.Deps{API: api, Auth: authSvc, Log: log, BodyLimit: 1 << 20, Settings: records}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, records: records, tokens: map[string]string{}, ids: map[string]string{}}

	sys := records.SystemRequest()
	if _, err := records.Create(ctx, sys, "_superusers", map[string]any{
		"email": "admin@example.com", "password": "1234567890", "passwordConfirm": "1234567890"}, ""); err != nil {
		t.Fatalf("create superuser: %v", err)
	}
	e.tokens["su"] = e.login("_superusers", "admin@example.com", "1234567890")
	for _, name := range []string{"alice", "bob"} {
		st, body := e.do("POST", "/api/collections/users/records", "", map[string]any{
			"email": name + "@example.com", "password": "secret-" + name, "passwordConfirm": "secret-" + name, "name": name})
		if st != 200 {
			t.Fatalf("create %s: %d %s", name, st, body)
		}
		e.ids[name] = jsonField(t, body, "id")
		e.tokens[name] = e.login("users", name+"@example.com", "secret-"+name)
	}
	st, body := e.do("POST", "/api/collections", "su", map[string]any{
		"name": "posts", "type": "base",
		"listRule": "owner = @request.auth.id || public = true", "viewRule": "owner = @request.auth.id || public = true",
		"createRule": "@request.auth.id != '' && owner = @request.auth.id", "updateRule": "owner = @request.auth.id",
		"deleteRule": "owner = @request.auth.id",
		"fields": []map[string]any{
			{"name": "title", "type": "text", "required": true, "max": 100},
			{"name": "body", "type": "editor"},
			{"name": "views", "type": "number"},
			{"name": "public", "type": "bool"},
			{"name": "secret", "type": "text", "hidden": true},
			{"name": "tags", "type": "select", "maxSelect": 3, "values": []string{"go", "db", "web"}},
			{"name": "slug", "type": "text"},
			{"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1, "cascadeDelete": true},
		},
		"indexes": []string{"CREATE UNIQUE INDEX idx_posts_slug ON posts (slug) WHERE slug != ''"},
	})
	if st != 200 {
		t.Fatalf("create posts: %d %s", st, body)
	}
	return e
}

func (e *env) login(coll, identity, password string) string {
	e.t.Helper()
	st, body := e.do("POST", "/api/collections/"+coll+"/auth-with-password", "", map[string]any{"identity": identity, "password": password})
	if st != 200 {
		e.t.Fatalf("login %s: %d %s", identity, st, body)
	}
	return jsonField(e.t, body, "token")
}

// do sends a request as who ("" = guest) with body (a string is sent raw).
func (e *env) do(method, path, who string, body any) (int, string) {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
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

func jsonField(t *testing.T, body, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	s, _ := m[key].(string)
	if s == "" {
		if rec, ok := m["record"].(map[string]any); ok && key == "id" {
			s, _ = rec["id"].(string)
		}
	}
	return s
}

func TestRecordsAPI(t *testing.T) {
	e := newEnv(t)
	alice := e.ids["alice"]
	// Seed: two posts of alice, one public.
	for i, p := range []map[string]any{
		{"title": "first", "body": "<p>Hello <b>world</b> of databases</p>", "views": 10, "public": true, "secret": "s1", "tags": []string{"go", "db"}, "slug": "first", "owner": alice},
		{"title": "second", "views": 20, "public": false, "secret": "s2", "slug": "second", "owner": alice},
	} {
		st, body := e.do("POST", "/api/collections/posts/records", "alice", p)
		if st != 200 {
			t.Fatalf("seed %d: %d %s", i, st, body)
		}
		e.ids["post"+string(rune('0'+i))] = jsonField(t, body, "id")
	}
	p0, p1 := e.ids["post0"], e.ids["post1"]

	tests := []struct {
		name       string
		method     string
		path       string
		who        string
		body       any
		wantStatus int
		want       []string // substrings of the body
		notWant    []string
	}{
		{"health", "GET", "/api/health", "", nil, 200, []string{`"message":"API is healthy."`}, nil},
		{"unknown collection", "GET", "/api/collections/nope/records", "", nil, 404, []string{`"status":404`, `"data":{}`}, nil},
		{"unknown route", "GET", "/api/nope", "", nil, 404, []string{`"status":404`}, nil},
		{"guest list sees public only", "GET", "/api/collections/posts/records", "", nil, 200, []string{`"totalItems":1`, `"first"`}, []string{`"second"`, `"secret"`}},
		{"owner list sees both", "GET", "/api/collections/posts/records?sort=-views", "alice", nil, 200, []string{`"totalItems":2`}, []string{`"secret"`}},
		{"superuser sees hidden field", "GET", "/api/collections/posts/records/" + p1, "su", nil, 200, []string{`"secret":"s2"`}, nil},
		{"other user cannot view private", "GET", "/api/collections/posts/records/" + p1, "bob", nil, 404, nil, nil},
		{"filter by hidden field refused", "GET", "/api/collections/posts/records?filter=" + urlq("secret = 's1'"), "bob", nil, 400, nil, []string{`"items"`}},
		{"filter with @request refused", "GET", "/api/collections/posts/records?filter=" + urlq("@request.auth.id != ''"), "bob", nil, 400, nil, nil},
		{"filter through a relation obeys its list rule", "GET", "/api/collections/posts/records?filter=" + urlq("owner.name = 'alice'"), "bob", nil, 200, []string{`"totalItems":0`}, nil},
		{"filter through a relation to own record", "GET", "/api/collections/posts/records?filter=" + urlq("owner.name = 'alice'"), "alice", nil, 200, []string{`"totalItems":2`}, nil},
		{"guest filter through a relation finds nothing", "GET", "/api/collections/posts/records?filter=" + urlq("owner.name = 'alice'"), "", nil, 200, []string{`"totalItems":0`}, nil},
		{"invalid filter names position", "GET", "/api/collections/posts/records?filter=" + urlq("title = ("), "alice", nil, 400, []string{"position"}, nil},
		{"filter and sort", "GET", "/api/collections/posts/records?filter=" + urlq("views > 15") + "&sort=-views", "alice", nil, 200, []string{`"totalItems":1`, `"second"`}, nil},
		{"skipTotal", "GET", "/api/collections/posts/records?skipTotal=1", "alice", nil, 200, []string{`"totalItems":-1`, `"totalPages":-1`}, nil},
		{"fields and excerpt", "GET", "/api/collections/posts/records/" + p0 + "?fields=" + urlq("id,body:excerpt(11,true)"), "alice", nil, 200, []string{`"body":"Hello world..."`}, []string{`"title"`}},
		{"expand owner", "GET", "/api/collections/posts/records/" + p0 + "?expand=owner", "alice", nil, 200, []string{`"expand":{"owner":{`, `"name":"alice"`}, nil},
		{"expand hidden by target view rule", "GET", "/api/collections/posts/records/" + p0 + "?expand=owner", "", nil, 200, nil, []string{`"expand"`}},
		{"create validation errors", "POST", "/api/collections/posts/records", "alice", map[string]any{"owner": alice, "views": "many", "tags": []string{"nope"}}, 400,
			[]string{`"title":{"code":"validation_required"`, `"views":{`, `"tags":{`}, nil},
		{"create rule rejects other owner", "POST", "/api/collections/posts/records", "bob", map[string]any{"title": "x", "owner": alice}, 400, nil, nil},
		{"guest cannot create", "POST", "/api/collections/posts/records", "", map[string]any{"title": "x"}, 400, nil, nil},
		{"unique slug", "POST", "/api/collections/posts/records", "alice", map[string]any{"title": "dup", "slug": "first", "owner": alice}, 400, []string{`"slug":{"code":"validation_not_unique"`}, nil},
		{"malformed json", "POST", "/api/collections/posts/records", "alice", `{"title":`, 400, []string{`"status":400`}, nil},
		{"modifiers", "PATCH", "/api/collections/posts/records/" + p0, "alice", map[string]any{"views+": 5, "tags-": "go", "tags+": "web"}, 200, []string{`"views":15`, `"tags":["db","web"]`}, nil},
		{"other user cannot update", "PATCH", "/api/collections/posts/records/" + p0, "bob", map[string]any{"title": "hacked"}, 404, nil, nil},
		{"other user cannot delete", "DELETE", "/api/collections/posts/records/" + p0, "bob", nil, 404, nil, nil},
		{"owner deletes", "DELETE", "/api/collections/posts/records/" + p1, "alice", nil, 204, nil, nil},
		{"deleted is gone", "GET", "/api/collections/posts/records/" + p1, "su", nil, 404, nil, nil},
		{"settings need superuser", "GET", "/api/settings", "alice", nil, 403, nil, nil},
		{"settings persisted", "PATCH", "/api/settings", "su", map[string]any{"meta": map[string]any{"appName": "Blog"}}, 200, []string{`"appName":"Blog"`, `"batch":{"enabled":true`}, nil},
		{"settings validation", "PATCH", "/api/settings", "su", map[string]any{"meta": map[string]any{"appName": ""}}, 400, []string{`"appName":{"code":"validation_required"`}, nil},
		{"collections need superuser", "GET", "/api/collections", "alice", nil, 403, nil, nil},
		{"collections list", "GET", "/api/collections?filter=" + urlq("name = 'posts'"), "su", nil, 200, []string{`"totalItems":1`}, nil},
		{"collections list pages", "GET", "/api/collections?sort=-name&perPage=1&page=2&filter=" + urlq("name = 'posts' || name = 'users'"), "su", nil, 200,
			[]string{`"page":2`, `"perPage":1`, `"totalItems":2`, `"totalPages":2`, `"name":"posts"`}, []string{`"name":"users"`}},
		// A guest is refused before anything it sent is read or looked up.
		{"guest listing collections with a broken page", "GET", "/api/collections?page=x", "", nil, 401, nil, nil},
		{"guest creating a collection with a broken body", "POST", "/api/collections", "", `{"name":`, 401, nil, nil},
		{"guest importing a broken body", "PUT", "/api/collections/import", "", `{"collections":`, 401, nil, nil},
		{"guest changing settings with a broken body", "PATCH", "/api/settings", "", `{"meta":`, 401, nil, nil},
		{"guest updating a missing collection", "PATCH", "/api/collections/nope", "", map[string]any{"listRule": ""}, 401, nil, nil},
		{"user viewing a missing collection", "GET", "/api/collections/nope", "alice", nil, 403, nil, nil},
		{"superuser viewing a missing collection", "GET", "/api/collections/nope", "su", nil, 404, []string{`"message":"The requested resource wasn't found."`}, nil},
		{"scaffolds need superuser", "GET", "/api/collections/meta/scaffolds", "alice", nil, 403, nil, nil},
		{"scaffolds", "GET", "/api/collections/meta/scaffolds", "su", nil, 200, []string{`"auth":{`, `"view":{`}, nil},
		{"auth methods", "GET", "/api/collections/users/auth-methods", "", nil, 200, []string{`"password":{"enabled":true`, `"identityFields":["email"]`}, nil},
		{"auth methods of a base collection", "GET", "/api/collections/posts/auth-methods", "", nil, 404, []string{`"message":"Missing or invalid auth collection context."`}, nil},
		{"auth methods of a missing collection", "GET", "/api/collections/nope/auth-methods", "", nil, 404, []string{`"message":"Missing collection context."`}, nil},
		{"auth methods in PocketBase's shape", "GET", "/api/collections/users/auth-methods", "", nil, 200,
			[]string{`{"mfa":{"duration":`, `,"enabled":false},"oauth2":{"enabled":false,"providers":[]},"otp":{"duration":`, `"password":{"enabled":true,"identityFields":["email"]}}`}, nil},
		{"auth refresh", "POST", "/api/collections/users/auth-refresh", "alice", nil, 200, []string{`"token":"`, `"email":"alice@example.com"`}, nil},
		{"auth refresh needs a token", "POST", "/api/collections/users/auth-refresh", "", nil, 401, nil, nil},
		{"auth refresh on another collection", "POST", "/api/collections/_superusers/auth-refresh", "alice", nil, 403, nil, nil},
		{"wrong password", "POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "alice@example.com", "password": "nope-nope"}, 400, []string{`"message":"Failed to authenticate."`}, []string{`"token"`}},
		{"unknown account answers like a wrong password", "POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "nobody@example.com", "password": "nope-nope"}, 400, []string{`"message":"Failed to authenticate."`}, nil},
		{"password login on a base collection", "POST", "/api/collections/posts/auth-with-password", "", map[string]any{"identity": "x", "password": "y"}, 404, nil, nil},
		{"wrong JSON type for the body", "POST", "/api/collections/posts/records", "alice", `["title"]`, 400, []string{`"status":400`}, nil},
		{"wrong value type", "POST", "/api/collections/posts/records", "alice", map[string]any{"title": 12, "public": "maybe", "owner": alice}, 400, []string{`"public":{`}, nil},
		{"unknown body fields are ignored", "POST", "/api/collections/posts/records", "alice", map[string]any{"title": "extra", "owner": alice, "nosuchfield": 1, "collectionName": "x"}, 200, []string{`"title":"extra"`}, []string{`nosuchfield`}},
		{"unknown record", "GET", "/api/collections/posts/records/doesnotexist123", "su", nil, 404, []string{`"data":{}`}, nil},
		{"perPage above the maximum is capped", "GET", "/api/collections/posts/records?perPage=5000", "alice", nil, 200, []string{`"perPage":1000`}, nil},
		{"too many sort terms", "GET", "/api/collections/posts/records?sort=" + urlq("a,b,c,d,e,f,g,h,i"), "alice", nil, 400, []string{`"sort":{`}, nil},
		{"random sort", "GET", "/api/collections/posts/records?sort=@random", "alice", nil, 200, []string{`"totalItems":2`}, nil},
		{"user email hidden from others", "GET", "/api/collections/users/records/" + alice, "su", nil, 200, []string{`"email":"alice@example.com"`}, []string{`"password"`, `"tokenKey"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := e.do(tt.method, tt.path, tt.who, tt.body)
			if st != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, st, body, tt.wantStatus)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s %s body = %s, want it to contain %s", tt.method, tt.path, body, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("%s %s body = %s, want it not to contain %s", tt.method, tt.path, body, w)
				}
			}
		})
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t)
	alice := e.ids["alice"]
	ok := map[string]any{"requests": []map[string]any{
		{"method": "POST", "url": "/api/collections/posts/records", "body": map[string]any{"title": "b1", "owner": alice}},
		{"method": "POST", "url": "/api/collections/posts/records?fields=title", "body": map[string]any{"title": "b2", "owner": alice}},
	}}
	st, body := e.do("POST", "/api/batch", "alice", ok)
	if st != 200 || !strings.Contains(body, `"title":"b2"`) {
		t.Fatalf("batch = %d %s", st, body)
	}
	bad := map[string]any{"requests": []map[string]any{
		{"method": "POST", "url": "/api/collections/posts/records", "body": map[string]any{"title": "b3", "owner": alice}},
		{"method": "POST", "url": "/api/collections/posts/records", "body": map[string]any{"owner": alice}},
	}}
	st, body = e.do("POST", "/api/batch", "alice", bad)
	if st != 400 || !strings.Contains(body, `"requests":{"1":`) {
		t.Fatalf("failing batch = %d %s, want 400 naming request 1", st, body)
	}
	_, body = e.do("GET", "/api/collections/posts/records?filter="+urlq("title = 'b3'"), "alice", nil)
	if !strings.Contains(body, `"totalItems":0`) {
		t.Fatalf("failed batch left a record behind: %s", body)
	}
	many := make([]map[string]any, 51)
	for i := range many {
		many[i] = map[string]any{"method": "POST", "url": "/api/collections/posts/records", "body": map[string]any{"title": "m", "owner": alice}}
	}
	if st, body := e.do("POST", "/api/batch", "alice", map[string]any{"requests": many}); st != 400 {
		t.Fatalf("batch of 51 = %d %s, want 400", st, body)
	}
	if st, body := e.do("POST", "/api/batch", "alice", map[string]any{"requests": []any{}}); st != 400 || !strings.Contains(body, `"requests":{"code":"validation_required"`) {
		t.Fatalf("empty batch = %d %s, want 400 naming requests", st, body)
	}
	// Disabled batches are refused before their body is read.
	if st, body := e.do("PATCH", "/api/settings", "su", map[string]any{"batch": map[string]any{"enabled": false}}); st != 200 {
		t.Fatalf("disable batches = %d %s", st, body)
	}
	if st, body := e.do("POST", "/api/batch", "alice", `{"requests":`); st != 403 || !strings.Contains(body, "Batch requests are not allowed.") {
		t.Fatalf("batch while disabled = %d %s, want 403", st, body)
	}
}

func TestCollectionsAPI(t *testing.T) {
	e := newEnv(t)
	alice := e.ids["alice"]
	if st, body := e.do("POST", "/api/collections/posts/records", "alice", map[string]any{"title": "keep me", "views": 3, "owner": alice}); st != 200 {
		t.Fatalf("create: %d %s", st, body)
	}
	// Renaming a field keeps its data.
	st, body := e.do("GET", "/api/collections/posts", "su", nil)
	if st != 200 {
		t.Fatalf("view collection: %d %s", st, body)
	}
	var c map[string]any
	json.Unmarshal([]byte(body), &c)
	fields := c["fields"].([]any)
	for _, f := range fields {
		fm := f.(map[string]any)
		if fm["name"] == "title" {
			fm["name"] = "headline"
		}
	}
	c["listRule"] = "owner = @request.auth.id || public = true"
	st, body = e.do("PATCH", "/api/collections/posts", "su", map[string]any{"fields": fields})
	if st != 200 {
		t.Fatalf("rename field: %d %s", st, body)
	}
	_, body = e.do("GET", "/api/collections/posts/records", "alice", nil)
	if !strings.Contains(body, `"headline":"keep me"`) {
		t.Fatalf("after rename = %s, want the data under the new name", body)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		want       string
	}{
		{"bad rule refused", "PATCH", "/api/collections/posts", map[string]any{"listRule": "nope = 1"}, 400, `"listRule":{`},
		{"type change refused", "PATCH", "/api/collections/posts", map[string]any{"type": "auth"}, 400, ""},
		{"duplicate name", "POST", "/api/collections", map[string]any{"name": "posts", "type": "base"}, 400, `"name":{`},
		{"delete referenced users refused", "DELETE", "/api/collections/users", nil, 400, ""},
		{"scaffolds", "GET", "/api/collections/meta/scaffolds", nil, 200, `"auth"`},
		{"view collection", "POST", "/api/collections", map[string]any{"name": "post_titles", "type": "view", "listRule": "", "viewQuery": "SELECT id, headline FROM posts"}, 200, `"headline"`},
		{"truncate", "DELETE", "/api/collections/posts/truncate", nil, 204, ""},
		{"import", "PUT", "/api/collections/import", map[string]any{"collections": []map[string]any{{"name": "imported", "type": "base", "fields": []map[string]any{{"name": "n", "type": "number"}}}}}, 204, ""},
		{"imported exists", "GET", "/api/collections/imported", nil, 200, `"name":"imported"`},
		{"delete collection", "DELETE", "/api/collections/imported", nil, 204, ""},
		{"deleted collection gone", "GET", "/api/collections/imported", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := e.do(tt.method, tt.path, "su", tt.body)
			if st != tt.wantStatus || !strings.Contains(body, tt.want) {
				t.Fatalf("%s %s = %d %s, want %d containing %s", tt.method, tt.path, st, body, tt.wantStatus, tt.want)
			}
		})
	}
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t)
	big := `{"title":"` + strings.Repeat("x", 2<<20) + `"}`
	st, body := e.do("POST", "/api/collections/posts/records", "alice", big)
	if st != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body = %d %s, want 413", st, body)
	}
}

func urlq(s string) string {
	r := strings.NewReplacer(" ", "%20", "'", "%27", "=", "%3D", "&", "%26", "|", "%7C", "(", "%28", ")", "%29", ",", "%2C", "@", "%40", ">", "%3E", "<", "%3C", "!", "%21")
	return r.Replace(s)
}

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestMoveProjectBetweenEngines moves a populated project SQLite →
// PostgreSQL → SQLite with export and import, and compares every record
// and every rule result (lists, views and client filters, for guests,
// users and superusers) on the three databases. Users keep their password
// hashes: they log in with their passwords everywhere.
func TestMoveProjectBetweenEngines(t *testing.T) {
	pg := storetest.PostgresDSN(t)
	tmp := t.TempDir()
	first, last := filepath.Join(tmp, "first"), filepath.Join(tmp, "last")
	a1, a2 := filepath.Join(tmp, "one.uharchive"), filepath.Join(tmp, "two.uharchive")

	openService(t, first, "", populateProject)
	cli := func(args ...string) string {
		t.Helper()
		var out syncBuffer
		if err := run(context.Background(), append([]string{"underhood"}, args...), noEnv, nil, &out, io.Discard); err != nil {
			t.Fatalf("underhood %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	if out := cli("export", "--dir", first, "--out", a1); !strings.Contains(out, "Exported") {
		t.Errorf("export printed %q", out)
	}
	cli("import", a1, "--db", pg)
	cli("export", "--db", pg, "--out", a2)
	cli("import", "--in", a2, "--dir", last)

	var snaps []projectSnapshot
	for _, db := range []struct{ dir, db string }{{first, ""}, {"", pg}, {last, ""}} {
		openService(t, db.dir, db.db, func(t *testing.T, s *record.Service) {
			snaps = append(snaps, snapshotProject(t, s))
		})
	}
	for _, l := range snaps[0].Logins {
		if !strings.HasSuffix(l, " true") {
			t.Errorf("login %s on the original; want every user to log in", l)
		}
	}
	if len(snaps[0].Records) < 20 || len(snaps[0].Rules) < 20 {
		t.Fatalf("the project has %d records and %d rule results; the test needs more", len(snaps[0].Records), len(snaps[0].Rules))
	}
	t.Logf("compared %d records and %d rule results, e.g. %q", len(snaps[0].Records), len(snaps[0].Rules), snaps[0].Rules[`bob@example.com posts filter="views >= 30 && tags:each ?= 'db'" sort="id"`])
	for i, name := range []string{"PostgreSQL", "SQLite again"} {
		if diff := cmp.Diff(snaps[0], snaps[i+1]); diff != "" {
			t.Errorf("%s differs from the original (-original +%s):\n%s", name, name, diff)
		}
	}

	// An archive only goes into an empty database.
	err := run(context.Background(), []string{"underhood", "import", a1, "--db", pg}, noEnv, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("import into a database with collections = %v, want a refusal", err)
	}
}

// TestImportRefusesBadArchives: a cut, damaged or newer archive changes
// nothing.
func TestImportRefusesBadArchives(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	openService(t, src, "", populateProject)
	archive := filepath.Join(tmp, "a.uharchive")
	if err := run(context.Background(), []string{"underhood", "export", "--dir", src, "--out", archive}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not gzip", []byte("hello"), "not an archive"},
		{"cut", whole[:len(whole)*2/3], ""},
		{"newer version", gzipLines(t, `{"type":"header","format":"underhood-archive","version":99}`), "version 99"},
		{"other format", gzipLines(t, `{"type":"header","format":"zip","version":1}`), "not an underhood archive"},
		{"no trailer", gzipLines(t, `{"type":"header","format":"underhood-archive","version":1}`), "incomplete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			err := run(context.Background(), []string{"underhood", "import", path, "--dir", dir}, noEnv, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("import = %v, want an error containing %q", err, tt.want)
			}
			openService(t, dir, "", func(t *testing.T, s *record.Service) {
				if _, err := s.Collection("posts"); err == nil {
					t.Errorf("a refused import left the posts collection behind")
				}
			})
		})
	}
}

func gzipLines(t *testing.T, lines ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	for _, l := range lines {
		fmt.Fprintln(zw, l)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// openService opens the record service of a data directory or database,
// runs fn and closes it.
func openService(t *testing.T, dir, db string, fn func(t *testing.T, s *record.Service)) {
	t.Helper()
	ctx := context.Background()
	store, err := openStore(ctx, dir, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s, err := record.New(ctx, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	fn(t, s)
}

// callers of the project: their ids are fixed so that every database has
// the same ones.
var projectUsers = []struct{ id, email, password string }{
	{"alice0000000001", "alice@example.com", "alice-password-1"},
	{"bob000000000002", "bob@example.com", "bob-password-22"},
}

// populateProject creates users, teams, posts (every field type, rules on
// the caller and on relations) and a view.
func populateProject(t *testing.T, s *record.Service) {
	t.Helper()
	ctx := context.Background()
	sys := s.SystemRequest()
	save := func(c *underhood.Collection) *underhood.Collection {
		t.Helper()
		saved, err := s.SaveCollection(ctx, sys.Auth, "", c)
		if err != nil {
			t.Fatalf("SaveCollection(%s) = %v", c.Name, err)
		}
		return saved
	}
	create := func(coll string, data map[string]any) *underhood.Record {
		t.Helper()
		r, err := s.Create(ctx, sys, coll, data, "")
		if err != nil {
			t.Fatalf("Create(%s, %v) = %v", coll, data, err)
		}
		return r
	}
	for _, u := range projectUsers {
		create("users", map[string]any{"id": u.id, "email": u.email, "password": u.password, "passwordConfirm": u.password,
			"name": strings.ToUpper(u.email[:1]) + u.email[1:3], "emailVisibility": u.id[0] == 'a'})
	}
	teams := save(&underhood.Collection{Name: "teams", Type: underhood.TypeBase, ListRule: underhood.RuleOf("members ?= @request.auth.id"),
		ViewRule: underhood.RuleOf("members ?= @request.auth.id"),
		Fields: []*underhood.Field{{Name: "name", Type: underhood.FieldText},
			{Name: "members", Type: underhood.FieldRelation, CollectionID: "_pb_users_auth_", MaxSelect: 5}}})
	create("teams", map[string]any{"id": "team00000000001", "name": "Red", "members": []string{projectUsers[0].id}})
	create("teams", map[string]any{"id": "team00000000002", "name": "Blue", "members": []string{projectUsers[0].id, projectUsers[1].id}})
	save(&underhood.Collection{Name: "posts", Type: underhood.TypeBase,
		ListRule:   underhood.RuleOf("public = true || author = @request.auth.id || team.members ?= @request.auth.id"),
		ViewRule:   underhood.RuleOf("public = true || author = @request.auth.id"),
		CreateRule: underhood.RuleOf("@request.auth.id != ''"),
		Fields: []*underhood.Field{
			{Name: "title", Type: underhood.FieldText},
			{Name: "body", Type: underhood.FieldEditor},
			{Name: "views", Type: underhood.FieldNumber},
			{Name: "public", Type: underhood.FieldBool},
			{Name: "site", Type: underhood.FieldURL},
			{Name: "contact", Type: underhood.FieldEmail},
			{Name: "due", Type: underhood.FieldDate},
			{Name: "status", Type: underhood.FieldSelect, Values: []string{"draft", "live"}, MaxSelect: 1},
			{Name: "tags", Type: underhood.FieldSelect, Values: []string{"go", "db", "web"}, MaxSelect: 3},
			{Name: "author", Type: underhood.FieldRelation, CollectionID: "_pb_users_auth_", MaxSelect: 1},
			{Name: "team", Type: underhood.FieldRelation, CollectionID: teams.ID, MaxSelect: 1},
			{Name: "meta", Type: underhood.FieldJSON},
			{Name: "place", Type: underhood.FieldGeoPoint},
			{Name: "created", Type: underhood.FieldAutodate, OnCreate: true},
		},
		Indexes: []string{"CREATE UNIQUE INDEX idx_posts_title ON posts (title)"}})
	metas := []string{`{"a":1,"b":[true,null,"x"]}`, `"text"`, `[1,2.5,-3]`, `{"nested":{"k":"Ü"}}`, ``}
	for i := range 24 {
		author := projectUsers[i%2].id
		data := map[string]any{
			"id": fmt.Sprintf("post%011d", i), "title": fmt.Sprintf("Post %02d %s", i, []string{"Go", "db", "ÜNÏ", "it's"}[i%4]),
			"body": "<p>body</p>", "views": float64(i*7) / 2, "public": i%3 == 0, "site": "https://example.com/" + fmt.Sprint(i),
			"contact": fmt.Sprintf("c%d@example.com", i), "due": fmt.Sprintf("2024-%02d-15 10:00:00.000Z", i%12+1),
			"status": []string{"draft", "live"}[i%2], "tags": [][]string{{}, {"go"}, {"db", "web"}}[i%3], "author": author,
			"place": map[string]any{"lon": float64(i) - 12.5, "lat": 45.25},
		}
		if i%4 != 3 {
			data["team"] = fmt.Sprintf("team0000000000%d", i%2+1)
		}
		if m := metas[i%len(metas)]; m != "" {
			data["meta"] = json.RawMessage(m)
		}
		create("posts", data)
	}
	save(&underhood.Collection{Name: "post_titles", Type: underhood.TypeView, ListRule: underhood.RuleOf("views > 20"), ViewRule: underhood.RuleOf(""),
		ViewQuery: "SELECT p.id, p.title, p.views, u.name AS author_name FROM posts p LEFT JOIN users u ON u.id = p.author"})
	if _, err := s.UpdateSettings(ctx, sys.Auth, []byte(`{"meta":{"appName":"Moved app"}}`)); err != nil {
		t.Fatal(err)
	}
}

// projectSnapshot is everything the move must keep.
type projectSnapshot struct {
	Collections []string          // name, type, rules and indexes
	Records     map[string]string // "collection/id" → the record's JSON
	Rules       map[string]string // "caller collection query" → ids and total
	Settings    string
	Logins      []string
}

func snapshotProject(t *testing.T, s *record.Service) projectSnapshot {
	t.Helper()
	ctx := context.Background()
	snap := projectSnapshot{Records: map[string]string{}, Rules: map[string]string{}}
	rule := func(r underhood.Rule) string {
		if r == nil {
			return "null"
		}
		return fmt.Sprintf("%q", *r)
	}
	sys := s.SystemRequest()
	for _, c := range s.Collections() {
		snap.Collections = append(snap.Collections, fmt.Sprintf("%s %s %s list=%s view=%s create=%s fields=%d indexes=%q",
			c.ID, c.Name, c.Type, rule(c.ListRule), rule(c.ViewRule), rule(c.CreateRule), len(c.Fields), c.Indexes))
		if c.Name == record.OTPsName || c.Name == record.MFAsName || c.Name == record.AuthOriginsName {
			continue // rows of the auth flows; the logins below add to them
		}
		res, err := s.List(ctx, sys, c.Name, record.ListParams{PerPage: record.MaxPerPage, Sort: "id"})
		if err != nil {
			t.Fatalf("List(%s) = %v", c.Name, err)
		}
		for _, r := range res.Items {
			full, err := s.FindRecord(ctx, c, r.ID())
			if err != nil {
				t.Fatalf("FindRecord(%s, %s) = %v", c.Name, r.ID(), err)
			}
			snap.Records[c.Name+"/"+r.ID()] = normalizeJSON(t, full.Data)
		}
	}
	sort.Strings(snap.Collections)

	users, err := s.Collection("users")
	if err != nil {
		t.Fatal(err)
	}
	callers := map[string]*record.Request{"guest": {Method: "GET"}, "superuser": sys}
	for _, u := range projectUsers {
		rec, err := s.FindRecord(ctx, users, u.id)
		if err != nil {
			t.Fatal(err)
		}
		callers[u.email] = &record.Request{Method: "GET", Auth: rec}
	}
	queries := []record.ListParams{
		{}, {Filter: "title ~ 'post 1'"}, {Filter: "views >= 30 && tags:each ?= 'db'"}, {Filter: "meta.a = 1 || meta.nested.k = 'Ü'"},
		{Filter: "due >= '2024-06-01' && author.name != ''"}, {Filter: "geoDistance(place.lon, place.lat, 0, 45) < 500"},
		{Filter: "strftime('%m', due) = '03' || team.name ~ 'ED'"}, {Sort: "-views,title"}, {Sort: "title", Filter: "public = false"},
	}
	for name, req := range callers {
		for _, coll := range []string{"posts", "teams", "post_titles", "users"} {
			for _, p := range queries {
				if coll != "posts" && (p.Filter != "" || p.Sort != "") {
					continue
				}
				p.PerPage = record.MaxPerPage
				if p.Sort == "" {
					p.Sort = "id"
				}
				key := fmt.Sprintf("%s %s filter=%q sort=%q", name, coll, p.Filter, p.Sort)
				res, err := s.List(ctx, req, coll, p)
				if err != nil {
					snap.Rules[key] = "error " + underhood.ErrorCode(err)
					continue
				}
				var ids []string
				for _, r := range res.Items {
					ids = append(ids, r.ID())
					if _, err := s.View(ctx, req, coll, r.ID(), ""); err != nil {
						ids = append(ids, "(view: "+underhood.ErrorCode(err)+")")
					}
				}
				snap.Rules[key] = fmt.Sprintf("%d %v", res.TotalItems, ids)
			}
		}
	}
	st := s.Settings()
	snap.Settings = st.Meta.AppName

	a := auth.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, u := range projectUsers {
		res, err := a.AuthWithPassword(ctx, "users", u.email, u.password, "", "")
		ok := err == nil && res.Token != ""
		snap.Logins = append(snap.Logins, fmt.Sprintf("%s %v", u.email, ok))
	}
	return snap
}

// normalizeJSON renders a record's data as JSON with object keys sorted,
// so that JSON values compare by meaning (jsonb keeps its own key order).
func normalizeJSON(t *testing.T, data map[string]any) string {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

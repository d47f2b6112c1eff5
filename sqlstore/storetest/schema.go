package storetest

// This file checks collections: tables, migrations, indexes, views and
// the system tables.

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

func testSaveCollectionMigratesColumns(t *testing.T, newDB NewDB) {
	tests := []struct {
		name   string
		before []*underhood.Field
		rows   []map[string]any
		after  []*underhood.Field
		want   []map[string]any
	}{
		{
			name:   "add field gets zero values",
			before: []*underhood.Field{field("f1", "title", "text")},
			rows:   []map[string]any{{"id": "a", "title": "x"}},
			after:  []*underhood.Field{field("f1", "title", "text"), field("f2", "views", "number"), field("f3", "tags", "json")},
			want:   []map[string]any{{"id": "a", "title": "x", "views": 0.0, "tags": json.RawMessage(nil)}},
		},
		{
			name:   "rename keeps data",
			before: []*underhood.Field{field("f1", "title", "text"), field("f2", "views", "number")},
			rows:   []map[string]any{{"id": "a", "title": "x", "views": 7.0}},
			after:  []*underhood.Field{field("f1", "headline", "text"), field("f2", "views", "number"), field("f3", "body", "editor")},
			want:   []map[string]any{{"id": "a", "headline": "x", "views": 7.0, "body": ""}},
		},
		{
			name:   "rename changing case only",
			before: []*underhood.Field{field("f1", "title", "text")},
			rows:   []map[string]any{{"id": "a", "title": "x"}},
			after:  []*underhood.Field{field("f1", "Title", "text")},
			want:   []map[string]any{{"id": "a", "Title": "x"}},
		},
		{
			name:   "swapped names keep each column's data",
			before: []*underhood.Field{field("f1", "a", "text"), field("f2", "b", "text")},
			rows:   []map[string]any{{"id": "r", "a": "1", "b": "2"}},
			after:  []*underhood.Field{field("f2", "a", "text"), field("f1", "b", "text")},
			want:   []map[string]any{{"id": "r", "a": "2", "b": "1"}},
		},
		{
			name:   "drop field",
			before: []*underhood.Field{field("f1", "title", "text"), field("f2", "body", "text")},
			rows:   []map[string]any{{"id": "a", "title": "x", "body": "y"}},
			after:  []*underhood.Field{field("f1", "title", "text")},
			want:   []map[string]any{{"id": "a", "title": "x"}},
		},
		{
			name:   "drop and add a field of the same name",
			before: []*underhood.Field{field("f1", "title", "text")},
			rows:   []map[string]any{{"id": "a", "title": "x"}},
			after:  []*underhood.Field{field("f2", "title", "number")},
			want:   []map[string]any{{"id": "a", "title": 0.0}},
		},
		{
			name:   "text to number casts",
			before: []*underhood.Field{field("f1", "n", "text")},
			rows:   []map[string]any{{"id": "a", "n": "12"}, {"id": "b", "n": "abc"}, {"id": "c", "n": "3.5"}},
			after:  []*underhood.Field{field("f1", "n", "number")},
			want:   []map[string]any{{"id": "a", "n": 12.0}, {"id": "b", "n": 0.0}, {"id": "c", "n": 3.5}},
		},
		{
			name:   "number to text",
			before: []*underhood.Field{field("f1", "n", "number")},
			rows:   []map[string]any{{"id": "a", "n": 12.0}, {"id": "b", "n": 3.5}},
			after:  []*underhood.Field{field("f1", "n", "text")},
			want:   []map[string]any{{"id": "a", "n": "12"}, {"id": "b", "n": "3.5"}},
		},
		{
			name:   "number to bool",
			before: []*underhood.Field{field("f1", "n", "number")},
			rows:   []map[string]any{{"id": "a", "n": 2.0}, {"id": "b", "n": 0.0}},
			after:  []*underhood.Field{field("f1", "n", "bool")},
			want:   []map[string]any{{"id": "a", "n": true}, {"id": "b", "n": false}},
		},
		{
			name:   "single to multi relation wraps the value",
			before: []*underhood.Field{relation("f1", "rel", 1)},
			rows:   []map[string]any{{"id": "a", "rel": "x1"}, {"id": "b", "rel": ""}},
			after:  []*underhood.Field{relation("f1", "rel", 5)},
			want:   []map[string]any{{"id": "a", "rel": []string{"x1"}}, {"id": "b", "rel": []string{}}},
		},
		{
			name:   "multi to single relation keeps the first",
			before: []*underhood.Field{relation("f1", "rel", 5)},
			rows:   []map[string]any{{"id": "a", "rel": []string{"x1", "x2"}}, {"id": "b", "rel": []string{}}},
			after:  []*underhood.Field{relation("f1", "rel", 1)},
			want:   []map[string]any{{"id": "a", "rel": "x1"}, {"id": "b", "rel": ""}},
		},
		{
			name:   "text to json",
			before: []*underhood.Field{field("f1", "j", "text")},
			rows:   []map[string]any{{"id": "a", "j": "hello"}, {"id": "b", "j": ""}, {"id": "c", "j": `{"k":1}`}},
			after:  []*underhood.Field{field("f1", "j", "json")},
			want: []map[string]any{
				{"id": "a", "j": json.RawMessage(`"hello"`)}, {"id": "b", "j": json.RawMessage(nil)}, {"id": "c", "j": json.RawMessage(`{"k":1}`)},
			},
		},
		{
			name:   "json to text",
			before: []*underhood.Field{field("f1", "j", "json")},
			rows:   []map[string]any{{"id": "a", "j": json.RawMessage(`"hello"`)}, {"id": "b", "j": json.RawMessage(nil)}, {"id": "c", "j": json.RawMessage(`[1,2]`)}},
			after:  []*underhood.Field{field("f1", "j", "text")},
			want:   []map[string]any{{"id": "a", "j": "hello"}, {"id": "b", "j": ""}, {"id": "c", "j": "[1,2]"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, newDB)
			before := newCollection("posts", tt.before...)
			saveCollection(t, s, nil, before)
			insert(t, s, before, tt.rows...)

			after := newCollection("posts", tt.after...)
			saveCollection(t, s, before, after)
			got := find(t, s, sqlstore.Query{Collection: after, Order: []sqlstore.Order{{Field: "id"}}})
			var data []map[string]any
			for _, r := range got {
				data = append(data, r.Data)
			}
			if diff := cmp.Diff(tt.want, data); diff != "" {
				t.Errorf("records after migration (-want +got):\n%s", diff)
			}

			// The table has exactly the new columns.
			var cols []string
			read(t, s, func(q sqlstore.Querier) error {
				rows, err := q.QueryContext(context.Background(), `SELECT * FROM "posts"`)
				if err != nil {
					return err
				}
				defer rows.Close()
				cols, err = rows.Columns()
				return err
			})
			var wantCols []string
			for _, f := range after.Fields {
				wantCols = append(wantCols, f.Name)
			}
			// Engines without a rowid keep a hidden column, and the order
			// of the columns is not the fields'.
			cols = slices.DeleteFunc(cols, func(c string) bool { return c == "_rowid_" })
			slices.Sort(cols)
			slices.Sort(wantCols)
			if diff := cmp.Diff(wantCols, cols); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
		})
	}
}

func testRenameCollectionKeepsDataAndIndexes(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	old := newCollection("posts", field("f1", "slug", "text"))
	old.Indexes = []string{`CREATE UNIQUE INDEX idx_slug ON posts (slug)`}
	saveCollection(t, s, nil, old)
	insert(t, s, old, map[string]any{"id": "a", "slug": "hello"})

	renamed := newCollection("articles", field("f1", "slug", "text"))
	renamed.ID = old.ID
	renamed.Indexes = old.Indexes // still names the old table
	saveCollection(t, s, old, renamed)

	got := find(t, s, sqlstore.Query{Collection: renamed})
	if diff := cmp.Diff([]any{"hello"}, column(got, "slug")); diff != "" {
		t.Errorf("slugs after rename (-want +got):\n%s", diff)
	}
	err := s.Write(context.Background(), func(q sqlstore.Querier) error {
		return s.InsertRecord(context.Background(), q, &underhood.Record{Collection: renamed, Data: map[string]any{"id": "b", "slug": "hello"}})
	})
	if underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("duplicate slug after rename = %v, want the unique index to refuse it", err)
	}
	err = s.Read(context.Background(), func(q sqlstore.Querier) error {
		_, err := q.ExecContext(context.Background(), `SELECT 1 FROM posts`)
		return err
	})
	if err == nil {
		t.Errorf("old table still exists after rename")
	}
	var list []*underhood.Collection
	read(t, s, func(q sqlstore.Querier) (err error) {
		list, err = s.LoadCollections(context.Background(), q)
		return err
	})
	if len(list) != 1 || list[0].Name != "articles" {
		t.Errorf("LoadCollections after rename = %v, want [articles]", list)
	}
}

func testUniqueViolationNamesTheColumns(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "slug", "text"), field("f2", "a", "text"), field("f3", "b", "number"), field("f4", "title", "text"))
	c.Indexes = []string{
		`CREATE UNIQUE INDEX idx_slug ON posts (slug)`,
		`CREATE UNIQUE INDEX idx_ab ON "posts" (a, b) WHERE a != ''`,
		`CREATE UNIQUE INDEX idx_lower ON posts (lower(title))`,
		`CREATE INDEX idx_title ON posts (title);`,
	}
	saveCollection(t, s, nil, c)
	insert(t, s, c, map[string]any{"id": "r1", "slug": "s1", "a": "x", "b": 1.0, "title": "Hello"})
	insert(t, s, c, map[string]any{"id": "r2", "slug": "s2", "a": "x", "b": 2.0, "title": "Other"})

	notUnique := underhood.FieldError{Code: "validation_not_unique", Message: "Value must be unique."}
	tests := []struct {
		name   string
		update bool
		data   map[string]any
		want   map[string]any
	}{
		{"insert single column", false, map[string]any{"id": "r3", "slug": "s1", "title": "t3"}, map[string]any{"slug": notUnique}},
		{"insert two columns", false, map[string]any{"id": "r3", "slug": "s3", "a": "x", "b": 1.0, "title": "t3"}, map[string]any{"a": notUnique, "b": notUnique}},
		{"insert expression index", false, map[string]any{"id": "r3", "slug": "s3", "title": "HELLO"}, map[string]any{"title": notUnique}},
		{"insert duplicate id", false, map[string]any{"id": "r1", "slug": "s9", "title": "t9"}, map[string]any{"id": notUnique}},
		{"update single column", true, map[string]any{"id": "r2", "slug": "s1", "a": "x", "b": 2.0, "title": "Other"}, map[string]any{"slug": notUnique}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Write(context.Background(), func(q sqlstore.Querier) error {
				r := &underhood.Record{Collection: c, Data: tt.data}
				if tt.update {
					return s.UpdateRecord(context.Background(), q, r)
				}
				return s.InsertRecord(context.Background(), q, r)
			})
			var ue *underhood.Error
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want *underhood.Error", err)
			}
			if ue.Code != underhood.EInvalid || ue.Message != "Failed to save record." {
				t.Errorf("err = %q %q, want invalid \"Failed to save record.\"", ue.Code, ue.Message)
			}
			if diff := cmp.Diff(tt.want, ue.Data); diff != "" {
				t.Errorf("error data (-want +got):\n%s", diff)
			}
		})
	}
	// A partial index ignores rows outside its WHERE.
	insert(t, s, c, map[string]any{"id": "r4", "slug": "s4", "a": "", "b": 1.0, "title": "t4"},
		map[string]any{"id": "r5", "slug": "s5", "a": "", "b": 1.0, "title": "t5"})
}

func testSaveCollectionRefusesBadIndexes(t *testing.T, newDB NewDB) {
	tests := []string{
		`DROP TABLE posts`,
		`CREATE INDEX idx_x ON posts (title); DROP TABLE posts`,
		`CREATE INDEX idx_x ON other (title)`,
		`CREATE TABLE idx_x (title)`,
		`CREATE INDEX idx_x ON posts`,
		`CREATE INDEX idx_x ON posts (title) garbage`,
		`CREATE INDEX idx_x ON posts (title) WHERE`,
		`CREATE INDEX idx_x ON posts (nope)`,
		`CREATE UNIQUE INDEX idx_x ON posts (title) /* unterminated`,
	}
	for _, src := range tests {
		t.Run(src, func(t *testing.T) {
			s := openStore(t, newDB)
			c := newCollection("posts", field("f1", "title", "text"))
			saveCollection(t, s, nil, c)
			next := newCollection("posts", field("f1", "title", "text"), field("f2", "body", "text"))
			next.Indexes = []string{`CREATE INDEX ok ON posts (title)`, src}
			err := s.Write(context.Background(), func(q sqlstore.Querier) error {
				return s.SaveCollection(context.Background(), q, c, next)
			})
			var ue *underhood.Error
			if !errors.As(err, &ue) || ue.Code != underhood.EInvalid {
				t.Fatalf("SaveCollection with index %q = %v, want EInvalid", src, err)
			}
			idx, _ := ue.Data["indexes"].(map[string]any)
			if _, ok := idx["1"]; !ok {
				t.Errorf("error data = %v, want indexes.1", ue.Data)
			}
			// Nothing changed: the table still has its old columns.
			got := find(t, s, sqlstore.Query{Collection: c})
			if len(got) != 0 {
				t.Errorf("Find = %v", got)
			}
			err = s.Read(context.Background(), func(q sqlstore.Querier) error {
				_, err := q.ExecContext(context.Background(), `SELECT body FROM posts`)
				return err
			})
			if err == nil {
				t.Errorf("the failed migration added a column")
			}
		})
	}
}

func testIndexWithSemicolonInString(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "title", "text"))
	c.Indexes = []string{`CREATE UNIQUE INDEX idx_x ON posts (title) WHERE title != ';'`}
	saveCollection(t, s, nil, c)
	insert(t, s, c, map[string]any{"title": ";"}, map[string]any{"title": ";"})
}

func testViewCollection(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	posts := newCollection("posts", field("f1", "title", "text"), field("f2", "views", "number"))
	saveCollection(t, s, nil, posts)
	insert(t, s, posts,
		map[string]any{"id": "a", "title": "A", "views": 1.0},
		map[string]any{"id": "b", "title": "B", "views": 5.0})

	view := &underhood.Collection{ID: "pbc_popular", Name: "popular", Type: underhood.TypeView,
		ViewQuery: `SELECT id, title FROM posts WHERE views > 2;`}
	read(t, s, func(q sqlstore.Querier) (err error) {
		view.Fields, err = s.ViewFields(context.Background(), q, view.ViewQuery, []*underhood.Collection{posts})
		return err
	})
	saveCollection(t, s, nil, view)
	if got := column(find(t, s, sqlstore.Query{Collection: view}), "title"); !cmp.Equal(got, []any{"B"}) {
		t.Errorf("view titles = %v, want [B]", got)
	}

	next := view.Clone()
	next.ViewQuery = `SELECT id, title FROM posts WHERE views >= 1`
	saveCollection(t, s, view, next)
	if got := column(find(t, s, sqlstore.Query{Collection: next, Order: []sqlstore.Order{{Field: "id"}}}), "title"); !cmp.Equal(got, []any{"A", "B"}) {
		t.Errorf("view titles after change = %v, want [A B]", got)
	}

	for _, bad := range []string{
		`DELETE FROM posts`,
		`SELECT id FROM posts; DROP TABLE posts`,
		`SELECT nope FROM posts`,
		`WITH x AS (SELECT 1) DELETE FROM posts`,
	} {
		c := next.Clone()
		c.ViewQuery = bad
		err := s.Write(context.Background(), func(q sqlstore.Querier) error {
			return s.SaveCollection(context.Background(), q, next, c)
		})
		var ue *underhood.Error
		if !errors.As(err, &ue) || ue.Code != underhood.EInvalid || ue.Data["viewQuery"] == nil {
			t.Errorf("SaveCollection with view query %q = %v, want EInvalid on viewQuery", bad, err)
		}
	}
	if n := len(find(t, s, sqlstore.Query{Collection: posts})); n != 2 {
		t.Errorf("posts has %d records after refused view queries, want 2", n)
	}

	write(t, s, func(q sqlstore.Querier) error { return s.DeleteCollection(context.Background(), q, next) })
	err := s.Read(context.Background(), func(q sqlstore.Querier) error {
		_, err := s.Find(context.Background(), q, sqlstore.Query{Collection: next})
		return err
	})
	if err == nil {
		t.Errorf("Find on a deleted view = nil, want an error")
	}
}

func testCollectionsAndParamsPersist(t *testing.T, newDB NewDB) {
	open := newDB(t)
	s := open(t)
	a := newCollection("zeta", field("f1", "title", "text"))
	b := newCollection("alpha", field("f1", "title", "text"))
	b.ListRule = underhood.RuleOf("title != ''")
	saveCollection(t, s, nil, a)
	saveCollection(t, s, nil, b)
	insert(t, s, a, map[string]any{"title": "x"})
	write(t, s, func(q sqlstore.Querier) error {
		return s.SetParam(context.Background(), q, "settings", map[string]any{"appName": "demo"})
	})
	write(t, s, func(q sqlstore.Querier) error {
		return s.SetParam(context.Background(), q, "settings", map[string]any{"appName": "demo2"})
	})
	write(t, s, func(q sqlstore.Querier) error { return s.TruncateCollection(context.Background(), q, a) })
	s.Close()

	s = open(t)
	var list []*underhood.Collection
	read(t, s, func(q sqlstore.Querier) (err error) {
		list, err = s.LoadCollections(context.Background(), q)
		return err
	})
	if len(list) != 2 || list[0].Name != "zeta" || list[1].Name != "alpha" {
		t.Fatalf("LoadCollections = %v, want [zeta alpha] (creation order)", list)
	}
	wantJSON, _ := b.MarshalStorage()
	gotJSON, _ := list[1].MarshalStorage()
	if diff := cmp.Diff(string(wantJSON), string(gotJSON)); diff != "" {
		t.Errorf("stored collection (-want +got):\n%s", diff)
	}
	if n := len(find(t, s, sqlstore.Query{Collection: a})); n != 0 {
		t.Errorf("truncated collection has %d records", n)
	}
	var got struct{ AppName string }
	var found bool
	read(t, s, func(q sqlstore.Querier) (err error) {
		found, err = s.GetParam(context.Background(), q, "settings", &got)
		return err
	})
	if !found || got.AppName != "demo2" {
		t.Errorf("GetParam(settings) = %v %+v, want true demo2", found, got)
	}
	read(t, s, func(q sqlstore.Querier) (err error) {
		found, err = s.GetParam(context.Background(), q, "missing", &got)
		return err
	})
	if found {
		t.Errorf("GetParam(missing) found = true")
	}

	write(t, s, func(q sqlstore.Querier) error { return s.DeleteCollection(context.Background(), q, a) })
	read(t, s, func(q sqlstore.Querier) (err error) {
		list, err = s.LoadCollections(context.Background(), q)
		return err
	})
	if len(list) != 1 || list[0].Name != "alpha" {
		t.Errorf("LoadCollections after delete = %v, want [alpha]", list)
	}
}

// testMigrationsSurviveBrokenViews: a view left broken by a migration (it
// names a dropped column) must not block later migrations of any table.
func testMigrationsSurviveBrokenViews(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	posts := newCollection("posts", field("f1", "title", "text"), field("f2", "body", "text"))
	notes := newCollection("notes", field("n1", "a", "text"))
	saveCollection(t, s, nil, posts)
	saveCollection(t, s, nil, notes)
	insert(t, s, notes, map[string]any{"id": "n", "a": "keep"})
	view := &underhood.Collection{ID: "pbc_v", Name: "v", Type: underhood.TypeView, ViewQuery: `SELECT id, body FROM posts`,
		Fields: []*underhood.Field{idField(), field("f2", "body", "text")}}
	saveCollection(t, s, nil, view)

	steps := []struct {
		name     string
		old, new *underhood.Collection
	}{
		{"drop the view's column", posts, newCollection("posts", field("f1", "title", "text"))},
		{"rename a column elsewhere", notes, newCollection("notes", field("n1", "b", "text"))},
		{"add a column elsewhere", newCollection("notes", field("n1", "b", "text")), newCollection("notes", field("n1", "b", "text"), field("n2", "c", "number"))},
		{"rename the table", newCollection("posts", field("f1", "title", "text")), func() *underhood.Collection {
			c := newCollection("articles", field("f1", "title", "text"))
			c.ID = posts.ID
			return c
		}()},
	}
	for _, st := range steps {
		err := s.Write(context.Background(), func(q sqlstore.Querier) error {
			return s.SaveCollection(context.Background(), q, st.old, st.new)
		})
		if err != nil {
			t.Fatalf("%s: SaveCollection = %v", st.name, err)
		}
	}
	final := newCollection("notes", field("n1", "b", "text"), field("n2", "c", "number"))
	got := find(t, s, sqlstore.Query{Collection: final})
	if len(got) != 1 || got[0].Data["b"] != "keep" {
		t.Errorf("notes after migrations = %v, want b=keep", got)
	}
}

// testIndexCollations: indexes name fields in any case, as PocketBase's
// do, and COLLATE NOCASE makes a unique index ignore case on every engine.
func testIndexCollations(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("refs", field("f1", "collectionRef", "text"), field("f2", "recordRef", "text"), field("f3", "email", "text"))
	c.Indexes = []string{
		`CREATE UNIQUE INDEX idx_refs_ref ON refs (collectionRef, recordRef)`,
		`CREATE UNIQUE INDEX idx_refs_email ON refs (email COLLATE NOCASE) WHERE email != ''`,
		`CREATE INDEX idx_refs_rec ON refs (RECORDREF DESC)`,
	}
	saveCollection(t, s, nil, c)
	insert(t, s, c, map[string]any{"id": "a", "collectionRef": "c1", "recordRef": "r1", "email": "Ann@x.io"},
		map[string]any{"id": "b", "collectionRef": "c1", "recordRef": "r2", "email": ""},
		map[string]any{"id": "c", "collectionRef": "c2", "recordRef": "r1", "email": ""})
	notUnique := underhood.FieldError{Code: "validation_not_unique", Message: "Value must be unique."}
	tests := []struct {
		name string
		data map[string]any
		want map[string]any
	}{
		{"two mixed-case columns", map[string]any{"id": "d", "collectionRef": "c1", "recordRef": "r1"},
			map[string]any{"collectionRef": notUnique, "recordRef": notUnique}},
		{"case-insensitive email", map[string]any{"id": "d", "collectionRef": "c3", "recordRef": "r1", "email": "ANN@X.IO"},
			map[string]any{"email": notUnique}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Write(context.Background(), func(q sqlstore.Querier) error {
				return s.InsertRecord(context.Background(), q, &underhood.Record{Collection: c, Data: tt.data})
			})
			var ue *underhood.Error
			if !errors.As(err, &ue) {
				t.Fatalf("InsertRecord = %v, want *underhood.Error", err)
			}
			if diff := cmp.Diff(tt.want, ue.Data); diff != "" {
				t.Errorf("error data (-want +got):\n%s", diff)
			}
		})
	}
}

// testViewsFollowTheirTables: a view keeps working while the tables it
// reads change in ways that keep its columns, and a view broken by a
// change (its table deleted) blocks no other change.
func testViewsFollowTheirTables(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	posts := newCollection("posts", field("f1", "title", "text"), field("f2", "views", "number"))
	other := newCollection("other", field("o1", "x", "text"))
	saveCollection(t, s, nil, posts)
	saveCollection(t, s, nil, other)
	insert(t, s, posts, map[string]any{"id": "a", "title": "A", "views": 3.0})
	view := &underhood.Collection{ID: "pbc_v", Name: "v", Type: underhood.TypeView, ViewQuery: `SELECT id, title FROM posts`,
		Fields: []*underhood.Field{idField(), field("f1", "title", "text")}}
	saveCollection(t, s, nil, view)
	// A view of the view.
	view2 := &underhood.Collection{ID: "pbc_v2", Name: "v2", Type: underhood.TypeView, ViewQuery: `SELECT id, title FROM v`,
		Fields: []*underhood.Field{idField(), field("f1", "title", "text")}}
	saveCollection(t, s, nil, view2)

	changed := newCollection("posts", field("f1", "title", "text"), field("f2", "views", "text"), field("f3", "body", "text"))
	saveCollection(t, s, posts, changed)
	for _, v := range []*underhood.Collection{view, view2} {
		if got := column(find(t, s, sqlstore.Query{Collection: v}), "title"); !cmp.Equal(got, []any{"A"}) {
			t.Errorf("%s after its table changed = %v, want [A]", v.Name, got)
		}
	}
	write(t, s, func(q sqlstore.Querier) error { return s.DeleteCollection(context.Background(), q, changed) })
	err := s.Read(context.Background(), func(q sqlstore.Querier) error {
		_, err := s.Find(context.Background(), q, sqlstore.Query{Collection: view})
		return err
	})
	if err == nil {
		t.Errorf("Find on a view of a deleted table = nil, want an error")
	}
	saveCollection(t, s, other, newCollection("other", field("o1", "x", "text"), field("o2", "y", "bool")))
	write(t, s, func(q sqlstore.Querier) error { return s.DeleteCollection(context.Background(), q, view2) })
	write(t, s, func(q sqlstore.Querier) error { return s.DeleteCollection(context.Background(), q, view) })
}

package record

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
)

// schemaFixture returns the stored collections most tests run against:
// the defaults plus a "posts" base collection and an "active" view.
func schFixture(t *testing.T) []*underhood.Collection {
	t.Helper()
	all := DefaultCollections()
	posts := schPrepareOK(t, nil, &underhood.Collection{
		Name: "posts", Type: underhood.TypeBase,
		Fields: []*underhood.Field{
			{Name: "title", Type: underhood.FieldText},
			{Name: "slug", Type: underhood.FieldText},
			{Name: "author", Type: underhood.FieldRelation, CollectionID: underhood.UsersID, MaxSelect: 1},
		},
		Indexes: []string{"CREATE UNIQUE INDEX idx_posts_slug ON posts (slug)"},
	}, all)
	all = append(all, posts)
	view := schPrepareOK(t, nil, &underhood.Collection{
		Name: "active", Type: underhood.TypeView, ViewQuery: "SELECT id FROM posts",
		Fields: []*underhood.Field{{Name: "id", Type: underhood.FieldText}},
	}, all)
	return append(all, view)
}

func schPrepareOK(t *testing.T, old, c *underhood.Collection, all []*underhood.Collection) *underhood.Collection {
	t.Helper()
	got, err := PrepareCollection(old, c, all, nil)
	if err != nil {
		t.Fatalf("PrepareCollection(%s) error: %v", c.Name, err)
	}
	return got
}

func schFind(all []*underhood.Collection, name string) *underhood.Collection {
	for _, c := range all {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// errorAt returns the FieldError code found at a dotted path of the error
// data ("fields.2.name"), "" when there is none, or "<not invalid>" when
// err is not an EInvalid *underhood.Error.
func schErrorAt(err error, path string) string {
	var e *underhood.Error
	if !errors.As(err, &e) || e.Code != underhood.EInvalid {
		return "<not invalid>"
	}
	var cur any = e.Data
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[key]
	}
	if fe, ok := cur.(underhood.FieldError); ok {
		return fe.Code
	}
	return ""
}

func schBase(name string, fields ...*underhood.Field) *underhood.Collection {
	return &underhood.Collection{Name: name, Type: underhood.TypeBase, Fields: fields}
}

func TestPrepareCollectionErrors(t *testing.T) {
	all := schFixture(t)
	posts := schFind(all, "posts")
	users := schFind(all, "users")
	superusers := schFind(all, underhood.SuperusersName)
	view := schFind(all, "active")
	lim := limitOf
	withPosts := func(edit func(c *underhood.Collection)) *underhood.Collection {
		c := posts.Clone()
		edit(c)
		return c
	}
	text := func(name string) *underhood.Field { return &underhood.Field{Name: name, Type: underhood.FieldText} }

	tests := []struct {
		name  string
		old   *underhood.Collection
		c     *underhood.Collection
		rule  error // checkRule result for every rule
		path  string
		want  string
		extra map[string]string // more paths expected in the same error
	}{
		{name: "name required", c: schBase(""), path: "name", want: "validation_required"},
		{name: "name characters", c: schBase("my posts"), path: "name", want: "validation_invalid_name"},
		{name: "name dash", c: schBase("my-posts"), path: "name", want: "validation_invalid_name"},
		{name: "name too long", c: schBase(strings.Repeat("a", 101)), path: "name", want: "validation_length_out_of_range"},
		{name: "name underscore", c: schBase("_secret"), path: "name", want: "validation_invalid_name"},
		{name: "name via", c: schBase("posts_via_x"), path: "name", want: "validation_found_via"},
		{name: "name sqlite", c: schBase("sqlite_master"), path: "name", want: "validation_invalid_name"},
		{name: "name system table", c: &underhood.Collection{Name: "_params", Type: "base", System: true}, path: "name", want: "validation_invalid_name"},
		{name: "name not unique", c: schBase("POSTS"), path: "name", want: "validation_collection_name_exists"},
		{name: "name resembling an id is accepted", c: schBase(underhood.UsersID[1:]), path: "name", want: ""},
		{name: "name equals another collection id", c: schBase(posts.ID), path: "name", want: "validation_collection_name_id_duplicate"},
		{name: "type unknown", c: &underhood.Collection{Name: "x", Type: "table"}, path: "type", want: "validation_in_invalid"},
		{name: "type change", old: posts, c: withPosts(func(c *underhood.Collection) { c.Type = underhood.TypeAuth }), path: "type", want: "validation_collection_type_change"},
		{name: "id taken", c: &underhood.Collection{ID: posts.ID, Name: "other", Type: "base"}, path: "id", want: "validation_not_unique"},
		{name: "id invalid", c: &underhood.Collection{ID: "a b", Name: "other", Type: "base"}, path: "id", want: "validation_invalid_id"},
		{name: "id change", old: posts, c: withPosts(func(c *underhood.Collection) { c.ID = "other" }), path: "id", want: "validation_id_change"},
		{name: "system flag change", old: posts, c: withPosts(func(c *underhood.Collection) { c.System = true }), path: "system", want: "validation_collection_system_flag_change"},
		{name: "system rename", old: superusers, c: func() *underhood.Collection { c := superusers.Clone(); c.Name = "_admins"; return c }(), path: "name", want: "validation_collection_system_name_change"},
		{name: "system rule change", old: superusers, c: func() *underhood.Collection {
			c := superusers.Clone()
			c.ListRule = underhood.RuleOf("")
			return c
		}(), path: "listRule", want: "validation_collection_system_rule_change"},
		{name: "field name required", c: schBase("x", text("")), path: "fields.1.name", want: "validation_required"},
		{name: "field name characters", c: schBase("x", text("a-b")), path: "fields.1.name", want: "validation_invalid_name"},
		{name: "field name too long", c: schBase("x", text(strings.Repeat("a", 101))), path: "fields.1.name", want: "validation_length_out_of_range"},
		{name: "field name reserved expand", c: schBase("x", text("expand")), path: "fields.1.name", want: "validation_reserved_field_name"},
		{name: "field name reserved collectionId", c: schBase("x", text("collectionId")), path: "fields.1.name", want: "validation_reserved_field_name"},
		{name: "field name reserved collectionName", c: schBase("x", text("collectionName")), path: "fields.1.name", want: "validation_reserved_field_name"},
		{name: "field name via", c: schBase("x", text("a_via_b")), path: "fields.1.name", want: "validation_found_via"},
		{name: "auth reserved passwordConfirm", c: &underhood.Collection{Name: "members", Type: "auth", Fields: []*underhood.Field{text("passwordConfirm")}}, path: "fields.1.name", want: "validation_reserved_field_name"},
		{name: "auth reserved oldPassword", c: &underhood.Collection{Name: "members", Type: "auth", Fields: []*underhood.Field{text("oldPassword")}}, path: "fields.1.name", want: "validation_reserved_field_name"},
		{name: "base may use passwordConfirm", c: schBase("x", text("passwordConfirm")), path: "fields", want: ""},
		{name: "field name duplicate", c: schBase("x", text("title"), text("Title")), path: "fields.2.name", want: "validation_duplicated_field_name"},
		{name: "field id duplicate", c: schBase("x", &underhood.Field{ID: "f1", Name: "a", Type: "text"}, &underhood.Field{ID: "f1", Name: "b", Type: "text"}), path: "fields.2.id", want: "validation_duplicated_field_id"},
		{name: "field type unknown", c: schBase("x", &underhood.Field{Name: "a", Type: "color"}), path: "fields.1.type", want: "validation_invalid_field_type"},
		{name: "field type change", old: posts, c: withPosts(func(c *underhood.Collection) { c.Field("title").Type = underhood.FieldNumber }), path: "fields.1.type", want: "validation_field_type_change"},
		{name: "system field removed", old: users, c: func() *underhood.Collection {
			c := users.Clone()
			f := c.Field("email")
			f.ID = "renamed"
			return c
		}(), path: "fields", want: "validation_system_field_change"},
		{name: "system field renamed", old: posts, c: withPosts(func(c *underhood.Collection) { c.Field("id").Name = "pk" }), path: "fields", want: "validation_system_field_change"},
		{name: "id field wrong type", c: schBase("x", &underhood.Field{Name: "id", Type: "number"}), path: "fields.0.type", want: "validation_invalid_system_field"},
		{name: "auth email wrong type", c: &underhood.Collection{Name: "members", Type: "auth", Fields: []*underhood.Field{{Name: "email", Type: "text"}}}, path: "fields.1.type", want: "validation_invalid_system_field"},
		{name: "primary key not id", c: schBase("x", &underhood.Field{Name: "code", Type: "text", PrimaryKey: true}), path: "fields.1.primaryKey", want: "validation_in_invalid"},
		{name: "text min negative", c: schBase("x", &underhood.Field{Name: "a", Type: "text", Min: lim(-1)}), path: "fields.1.min", want: "validation_min_greater_equal_than_required"},
		{name: "text max below min", c: schBase("x", &underhood.Field{Name: "a", Type: "text", Min: lim(5), Max: lim(2)}), path: "fields.1.max", want: "validation_min_greater_equal_than_required"},
		{name: "text pattern", c: schBase("x", &underhood.Field{Name: "a", Type: "text", Pattern: "(a"}), path: "fields.1.pattern", want: "validation_invalid_regex"},
		{name: "text autogenerate unsupported", c: schBase("x", &underhood.Field{Name: "a", Type: "text", AutogeneratePattern: "(a|b)"}), path: "fields.1.autogeneratePattern", want: "validation_invalid_autogenerate_pattern"},
		{name: "text autogenerate conflicts", c: schBase("x", &underhood.Field{Name: "a", Type: "text", Max: lim(3), AutogeneratePattern: "[a-z]{5}"}), path: "fields.1.autogeneratePattern", want: "validation_invalid_autogenerate_pattern_value"},
		{name: "number max below min", c: schBase("x", &underhood.Field{Name: "n", Type: "number", Min: lim(5), Max: lim(1)}), path: "fields.1.max", want: "validation_min_greater_equal_than_required"},
		{name: "number only int bounds", c: schBase("x", &underhood.Field{Name: "n", Type: "number", OnlyInt: true, Min: lim(1.5)}), path: "fields.1.min", want: "validation_only_int_constraint"},
		{name: "email both domain lists", c: schBase("x", &underhood.Field{Name: "e", Type: "email", OnlyDomains: []string{"a.com"}, ExceptDomains: []string{"b.com"}}), path: "fields.1.exceptDomains", want: "validation_empty"},
		{name: "url bad domain", c: schBase("x", &underhood.Field{Name: "u", Type: "url", OnlyDomains: []string{"not a domain"}}), path: "fields.1.onlyDomains", want: "validation_is_domain"},
		{name: "editor max size", c: schBase("x", &underhood.Field{Name: "e", Type: "editor", MaxSize: -1}), path: "fields.1.maxSize", want: "validation_min_greater_equal_than_required"},
		{name: "json max size", c: schBase("x", &underhood.Field{Name: "j", Type: "json", MaxSize: -1}), path: "fields.1.maxSize", want: "validation_min_greater_equal_than_required"},
		{name: "date min invalid", c: schBase("x", &underhood.Field{Name: "d", Type: "date", DateMin: "soon"}), path: "fields.1.min", want: "validation_invalid_date"},
		{name: "date max before min", c: schBase("x", &underhood.Field{Name: "d", Type: "date", DateMin: "2024-02-01", DateMax: "2024-01-01"}), path: "fields.1.max", want: "validation_min_greater_equal_than_required"},
		{name: "select no values", c: schBase("x", &underhood.Field{Name: "s", Type: "select"}), path: "fields.1.values", want: "validation_required"},
		{name: "select blank value", c: schBase("x", &underhood.Field{Name: "s", Type: "select", Values: []string{"a", " "}}), path: "fields.1.values", want: "validation_required"},
		{name: "select duplicate value", c: schBase("x", &underhood.Field{Name: "s", Type: "select", Values: []string{"a", "a"}}), path: "fields.1.values", want: "validation_not_unique"},
		{name: "select max select above values", c: schBase("x", &underhood.Field{Name: "s", Type: "select", Values: []string{"a"}, MaxSelect: 2}), path: "fields.1.maxSelect", want: "validation_max_less_equal_than_required"},
		{name: "select negative max", c: schBase("x", &underhood.Field{Name: "s", Type: "select", Values: []string{"a"}, MaxSelect: -1}), path: "fields.1.maxSelect", want: "validation_min_greater_equal_than_required"},
		{name: "file thumbs", c: schBase("x", &underhood.Field{Name: "f", Type: "file", Thumbs: []string{"100"}}), path: "fields.1.thumbs", want: "validation_invalid_thumb_format"},
		{name: "file zero thumb", c: schBase("x", &underhood.Field{Name: "f", Type: "file", Thumbs: []string{"0x0"}}), path: "fields.1.thumbs", want: "validation_invalid_thumb_format"},
		{name: "relation target required", c: schBase("x", &underhood.Field{Name: "r", Type: "relation"}), path: "fields.1.collectionId", want: "validation_required"},
		{name: "relation target missing", c: schBase("x", &underhood.Field{Name: "r", Type: "relation", CollectionID: "nope"}), path: "fields.1.collectionId", want: "validation_field_invalid_relation"},
		{name: "relation target change", old: posts, c: withPosts(func(c *underhood.Collection) { c.Field("author").CollectionID = underhood.SuperusersID }), path: "fields.3.collectionId", want: "validation_field_relation_change"},
		{name: "relation to view cascade", c: schBase("x", &underhood.Field{Name: "r", Type: "relation", CollectionID: view.ID, CascadeDelete: true}), path: "fields.1.cascadeDelete", want: "validation_view_cascade_delete"},
		{name: "relation max below min", c: schBase("x", &underhood.Field{Name: "r", Type: "relation", CollectionID: posts.ID, MinSelect: 3, MaxSelect: 2}), path: "fields.1.maxSelect", want: "validation_min_greater_equal_than_required"},
		{name: "relation min on single", c: schBase("x", &underhood.Field{Name: "r", Type: "relation", CollectionID: posts.ID, MinSelect: 2}), path: "fields.1.maxSelect", want: "validation_min_greater_equal_than_required"},
		{name: "relation negative min", c: schBase("x", &underhood.Field{Name: "r", Type: "relation", CollectionID: posts.ID, MinSelect: -1}), path: "fields.1.minSelect", want: "validation_min_greater_equal_than_required"},
		{name: "password cost low", c: schBase("x", &underhood.Field{Name: "p", Type: "password", Cost: 3}), path: "fields.1.cost", want: "validation_min_greater_equal_than_required"},
		{name: "password cost high", c: schBase("x", &underhood.Field{Name: "p", Type: "password", Cost: 32}), path: "fields.1.cost", want: "validation_max_less_equal_than_required"},
		{name: "password max above bcrypt", c: schBase("x", &underhood.Field{Name: "p", Type: "password", Max: lim(73)}), path: "fields.1.max", want: "validation_max_less_equal_than_required"},
		{name: "password min negative", c: schBase("x", &underhood.Field{Name: "p", Type: "password", Min: lim(-1)}), path: "fields.1.min", want: "validation_min_greater_equal_than_required"},
		{name: "password max below min", c: schBase("x", &underhood.Field{Name: "p", Type: "password", Min: lim(10), Max: lim(8)}), path: "fields.1.max", want: "validation_min_greater_equal_than_required"},
		{name: "view write rule", c: &underhood.Collection{Name: "v", Type: "view", ViewQuery: "SELECT 1", Fields: []*underhood.Field{text("id")}, CreateRule: underhood.RuleOf("")}, path: "createRule", want: "validation_nil"},
		{name: "view update rule", c: &underhood.Collection{Name: "v", Type: "view", ViewQuery: "SELECT 1", Fields: []*underhood.Field{text("id")}, UpdateRule: underhood.RuleOf("id != ''")}, path: "updateRule", want: "validation_nil"},
		{name: "view without fields", c: &underhood.Collection{Name: "v", Type: "view", ViewQuery: "SELECT 1"}, path: "fields", want: "validation_required"},
		{name: "view indexes", c: &underhood.Collection{Name: "v", Type: "view", ViewQuery: "SELECT 1", Fields: []*underhood.Field{text("id")}, Indexes: []string{"CREATE INDEX i ON v (id)"}}, path: "indexes", want: "validation_indexes_not_supported"},
		{name: "rule invalid", c: &underhood.Collection{Name: "x", Type: "base", ListRule: underhood.RuleOf("nope = 1")}, rule: underhood.Errorf(underhood.EInvalid, "unknown field \"nope\""), path: "listRule", want: "validation_invalid_rule",
			extra: map[string]string{"viewRule": ""}},
		{name: "auth rule invalid", c: &underhood.Collection{Name: "members", Type: "auth", Auth: &underhood.AuthOptions{AuthRule: underhood.RuleOf("x")}}, rule: errors.New("bad"), path: "authRule", want: "validation_invalid_rule"},
		{name: "manage rule empty", c: &underhood.Collection{Name: "members", Type: "auth", Auth: &underhood.AuthOptions{ManageRule: underhood.RuleOf("")}}, path: "manageRule", want: "validation_nil_or_not_empty_required"},
		{name: "index syntax", c: withPosts(func(c *underhood.Collection) { c.Indexes = []string{"CREATE INDEX"} }), old: posts, path: "indexes.0", want: "validation_invalid_index_expression"},
		{name: "index not create", c: withPosts(func(c *underhood.Collection) { c.Indexes = []string{"DROP TABLE posts"} }), old: posts, path: "indexes.0", want: "validation_invalid_index_expression"},
		{name: "index two statements", c: withPosts(func(c *underhood.Collection) {
			c.Indexes = []string{"CREATE INDEX i1 ON posts (slug) WHERE 1; DROP TABLE posts"}
		}), old: posts, path: "indexes.0", want: "validation_invalid_index_expression"},
		{name: "index trailing garbage", c: withPosts(func(c *underhood.Collection) { c.Indexes = []string{"CREATE INDEX i1 ON posts (slug) junk"} }), old: posts, path: "indexes.0", want: "validation_invalid_index_expression"},
		{name: "index expression column", c: withPosts(func(c *underhood.Collection) { c.Indexes = []string{"CREATE INDEX i1 ON posts (lower(slug))"} }), old: posts, path: "indexes.0", want: "validation_invalid_index_expression"},
		{name: "index unknown column", c: withPosts(func(c *underhood.Collection) { c.Indexes = []string{"CREATE INDEX i1 ON posts (nope)"} }), old: posts, path: "indexes.0", want: "validation_missing_index_field"},
		{name: "index duplicate name", c: withPosts(func(c *underhood.Collection) {
			c.Indexes = []string{"CREATE INDEX i1 ON posts (slug)", "CREATE INDEX I1 ON posts (title)"}
		}), old: posts, path: "indexes.1", want: "validation_duplicated_index_name"},
		{name: "index name of another collection", c: withPosts(func(c *underhood.Collection) {
			c.Indexes = []string{"CREATE INDEX idx_email__pb_users_auth_ ON posts (slug)"}
		}), old: posts, path: "indexes.0", want: "validation_existing_index_name"},
		{name: "index duplicate definition", c: withPosts(func(c *underhood.Collection) {
			c.Indexes = []string{"CREATE INDEX i1 ON posts (slug)", "CREATE INDEX i2 ON posts (SLUG)"}
		}), old: posts, path: "indexes.1", want: "validation_duplicated_index_definition"},
		{name: "identity field missing", c: &underhood.Collection{Name: "members", Type: "auth", Auth: &underhood.AuthOptions{PasswordAuth: underhood.PasswordAuth{Enabled: true, IdentityFields: []string{"username"}}}}, path: "passwordAuth.identityFields", want: "validation_missing_field"},
		{name: "identity field not unique", c: &underhood.Collection{Name: "members", Type: "auth", Fields: []*underhood.Field{text("username")},
			Auth: &underhood.AuthOptions{PasswordAuth: underhood.PasswordAuth{Enabled: true, IdentityFields: []string{"username"}}}}, path: "passwordAuth.identityFields", want: "validation_missing_unique_constraint"},
		{name: "identity field unique index", c: &underhood.Collection{Name: "members", Type: "auth", Fields: []*underhood.Field{text("username")},
			Indexes: []string{"CREATE UNIQUE INDEX idx_username ON members (username COLLATE NOCASE)"},
			Auth:    &underhood.AuthOptions{PasswordAuth: underhood.PasswordAuth{Enabled: true, IdentityFields: []string{"username"}}}}, path: "passwordAuth", want: ""},
		{name: "identity fields required", old: users, c: func() *underhood.Collection {
			c := users.Clone()
			c.Auth.PasswordAuth.IdentityFields = nil
			return c
		}(), path: "passwordAuth.identityFields", want: "validation_required"},
		{name: "token duration too short", old: users, c: func() *underhood.Collection {
			c := users.Clone()
			c.Auth.AuthToken.Duration = 5
			return c
		}(), path: "authToken.duration", want: "validation_min_greater_equal_than_required"},
		{name: "token duration too long", old: users, c: func() *underhood.Collection {
			c := users.Clone()
			c.Auth.FileToken.Duration = maxTokenDuration + 1
			return c
		}(), path: "fileToken.duration", want: "validation_max_less_equal_than_required"},
		{name: "token secret too short", old: users, c: func() *underhood.Collection {
			c := users.Clone()
			c.Auth.AuthToken.Secret = "short"
			return c
		}(), path: "authToken.secret", want: "validation_length_out_of_range"},
		{name: "mfa needs two methods", old: users, c: func() *underhood.Collection {
			c := users.Clone()
			c.Auth.MFA.Enabled = true
			return c
		}(), path: "mfa.enabled", want: "validation_mfa_not_enough_auths"},
		{name: "otp length", old: users, c: func() *underhood.Collection {
			c := users.Clone()
			c.Auth.OTP.Length = 3
			return c
		}(), path: "otp.length", want: "validation_min_greater_equal_than_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var check func(*underhood.Collection, string) error
			if tt.rule != nil {
				check = func(*underhood.Collection, string) error { return tt.rule }
			}
			before, _ := tt.c.MarshalStorage()
			_, err := PrepareCollection(tt.old, tt.c, all, check)
			if tt.want == "" {
				if got := schErrorAt(err, tt.path); err != nil && got != "" {
					t.Fatalf("PrepareCollection error at %s = %q (%v), want none", tt.path, got, err)
				}
				return
			}
			if got := schErrorAt(err, tt.path); got != tt.want {
				t.Fatalf("PrepareCollection error at %s = %q, want %q (error: %v)", tt.path, got, tt.want, err)
			}
			for path, want := range tt.extra {
				if got := schErrorAt(err, path); got != want {
					t.Errorf("PrepareCollection error at %s = %q, want %q", path, got, want)
				}
			}
			var e *underhood.Error
			if errors.As(err, &e) && e.Message != "Failed to save collection." {
				t.Errorf("message = %q, want %q", e.Message, "Failed to save collection.")
			}
			after, _ := tt.c.MarshalStorage()
			if string(before) != string(after) {
				t.Errorf("PrepareCollection modified its input")
			}
		})
	}
}

func TestPrepareCollectionErrorJSON(t *testing.T) {
	all := DefaultCollections()
	c := &underhood.Collection{
		Name: "bad name", Type: "base",
		Fields: []*underhood.Field{
			{Name: "title", Type: "text"},
			{Name: "title", Type: "text"},
			{Name: "kind", Type: "select"},
		},
		ListRule: underhood.RuleOf("x ="),
	}
	_, err := PrepareCollection(nil, c, all, func(*underhood.Collection, string) error {
		return underhood.Errorf(underhood.EInvalid, "invalid filter at 3")
	})
	var e *underhood.Error
	if !errors.As(err, &e) {
		t.Fatalf("PrepareCollection error = %v, want *underhood.Error", err)
	}
	b, err := json.Marshal(e.Data)
	if err != nil {
		t.Fatal(err)
	}
	// Rules are not compiled while the fields are broken.
	want := `{"fields":{"2":{"name":{"code":"validation_duplicated_field_name","message":"Duplicated or invalid field name title.","params":{"fieldName":"title"}}},` +
		`"3":{"values":{"code":"validation_required","message":"Cannot be blank."}}},` +
		`"name":{"code":"validation_invalid_name","message":"Only letters, digits and underscores are allowed."}}`
	if string(b) != want {
		t.Errorf("error data =\n%s\nwant\n%s", b, want)
	}

	// With valid fields the rule error appears under its key with the
	// checker's message.
	c.Name, c.Fields = "good", c.Fields[:1]
	_, err = PrepareCollection(nil, c, all, func(*underhood.Collection, string) error {
		return underhood.Errorf(underhood.EInvalid, "invalid filter at 3")
	})
	if !errors.As(err, &e) {
		t.Fatalf("PrepareCollection error = %v, want *underhood.Error", err)
	}
	b, _ = json.Marshal(e.Data)
	if want := `{"listRule":{"code":"validation_invalid_rule","message":"invalid filter at 3"}}`; string(b) != want {
		t.Errorf("error data = %s, want %s", b, want)
	}
}

func TestPrepareCollectionRules(t *testing.T) {
	all := DefaultCollections()
	c := &underhood.Collection{
		Name: "members", Type: "auth",
		ListRule: underhood.RuleOf("verified = true"), ViewRule: underhood.RuleOf(""), CreateRule: nil,
		UpdateRule: underhood.RuleOf("id = @request.auth.id"), DeleteRule: underhood.RuleOf("   "),
		Auth: &underhood.AuthOptions{ManageRule: underhood.RuleOf("@request.auth.id != ''"), AuthRule: underhood.RuleOf("verified = true")},
	}
	var checked []string
	got, err := PrepareCollection(nil, c, all, func(rc *underhood.Collection, rule string) error {
		if rc.Field("verified") == nil || rc.ID == "" {
			t.Errorf("checkRule got a collection without its system fields or id")
		}
		checked = append(checked, rule)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"verified = true", "id = @request.auth.id", "verified = true", "@request.auth.id != ''"}
	if diff := cmp.Diff(want, checked); diff != "" {
		t.Errorf("checked rules mismatch (-want +got):\n%s", diff)
	}
	if got.CreateRule != nil || got.ViewRule == nil || *got.ViewRule != "" {
		t.Errorf("rules changed: create %v view %v", got.CreateRule, got.ViewRule)
	}
}

func TestPrepareCollectionNewBase(t *testing.T) {
	all := schFixture(t)
	in := &underhood.Collection{
		Name: "comments",
		Fields: []*underhood.Field{
			{Name: "body", Type: "text", Required: true},
			{Name: "post", Type: "relation", CollectionID: "posts", MaxSelect: 1},
			{Name: "parent", Type: "relation", CollectionID: "comments"},
			{Name: "when", Type: "date", DateMin: "2024-01-01"},
			{Name: "created", Type: "autodate", OnCreate: true},
		},
		Indexes: []string{
			"create index `idx_body` on `whatever` (`body` collate nocase desc)",
			`CREATE UNIQUE INDEX IF NOT EXISTS "idx_post" ON comments ("post", [when] ASC) WHERE post != ''`,
		},
		ListRule: underhood.RuleOf(""),
	}
	got := schPrepareOK(t, nil, in, all)

	if got.Type != underhood.TypeBase {
		t.Errorf("Type = %q, want base", got.Type)
	}
	if !strings.HasPrefix(got.ID, "pbc_") || got.ID == "pbc_" {
		t.Errorf("ID = %q, want pbc_…", got.ID)
	}
	if got.Created == "" || got.Updated == "" {
		t.Errorf("Created/Updated = %q/%q, want set", got.Created, got.Updated)
	}
	var names []string
	for _, f := range got.Fields {
		names = append(names, f.Name)
		if f.ID == "" || !strings.HasPrefix(f.ID, f.Type) {
			t.Errorf("field %s id = %q, want type prefix", f.Name, f.ID)
		}
	}
	if diff := cmp.Diff([]string{"id", "body", "post", "parent", "when", "created"}, names); diff != "" {
		t.Errorf("field names mismatch (-want +got):\n%s", diff)
	}
	id := got.Fields[0]
	wantID := newIDField()
	wantID.ID = "text3208210256"
	if diff := cmp.Diff(wantID, id); diff != "" {
		t.Errorf("id field mismatch (-want +got):\n%s", diff)
	}
	if f := got.Field("post"); f.CollectionID != schFind(all, "posts").ID {
		t.Errorf("post.collectionId = %q, want the id of posts", f.CollectionID)
	}
	if f := got.Field("parent"); f.CollectionID != got.ID {
		t.Errorf("self relation collectionId = %q, want %q", f.CollectionID, got.ID)
	}
	if f := got.Field("when"); f.DateMin != "2024-01-01 00:00:00.000Z" {
		t.Errorf("date min = %q, want normalised", f.DateMin)
	}
	wantIdx := []string{
		"CREATE INDEX idx_body ON comments (body COLLATE NOCASE DESC)",
		"CREATE UNIQUE INDEX IF NOT EXISTS idx_post ON comments (post, \"when\" ASC) WHERE post != ''",
	}
	if diff := cmp.Diff(wantIdx, got.Indexes); diff != "" {
		t.Errorf("indexes mismatch (-want +got):\n%s", diff)
	}
	if got.Auth != nil {
		t.Errorf("Auth = %+v, want nil for a base collection", got.Auth)
	}
	if in.ID != "" || len(in.Fields) != 5 || in.Fields[0].ID != "" {
		t.Errorf("PrepareCollection modified its input")
	}
}

func TestPrepareCollectionUpdate(t *testing.T) {
	all := schFixture(t)
	posts := schFind(all, "posts")

	// Rename the collection and a field, drop one, add one.
	c := posts.Clone()
	c.Name = "articles"
	c.Field("title").Name = "headline"
	c.Fields = append(c.Fields[:2], c.Fields[3:]...) // drops slug…
	c.Indexes = []string{"CREATE INDEX idx_head ON posts (headline)"}
	c.Fields = append(c.Fields, &underhood.Field{Name: "slug", Type: "text"}) // …and adds a new one
	c.Created = "2000-01-01 00:00:00.000Z"
	got := schPrepareOK(t, posts, c, all)

	if got.ID != posts.ID || got.Created != posts.Created {
		t.Errorf("ID/Created = %q/%q, want the stored %q/%q", got.ID, got.Created, posts.ID, posts.Created)
	}
	if f := got.Field("headline"); f == nil || f.ID != posts.Field("title").ID {
		t.Errorf("renamed field lost its id: %+v", f)
	}
	if f := got.Field("slug"); f == nil || f.ID == posts.Field("slug").ID {
		t.Errorf("re-added field reuses the dropped field's id: %+v", f)
	}
	if diff := cmp.Diff([]string{"CREATE INDEX idx_head ON articles (headline)"}, got.Indexes); diff != "" {
		t.Errorf("indexes mismatch (-want +got):\n%s", diff)
	}

	// Sending the fields without the system id field keeps the stored one.
	c = posts.Clone()
	c.Fields = c.Fields[1:]
	got = schPrepareOK(t, posts, c, all)
	if got.Fields[0].ID != posts.Fields[0].ID || got.Fields[0].Name != "id" {
		t.Errorf("id field = %+v, want the stored one", got.Fields[0])
	}
}

func TestPrepareCollectionAuth(t *testing.T) {
	all := schFixture(t)
	got := schPrepareOK(t, nil, &underhood.Collection{
		Name: "members", Type: "auth",
		Fields: []*underhood.Field{
			{Name: "email", Type: "email", System: false, Hidden: true, OnlyDomains: []string{"corp.com"}},
			{Name: "nick", Type: "text"},
		},
		Auth: &underhood.AuthOptions{}, // what decoding JSON without options gives
	}, all)

	var names []string
	for _, f := range got.Fields {
		names = append(names, f.Name)
	}
	if diff := cmp.Diff([]string{"id", "email", "nick", "password", "tokenKey", "emailVisibility", "verified"}, names); diff != "" {
		t.Errorf("fields mismatch (-want +got):\n%s", diff)
	}
	email := got.Field("email")
	if !email.System || email.Hidden || len(email.OnlyDomains) != 1 {
		t.Errorf("email = %+v, want system, not hidden, own domains kept", email)
	}
	for _, name := range []string{"password", "tokenKey"} {
		if f := got.Field(name); !f.System || !f.Hidden || !f.Required {
			t.Errorf("%s = %+v, want system hidden required", name, f)
		}
	}
	wantIdx := []string{
		"CREATE UNIQUE INDEX idx_tokenKey_" + got.ID + " ON members (tokenKey)",
		"CREATE UNIQUE INDEX idx_email_" + got.ID + " ON members (email COLLATE NOCASE) WHERE email != ''",
	}
	if diff := cmp.Diff(wantIdx, got.Indexes); diff != "" {
		t.Errorf("indexes mismatch (-want +got):\n%s", diff)
	}
	a := got.Auth
	if a == nil {
		t.Fatal("Auth = nil")
	}
	if !a.PasswordAuth.Enabled || !cmp.Equal(a.PasswordAuth.IdentityFields, []string{"email"}) {
		t.Errorf("passwordAuth = %+v, want enabled with email", a.PasswordAuth)
	}
	if a.AuthRule == nil || *a.AuthRule != "" || a.ManageRule != nil {
		t.Errorf("authRule/manageRule = %v/%v, want \"\"/nil", a.AuthRule, a.ManageRule)
	}
	durations := map[string]int{"auth": 604800, "passwordReset": 1800, "emailChange": 1800, "verification": 259200, "file": 180}
	tokens := map[string]underhood.TokenConfig{"auth": a.AuthToken, "passwordReset": a.PasswordResetToken,
		"emailChange": a.EmailChangeToken, "verification": a.VerificationToken, "file": a.FileToken}
	secrets := map[string]bool{}
	for kind, tok := range tokens {
		if tok.Duration != durations[kind] {
			t.Errorf("%s token duration = %d, want %d", kind, tok.Duration, durations[kind])
		}
		if len(tok.Secret) != 50 {
			t.Errorf("%s token secret length = %d, want 50", kind, len(tok.Secret))
		}
		secrets[tok.Secret] = true
	}
	if len(secrets) != len(tokens) {
		t.Errorf("token secrets are not distinct")
	}
	if a.VerificationTemplate.Subject == "" || a.ResetPasswordTemplate.Body == "" || a.OTP.Length != 8 || a.MFA.Duration != 1800 {
		t.Errorf("defaults missing: %+v", a)
	}

	// An update through the public JSON (no secrets) keeps the secrets,
	// the indexes keep their names across a rename.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var sent underhood.Collection
	if err := json.Unmarshal(b, &sent); err != nil {
		t.Fatal(err)
	}
	sent.Name = "staff"
	sent.Auth.AuthToken.Duration = 3600
	all = append(all, got)
	updated := schPrepareOK(t, got, &sent, all)
	if updated.Auth.AuthToken.Secret != a.AuthToken.Secret || updated.Auth.FileToken.Secret != a.FileToken.Secret {
		t.Errorf("secrets changed on update")
	}
	if updated.Auth.AuthToken.Duration != 3600 {
		t.Errorf("auth token duration = %d, want 3600", updated.Auth.AuthToken.Duration)
	}
	wantIdx = []string{
		"CREATE UNIQUE INDEX idx_tokenKey_" + got.ID + " ON staff (tokenKey)",
		"CREATE UNIQUE INDEX idx_email_" + got.ID + " ON staff (email COLLATE NOCASE) WHERE email != ''",
	}
	if diff := cmp.Diff(wantIdx, updated.Indexes); diff != "" {
		t.Errorf("indexes after rename mismatch (-want +got):\n%s", diff)
	}
	for i, f := range updated.Fields {
		if f.ID != got.Fields[i].ID {
			t.Errorf("field %s id changed: %q -> %q", f.Name, got.Fields[i].ID, f.ID)
		}
	}

	// Removing the auth indexes brings them back.
	sent.Indexes = nil
	updated = schPrepareOK(t, got, &sent, all)
	if len(updated.Indexes) != 2 {
		t.Errorf("indexes = %v, want the two system ones", updated.Indexes)
	}

	// A nil Auth on update keeps the stored options.
	noAuth := got.Clone()
	noAuth.Auth = nil
	updated = schPrepareOK(t, got, noAuth, all)
	if updated.Auth == nil || updated.Auth.AuthToken.Secret != a.AuthToken.Secret {
		t.Errorf("Auth = %+v, want the stored options", updated.Auth)
	}
}

func TestPrepareCollectionView(t *testing.T) {
	all := schFixture(t)
	got := schPrepareOK(t, nil, &underhood.Collection{
		Name: "stats", Type: "view", ViewQuery: "SELECT id, author FROM posts",
		ListRule: underhood.RuleOf(""),
		Fields: []*underhood.Field{
			{Name: "id", Type: "text"},
			{Name: "author", Type: "relation", CollectionID: underhood.UsersID, CascadeDelete: true, MaxSelect: 1},
		},
	}, all)
	if got.Field("author").CascadeDelete {
		t.Errorf("view relation cascadeDelete kept")
	}
	if got.ViewQuery != "SELECT id, author FROM posts" || len(got.Fields) != 2 || got.Fields[0].System {
		t.Errorf("view = %+v, want fields as given", got)
	}
	if len(got.Indexes) != 0 {
		t.Errorf("indexes = %v, want none", got.Indexes)
	}
}

func TestPrepareCollectionIDs(t *testing.T) {
	all := DefaultCollections()
	a := schPrepareOK(t, nil, schBase("things"), all)
	if want := "pbc_" + crc32String("basethings"); a.ID != want {
		t.Errorf("ID = %q, want %q", a.ID, want)
	}
	// Same type and name as a stored collection id: numbered.
	clash := &underhood.Collection{ID: a.ID, Name: "other", Type: "base"}
	b := schPrepareOK(t, nil, schBase("things"), append(all, clash))
	if b.ID != a.ID+"2" {
		t.Errorf("ID = %q, want %q", b.ID, a.ID+"2")
	}
	custom := schPrepareOK(t, nil, &underhood.Collection{ID: "my_custom_id", Name: "custom", Type: "base"}, all)
	if custom.ID != "my_custom_id" {
		t.Errorf("ID = %q, want the given one", custom.ID)
	}
	// A new field whose default id is taken gets another one.
	c := schPrepareOK(t, nil, schBase("x", &underhood.Field{ID: "text" + crc32String("b"), Name: "a", Type: "text"}, &underhood.Field{Name: "b", Type: "text"}), all)
	if c.Fields[1].ID == c.Fields[2].ID {
		t.Errorf("field ids collide: %q", c.Fields[1].ID)
	}
}

func TestParseIndex(t *testing.T) {
	tests := []struct {
		in   string
		want string // normalised with table "t"; "" = invalid
	}{
		{"CREATE INDEX a ON x (b)", "CREATE INDEX a ON t (b)"},
		{"  create unique index if not exists `a` on `x` (`b`, c desc);  ", "CREATE UNIQUE INDEX IF NOT EXISTS a ON t (b, c DESC)"},
		{`CREATE INDEX "a b" ON "x" ("order" COLLATE nocase ASC)`, `CREATE INDEX "a b" ON t ("order" COLLATE NOCASE ASC)`},
		{"CREATE INDEX main.a ON x ([b])", "CREATE INDEX a ON t (b)"},
		{"CREATE INDEX a ON x (b) WHERE b > 0 AND c != ''", "CREATE INDEX a ON t (b) WHERE b > 0 AND c != ''"},
		{`CREATE INDEX "a""q" ON x (b)`, `CREATE INDEX "a""q" ON t (b)`},
		{"CREATE INDEX a ON x ()", ""},
		{"CREATE INDEX a ON x b", ""},
		{"CREATE INDEX ON x (b)", ""},
		{"CREATE INDEXa ON x (b)", ""},
		{"CREATE TABLE a (b)", ""},
		{"CREATE INDEX a ON x (b) WHERE", ""},
		{"CREATE INDEX a ON x (b COLLATE)", ""},
		{"CREATE INDEX a ON x (b,)", ""},
		{"CREATE INDEX `a ON x (b)", ""},
	}
	for _, tt := range tests {
		ix, err := parseIndex(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseIndex(%q) = %v, want an error", tt.in, ix)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseIndex(%q) error: %v", tt.in, err)
			continue
		}
		ix.Table = "t"
		if got := ix.String(); got != tt.want {
			t.Errorf("parseIndex(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// The normal form parses back to itself.
		again, err := parseIndex(ix.String())
		if err != nil || !reflect.DeepEqual(again, ix) {
			t.Errorf("parseIndex(%q) does not round-trip: %+v, %v", ix.String(), again, err)
		}
	}
}

func TestPrepareCollectionDoesNotShareState(t *testing.T) {
	all := DefaultCollections()
	users := schFind(all, "users")
	got := schPrepareOK(t, users, users, all)
	got.Fields[0].Name = "changed"
	got.Auth.OAuth2.MappedFields["x"] = "y"
	got.Auth.PasswordAuth.IdentityFields[0] = "changed"
	if users.Fields[0].Name != "id" || users.Auth.OAuth2.MappedFields["x"] != "" || users.Auth.PasswordAuth.IdentityFields[0] != "email" {
		t.Errorf("the prepared collection shares state with its input")
	}
}

func TestPrepareCollectionViewUpdate(t *testing.T) {
	all := schFixture(t)
	view := schFind(all, "active")
	// The query changed: a column keeps its id with another type, and two
	// inferred columns share an id.
	c := view.Clone()
	c.ViewQuery = "SELECT id, id AS copy FROM posts"
	c.Fields = []*underhood.Field{
		{ID: view.Fields[0].ID, Name: "id", Type: "json"},
		{ID: view.Fields[0].ID, Name: "copy", Type: "text"},
	}
	got := schPrepareOK(t, view, c, all)
	if got.Fields[0].ID == got.Fields[1].ID {
		t.Errorf("view field ids collide: %q", got.Fields[0].ID)
	}
	if got.Fields[0].Type != "json" {
		t.Errorf("view field type = %q, want json", got.Fields[0].Type)
	}
}

func TestPrepareCollectionAuthRuleRotatesSecret(t *testing.T) {
	all := DefaultCollections()
	users := schFind(all, "users")
	tests := []struct {
		name    string
		edit    func(c *underhood.Collection)
		rotated bool
	}{
		{"same rule", func(c *underhood.Collection) {}, false},
		{"rule changed", func(c *underhood.Collection) { c.Auth.AuthRule = underhood.RuleOf("verified = true") }, true},
		{"rule removed", func(c *underhood.Collection) { c.Auth.AuthRule = nil }, true},
		{"other option changed", func(c *underhood.Collection) { c.Auth.AuthToken.Duration = 60 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := users.Clone()
			for _, tok := range []*underhood.TokenConfig{&c.Auth.AuthToken, &c.Auth.FileToken} {
				tok.Secret = "" // as sent by a client
			}
			tt.edit(c)
			got := schPrepareOK(t, users, c, all)
			if rotated := got.Auth.AuthToken.Secret != users.Auth.AuthToken.Secret; rotated != tt.rotated {
				t.Errorf("auth secret rotated = %v, want %v", rotated, tt.rotated)
			}
			if got.Auth.FileToken.Secret != users.Auth.FileToken.Secret {
				t.Errorf("file token secret changed")
			}
		})
	}
}

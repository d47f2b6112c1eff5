package filter_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// testNow is the fixed time of the datetime macros in these tests.
var testNow = time.Date(2024, 3, 15, 12, 30, 45, 0, time.UTC)

// compileOptions returns rule options for posts, with a signed-in caller
// (user u1 of team t1) and a small request.
func compileOptions(s testSchema) filter.Options {
	users := s.FindCollection("users")
	auth := &underhood.Record{Collection: users, Data: map[string]any{
		"id": "u1", "name": "Ann", "email": "ann@example.com", "emailVisibility": true, "team": "t1",
		"password": "$2a$10$hash", "tokenKey": "secret-key",
	}}
	return filter.Options{
		Schema:     s,
		Collection: s.FindCollection("posts"),
		Dialect:    sqlite.Dialect{},
		Now:        testNow,
		Request: &filter.Request{
			Method:  "GET",
			Headers: map[string]string{"x_token": "tok"},
			Query:   map[string]string{"q": "hi"},
			Body:    map[string]any{"title": "Hello", "views": "7", "tags": []any{"db", "go"}, "data": map[string]any{"a": "x"}},
			Auth:    auth,
		},
	}
}

// compile parses and compiles src.
func compile(t testing.TB, src string, o filter.Options) (*filter.SQL, error) {
	t.Helper()
	e, err := filter.Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q) = %v", src, err)
	}
	return filter.Compile(e, o)
}

func TestCompileSQL(t *testing.T) {
	s := newSchema()
	tests := []struct {
		name  string
		src   string
		opts  func(*filter.Options)
		where string
		args  []any
	}{
		{name: "text", src: "title = 'a'", where: `"r"."title" = ?1`, args: []any{"a"}},
		{name: "integral numbers bind as integers", src: "views > 5", where: `"r"."views" > ?1`, args: []any{int64(5)}},
		{name: "real number", src: "views <= -2.5", where: `"r"."views" <= ?1`, args: []any{-2.5}},
		{name: "bool", src: "published = true", where: `"r"."published" = ?1`, args: []any{true}},
		{name: "!=", src: "title != 'a'", where: `"r"."title" <> ?1`, args: []any{"a"}},
		{
			name:  "&& binds tighter than ||",
			src:   "title = 'a' || views > 1 && published = false",
			where: `("r"."title" = ?1 OR ("r"."views" > ?2 AND "r"."published" = ?3))`,
			args:  []any{"a", int64(1), false},
		},
		{
			name:  "null is compared as empty",
			src:   "title = null",
			where: `COALESCE("r"."title", ?2) = COALESCE(?1, ?2)`,
			args:  []any{nil, ""},
		},
		{
			name:  "a literal is data, never SQL",
			src:   `title = '\' OR 1=1 --' || title = "\"); DROP TABLE posts; --"`,
			where: `("r"."title" = ?1 OR "r"."title" = ?2)`,
			args:  []any{"' OR 1=1 --", `"); DROP TABLE posts; --`},
		},
		{
			name:  "single relation",
			src:   "author.name = 'x'",
			where: `COALESCE((SELECT "uh_t1"."name" FROM "users" AS "uh_t1" WHERE "uh_t1"."id" = "r"."author"), ?2) = COALESCE(?1, ?2)`,
			args:  []any{"x", ""},
		},
		{
			name:  "any of a multi relation",
			src:   "coauthors.name ?= 'x'",
			where: `EXISTS (SELECT NULL FROM json_each(CASE WHEN json_valid("r"."coauthors") THEN "r"."coauthors" ELSE json_array() END) AS "uh_j2", "users" AS "uh_t1" WHERE "uh_t1"."id" = "uh_j2".value AND "uh_t1"."name" = ?1)`,
			args:  []any{"x"},
		},
		{
			name: "all of a back-relation",
			src:  "comments_via_post.body = 'x'",
			where: `(CASE WHEN EXISTS (SELECT NULL FROM "comments" AS "uh_t1" WHERE "uh_t1"."post" = "r"."id") ` +
				`THEN NOT EXISTS (SELECT NULL FROM "comments" AS "uh_t1" WHERE "uh_t1"."post" = "r"."id" AND ("uh_t1"."body" = ?1) IS NOT TRUE) ` +
				`ELSE COALESCE(NULL, ?2) = COALESCE(?1, ?2) END)`,
			args: []any{"x", ""},
		},
		{name: "bare multi field is its JSON text", src: "tags ?= 'db'", where: `"r"."tags" = ?1`, args: []any{"db"}},
		{name: ":length", src: "tags:length > 1", where: `json_array_length(CASE WHEN json_valid("r"."tags") THEN "r"."tags" END) > ?1`, args: []any{int64(1)}},
		{name: ":lower", src: "title:lower = 'a'", where: `LOWER("r"."title") = ?1`, args: []any{"a"}},
		{
			name:  "json path is bound",
			src:   "data.a.0 = 1",
			where: `COALESCE(json_extract(CASE WHEN json_valid("r"."data") THEN "r"."data" END, ?1), ?3) = COALESCE(?2, ?3)`,
			args:  []any{`$."a"[0]`, int64(1), ""},
		},
		{name: "auth id", src: "author = @request.auth.id", where: `"r"."author" = ?1`, args: []any{"u1"}},
		{
			name:  "guest auth id is empty",
			src:   "author = @request.auth.id",
			opts:  func(o *filter.Options) { o.Request.Auth = nil },
			where: `"r"."author" = ?1`,
			args:  []any{""},
		},
		{
			name:  "Alias names the table",
			src:   "title = 'a'",
			opts:  func(o *filter.Options) { o.Alias = "p" },
			where: `"p"."title" = ?1`,
			args:  []any{"a"},
		},
		{
			name: "@collection joins once and checks every row",
			src:  "@collection.users:u.name = title",
			where: `EXISTS (SELECT NULL FROM (SELECT NULL AS x) AS "uh_d" LEFT JOIN "users" AS "uh_c1" ON TRUE WHERE ` +
				`(COALESCE("uh_c1"."name", ?1) = COALESCE("r"."title", ?1) AND NOT EXISTS (SELECT NULL FROM "users" AS "uh_m2" ` +
				`WHERE (COALESCE("uh_m2"."name", ?1) = COALESCE("r"."title", ?1)) IS NOT TRUE)))`,
			args: []any{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := compileOptions(s)
			if tt.opts != nil {
				tt.opts(&o)
			}
			got, err := compile(t, tt.src, o)
			if err != nil {
				t.Fatalf("Compile(%q) = %v, want %s", tt.src, err, tt.where)
			}
			assertSQL(t, tt.src, got, tt.where, tt.args)
		})
	}
}

// listRule returns options for a client filter on posts in a schema where
// users have the list rule rule.
func listRule(rule underhood.Rule) func(*filter.Options) {
	return func(o *filter.Options) {
		s := newSchema()
		s.FindCollection("users").ListRule = rule
		o.Schema, o.Collection, o.Client = s, s.FindCollection("posts"), true
	}
}

// TestCompileListRules checks that a client filter going through a
// relation sees only the rows the target's list rule lets the caller list.
func TestCompileListRules(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		opts  func(*filter.Options)
		where string
		args  []any
	}{
		{
			name:  "anyone may list",
			src:   "author.name = 'x'",
			opts:  listRule(underhood.RuleOf(" ")),
			where: `COALESCE((SELECT "uh_t1"."name" FROM "users" AS "uh_t1" WHERE "uh_t1"."id" = "r"."author"), ?2) = COALESCE(?1, ?2)`,
			args:  []any{"x", ""},
		},
		{
			name:  "the rule applies to the related row",
			src:   "author.name = 'x'",
			opts:  listRule(underhood.RuleOf("id = @request.auth.id")),
			where: `COALESCE((SELECT "uh_t1"."name" FROM "users" AS "uh_t1" WHERE "uh_t1"."id" = "r"."author" AND ("uh_t1"."id" = ?1)), ?3) = COALESCE(?2, ?3)`,
			args:  []any{"u1", "x", ""},
		},
		{
			name: "a superuser is not bound by it",
			src:  "author.name = 'x'",
			opts: func(o *filter.Options) {
				listRule(underhood.RuleOf("id = @request.auth.id"))(o)
				o.Superuser = true
			},
			where: `COALESCE((SELECT "uh_t1"."name" FROM "users" AS "uh_t1" WHERE "uh_t1"."id" = "r"."author"), ?2) = COALESCE(?1, ?2)`,
			args:  []any{"x", ""},
		},
		{
			name: "nor is a rule",
			src:  "author.name = 'x'",
			opts: func(o *filter.Options) {
				listRule(underhood.RuleOf("id = @request.auth.id"))(o)
				o.Client = false
			},
			where: `COALESCE((SELECT "uh_t1"."name" FROM "users" AS "uh_t1" WHERE "uh_t1"."id" = "r"."author"), ?2) = COALESCE(?1, ?2)`,
			args:  []any{"x", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := compileOptions(newSchema())
			tt.opts(&o)
			got, err := compile(t, tt.src, o)
			if err != nil {
				t.Fatalf("Compile(%q) = %v, want %s", tt.src, err, tt.where)
			}
			assertSQL(t, tt.src, got, tt.where, tt.args)
		})
	}
}

// assertSQL compares a compiled condition with the one wanted.
func assertSQL(t *testing.T, src string, got *filter.SQL, where string, args []any) {
	t.Helper()
	if text := got.Text(sqlite.Dialect{}, 0); text != where {
		t.Errorf("Compile(%q).Text =\n%s\nwant\n%s", src, text, where)
	}
	if diff := cmp.Diff(args, got.Args); diff != "" {
		t.Errorf("Compile(%q).Args (-want +got):\n%s", src, diff)
	}
}

// TestCompileArgs checks the values a filter binds: constants are
// converted to the type of the field they are compared with, and @request
// values and macros come from the options.
func TestCompileArgs(t *testing.T) {
	s := newSchema()
	tests := []struct {
		src  string
		args []any
	}{
		{"views > '5'", []any{int64(5)}},
		{"views > ' 2.5 '", []any{2.5}},
		{"views > 'five'", []any{"five"}},
		{"views = true", []any{int64(1)}},
		{"title = 5", []any{"5"}},
		{"title = 2.5", []any{"2.5"}},
		{"title = true", []any{"true"}},
		{"published = 'true'", []any{true}},
		{"published = 0", []any{false}},
		{"published = ''", []any{false}},
		{"@request.body.views < views", []any{int64(7)}},
		{"@request.auth.name = 'Ann'", []any{"Ann", "Ann"}},
		{"@request.auth.collectionName = 'users'", []any{"users", "users"}},
		{"@request.method = 'GET'", []any{"GET", "GET"}},
		{"@request.context = 'default'", []any{"default", "default"}},
		{"@request.query.q = 'hi'", []any{"hi", "hi"}},
		{"@request.headers.X_Token = 'tok'", []any{"tok", "tok"}},
		{"@request.body.title:lower = 'hello'", []any{"hello", "hello"}},
		// a multi-value body value is compared as the JSON text its column holds
		{"@request.body.tags:changed = true", []any{"", `["db","go"]`, true}},
		{"@request.body.data:changed = true", []any{"", `{"a":"x"}`, true}},
		{"@request.body.nope:isset = false", []any{false, false}},
		{"@request.body.data.a = 'x'", []any{"x", "x"}},
		{"@year = 2024 && @month = 3 && @hour = 12", []any{int64(2024), int64(2024), int64(3), int64(3), int64(12), int64(12)}},
		{"created > @now", []any{"2024-03-15 12:30:45.000Z"}},
		{"created >= @todayStart && created <= @monthEnd", []any{"2024-03-15 00:00:00.000Z", "2024-03-31 23:59:59.999Z"}},
		{"created > @yesterday && created < @yearEnd", []any{"2024-03-14 12:30:45.000Z", "2024-12-31 23:59:59.999Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := compile(t, tt.src, compileOptions(s))
			if err != nil {
				t.Fatalf("Compile(%q) = %v, want args %v", tt.src, err, tt.args)
			}
			if diff := cmp.Diff(tt.args, got.Args); diff != "" {
				t.Errorf("Compile(%q).Args (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

var likePlaceholder = regexp.MustCompile(`LIKE \?(\d+)`)

// TestCompileLikePattern checks the pattern "~" binds: a value without an
// unescaped "%" is matched anywhere, with "_", "%" and "\" taken literally.
func TestCompileLikePattern(t *testing.T) {
	s := newSchema()
	tests := []struct {
		src     string
		pattern string
	}{
		{"title ~ 'abc'", "%abc%"},
		{"title ~ ''", "%%"},
		{"title ~ 'a_b'", `%a\_b%`},
		{`title ~ 'back\\slash'`, `%back\slash%`},
		{`title ~ 'x\\'`, `%x\\%`},
		{"title ~ 'abc%'", "abc%"},
		{"title ~ '%a_c'", "%a_c"},
		{`title ~ '100\%'`, `%100\%%`},
		{"title !~ 'a'", "%a%"},
		{"views ~ 5", "%5%"},
		{"title ~ true", "%1%"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := compile(t, tt.src, compileOptions(s))
			if err != nil {
				t.Fatalf("Compile(%q) = %v, want pattern %q", tt.src, err, tt.pattern)
			}
			m := likePlaceholder.FindStringSubmatch(got.Text(sqlite.Dialect{}, 0))
			if m == nil {
				t.Fatalf("Compile(%q) = %s, want a LIKE", tt.src, got)
			}
			n, _ := strconv.Atoi(m[1])
			if n < 1 || n > len(got.Args) || got.Args[n-1] != tt.pattern {
				t.Errorf("Compile(%q) binds pattern %#v, want %q (SQL %s)", tt.src, got.Args, tt.pattern, got)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	s := newSchema()
	client := func(o *filter.Options) { o.Client = true }
	refuse := func(name string) func(*filter.Options) {
		return func(o *filter.Options) {
			o.Client = true
			o.CanList = func(c *underhood.Collection) bool { return c.Name != name }
		}
	}
	tests := []struct {
		name string
		src  string
		opts func(*filter.Options)
		code string
		pos  int // for EInvalid
	}{
		{name: "unknown field", src: "nope = 1", code: underhood.EInvalid, pos: 1},
		{name: "unknown field later", src: "title = 'a' && nope = 1", code: underhood.EInvalid, pos: 16},
		{name: "unknown field through a relation", src: "author.nope = 1", code: underhood.EInvalid, pos: 1},
		{name: "sub-field of a plain field", src: "title.x = 1", code: underhood.EInvalid, pos: 1},
		{name: "geoPoint has lon and lat only", src: "loc.alt = 1", code: underhood.EInvalid, pos: 1},
		{name: "unknown back-relation collection", src: "nope_via_post.body = 'x'", code: underhood.EInvalid, pos: 1},
		{name: "back-relation through a non-relation", src: "comments_via_body.body = 'x'", code: underhood.EInvalid, pos: 1},
		{name: "back-relation pointing elsewhere", src: "posts_via_author.title = 'x'", code: underhood.EInvalid, pos: 1},
		{name: "hidden field in a client filter", src: "secret = 'x'", opts: client, code: underhood.EInvalid, pos: 1},
		{name: "hidden field through a relation", src: "views > 1 || author.tokenKey = 'x'", opts: client, code: underhood.EInvalid, pos: 14},
		{name: "@request in a client filter", src: "author = @request.auth.id", opts: client, code: underhood.EInvalid, pos: 10},
		{name: "@collection in a client filter", src: "@collection.users.name = 'x'", opts: client, code: underhood.EInvalid, pos: 1},
		{name: "CanList refuses a relation target", src: "author.name = 'x'", opts: refuse("users"), code: underhood.EForbidden},
		{name: "CanList refuses a second hop", src: "author.team.name = 'x'", opts: refuse("teams"), code: underhood.EForbidden},
		{name: "CanList refuses a back-relation", src: "comments_via_post.body ?= 'x'", opts: refuse("comments"), code: underhood.EForbidden},
		{name: "list rule null", src: "author.name = 'x'", opts: listRule(nil), code: underhood.EForbidden},
		{name: "list rule broken", src: "author.name = 'x'", opts: listRule(underhood.RuleOf("nope = 1")), code: underhood.EForbidden},
		{name: "password through a relation", src: "author.password = 'x'", code: underhood.EInvalid, pos: 1},
		{name: "password of the caller", src: "@request.auth.password = 'x'", code: underhood.EInvalid, pos: 1},
		{
			name: "password in the body", src: "@request.body.password = 'x'", code: underhood.EInvalid, pos: 1,
			opts: func(o *filter.Options) { o.Collection = s.FindCollection("users") },
		},
		{name: ":isset outside the body", src: "title:isset = true", code: underhood.EInvalid, pos: 1},
		{name: ":changed outside the body", src: "title:changed = true", code: underhood.EInvalid, pos: 1},
		{name: ":isset with another modifier", src: "@request.body.title:isset:lower = true", code: underhood.EInvalid, pos: 1},
		{name: ":changed of a non-field", src: "@request.body.nope:changed = true", code: underhood.EInvalid, pos: 1},
		{name: "unknown modifier", src: "title:upper = 'A'", code: underhood.EInvalid, pos: 1},
		{name: ":length of a single field", src: "title:length > 1", code: underhood.EInvalid, pos: 1},
		{name: ":each of a single relation", src: "author:each = 'x'", code: underhood.EInvalid, pos: 1},
		{name: ":length with :lower", src: "tags:length:lower > 1", code: underhood.EInvalid, pos: 1},
		{name: ":each in json", src: "data.a:each = 1", code: underhood.EInvalid, pos: 1},
		{name: "macro with a modifier", src: "created > @now:lower", code: underhood.EInvalid, pos: 11},
		{name: "unknown macro", src: "created > @later", code: underhood.EInvalid, pos: 11},
		{name: "unknown request property", src: "@request.cookie = 'x'", code: underhood.EInvalid, pos: 1},
		{name: "unknown auth field", src: "@request.auth.nope = 'x'", code: underhood.EInvalid, pos: 1},
		{name: "unknown collection", src: "@collection.nope.x = 1", code: underhood.EInvalid, pos: 1},
		{name: "@collection without a field", src: "@collection.users = 1", code: underhood.EInvalid, pos: 1},
		{name: "empty alias", src: "@collection.users:.name = 'x'", code: underhood.EInvalid, pos: 1},
		{name: "alias of two collections", src: "@collection.users:x.name = 'a' && @collection.posts:x.title = 'b'", code: underhood.EInvalid, pos: 35},
		{name: "unknown function", src: "lower(title) = 'a'", code: underhood.EInvalid, pos: 1},
		{name: "geoDistance arity", src: "geoDistance(1, 2, 3) < 1", code: underhood.EInvalid, pos: 1},
		{name: "strftime arity", src: "strftime('%Y') = '2024'", code: underhood.EInvalid, pos: 1},
		{name: "function of many values", src: "strftime('%Y', coauthors.name) = '2024'", code: underhood.EInvalid, pos: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := compileOptions(s)
			if tt.opts != nil {
				tt.opts(&o)
			}
			got, err := compile(t, tt.src, o)
			if err == nil {
				t.Fatalf("Compile(%q) = %s, want a %s error", tt.src, got, tt.code)
			}
			if code := errorCode(t, err); code != tt.code {
				t.Fatalf("Compile(%q) = %v (code %s), want code %s", tt.src, err, code, tt.code)
			}
			if tt.code == underhood.EInvalid {
				if pos := errorPosition(t, err, "filter"); pos != tt.pos {
					t.Errorf("Compile(%q) = %v, want position %d", tt.src, err, tt.pos)
				}
			}
		})
	}
}

// TestCompileAllowed checks what the client restrictions leave open: a
// superuser reads hidden fields, rules are not bound by CanList, and
// :isset may test a password's presence.
func TestCompileAllowed(t *testing.T) {
	s := newSchema()
	never := func(*underhood.Collection) bool { return false }
	tests := []struct {
		name string
		src  string
		opts func(*filter.Options)
	}{
		{"hidden field in a rule", "secret = 'x'", nil},
		{"hidden field for a superuser", "secret = 'x'", func(o *filter.Options) { o.Client, o.Superuser = true, true }},
		{"CanList does not bind rules", "author.name = 'x'", func(o *filter.Options) { o.CanList = never }},
		{"a client filter on the collection itself", "title = 'x' && views > 1", func(o *filter.Options) { o.Client, o.CanList = true, never }},
		{"password presence", "@request.body.password:isset = false", func(o *filter.Options) { o.Collection = s.FindCollection("users") }},
		{"email of an auth record", "author.email = 'x'", func(o *filter.Options) { o.Client = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := compileOptions(s)
			if tt.opts != nil {
				tt.opts(&o)
			}
			if _, err := compile(t, tt.src, o); err != nil {
				t.Errorf("Compile(%q) = %v, want no error", tt.src, err)
			}
		})
	}
}

func TestCompileNeedsDialectAndCollection(t *testing.T) {
	s := newSchema()
	e, err := filter.Parse("title = 'a'")
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*filter.Options){
		"no dialect":    func(o *filter.Options) { o.Dialect = nil },
		"no collection": func(o *filter.Options) { o.Collection = nil },
	} {
		o := compileOptions(s)
		change(&o)
		if got, err := filter.Compile(e, o); err == nil {
			t.Errorf("Compile with %s = %v, want an error", name, got)
		}
	}
}

func TestCompileSort(t *testing.T) {
	s := newSchema()
	tests := []struct {
		src   string
		order string
		args  []any
	}{
		{"title", `"r"."title" ASC`, nil},
		{"-views,+title", `"r"."views" DESC, "r"."title" ASC`, nil},
		{" -views , title ", `"r"."views" DESC, "r"."title" ASC`, nil},
		{"title:lower", `LOWER("r"."title") ASC`, nil},
		{"@random", `RANDOM()`, nil},
		{"-@rowid", `"r".rowid DESC`, nil},
		{"tags:length", `json_array_length(CASE WHEN json_valid("r"."tags") THEN "r"."tags" END) ASC`, nil},
		{"-author.name", `(SELECT "uh_t1"."name" FROM "users" AS "uh_t1" WHERE "uh_t1"."id" = "r"."author") DESC`, nil},
		{"data.a", `json_extract(CASE WHEN json_valid("r"."data") THEN "r"."data" END, ?1) ASC`, []any{`$."a"`}},
		{
			"id,title,views,created,published,author,data,loc",
			`"r"."id" ASC, "r"."title" ASC, "r"."views" ASC, "r"."created" ASC, "r"."published" ASC, "r"."author" ASC, "r"."data" ASC, "r"."loc" ASC`,
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			o := compileOptions(s)
			o.Client = true
			sorted, err := filter.CompileSort(tt.src, o)
			if err != nil {
				t.Fatalf("CompileSort(%q) = %v, want %s", tt.src, err, tt.order)
			}
			order, args := sorted.Text(o.Dialect, 0), sorted.Args
			if order != tt.order {
				t.Errorf("CompileSort(%q) = %s, want %s", tt.src, order, tt.order)
			}
			if diff := cmp.Diff(tt.args, args); diff != "" {
				t.Errorf("CompileSort(%q) args (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

func TestCompileSortErrors(t *testing.T) {
	s := newSchema()
	tests := []struct {
		name   string
		src    string
		client bool
		pos    int
	}{
		{name: "too many terms", src: "id,title,views,created,published,author,data,loc,tags", pos: 50},
		{name: "empty term", src: "title,,views", pos: 7},
		{name: "unknown field", src: "title, nope", pos: 8},
		{name: "multi relation path", src: "views,coauthors.name", pos: 7},
		{name: ":each", src: "tags:each", pos: 1},
		{name: "back-relation", src: "comments_via_post.body", pos: 1},
		{name: "not a field", src: "title desc", pos: 1},
		{name: "quotes", src: "'title'", pos: 1},
		{name: "hidden field from a client", src: "secret", client: true, pos: 1},
		{name: "@request from a client", src: "@request.auth.id", client: true, pos: 1},
		{name: "@collection", src: "@collection.users.name", pos: 1},
		{name: "a constant", src: "@request.auth.name", pos: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := compileOptions(s)
			o.Client = tt.client
			order, err := filter.CompileSort(tt.src, o)
			if err == nil {
				t.Fatalf("CompileSort(%q) = %s, want an error at position %d", tt.src, order, tt.pos)
			}
			if pos := errorPosition(t, err, "sort"); pos != tt.pos {
				t.Errorf("CompileSort(%q) = %v, want position %d", tt.src, err, tt.pos)
			}
		})
	}
}

// TestTextNumbersAfterOffset: the statement that embeds a compiled
// condition numbers its parameters after the ones before it, and And
// keeps each side's parameters bound to its own values.
func TestTextNumbersAfterOffset(t *testing.T) {
	o := compileOptions(newSchema())
	a, err := compile(t, "title = 'a' && views > 1", o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Text(sqlite.Dialect{}, 3), `("r"."title" = ?4 AND "r"."views" > ?5)`; got != want {
		t.Errorf("Text(3) = %s, want %s", got, want)
	}
	b, err := compile(t, "title != 'b'", o)
	if err != nil {
		t.Fatal(err)
	}
	both := filter.And(a, b)
	if got, want := both.Text(sqlite.Dialect{}, 1), `(("r"."title" = ?2 AND "r"."views" > ?3)) AND ("r"."title" <> ?4)`; got != want {
		t.Errorf("And(a, b).Text(1) = %s, want %s", got, want)
	}
	if diff := cmp.Diff([]any{"a", int64(1), "b"}, both.Args); diff != "" {
		t.Errorf("And(a, b).Args (-want +got):\n%s", diff)
	}
}

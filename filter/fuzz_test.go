package filter_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// fuzzSeeds are filters a hostile or careless caller might send: SQL
// injection through every kind of literal, odd quoting, unicode, huge
// numbers and deep nesting, next to valid filters over every feature.
var fuzzSeeds = []string{
	`' OR 1=1 --`,
	`title = '' OR 1=1 --'`,
	`title = '\'' OR ''='`,
	`title = "\"); DROP TABLE posts; --"`,
	`"); DROP TABLE posts; --`,
	`title = 'x'); DROP TABLE posts; --`,
	`title = 'a' /* comment */`,
	`title = 'a' -- comment`,
	`title ~ '%' || 1 = 1`,
	`title = 'a\' || 1=1 || \'b'`,
	`title = "a' OR 'a'='a"`,
	`title = 'a\\' || views > 0 // '`,
	`data.a = 'x' && data.0 = 1`,
	`data.x1 = 1 || data.999999999999999999999 = 2`,
	`title = 'ünïcode 日本語 🚀'`,
	`title = '` + "\x00" + `'`,
	"title = '\xff\xfe'",
	`views > 1e308 || views < -1e308 || views = 123456789012345678901234567890`,
	`views = 0.000000000000000000000001`,
	`views > 1e999`,
	strings.Repeat("(", 64) + "views > 1" + strings.Repeat(")", 64),
	strings.Repeat("(", 65) + "views > 1" + strings.Repeat(")", 65),
	strings.Repeat("id = 'p01' || ", 40) + "id = 'p02'",
	`@collection.posts.title = 'x'`,
	`@collection.posts:p.title = title && @collection.users:u.name ?= author.name`,
	`@collection.users:x.name = 'a' && @collection.posts:x.title = 'b'`,
	`@request.auth.id != '' && author = @request.auth.id`,
	`@request.body.title:isset = true && @request.body.tags:changed = false`,
	`@request.headers.x_token = 'tok' || @request.query.q = 'x'`,
	`@request.auth.password = 'x'`,
	`author.name ~ 'a' && coauthors.name ?= 'b' && comments_via_post.body ?~ 'c'`,
	`tags:each ?= 'db' && tags:length > 1 && title:lower = 'x'`,
	`geoDistance(loc.lon, loc.lat, 24.5, -3.25) < 100`,
	`strftime('%Y-%m-%d', created, 'start of month', '+1 day') = '2024-03-02'`,
	`strftime('%s', views, 'unixepoch') = '0'`,
	`created > @now && created < @yearEnd`,
	`secret = 'x'`,
	`author.password = 'x'`,
	`title`,
	``,
	`()`,
	`title = 'abc`,
	`a..b = 1`,
	`title:lower:lower:lower = 'x'`,
	`geoDistance(geoDistance(1,2,3,4), 2, 3, 4) > 0`,
}

var (
	quotedIdent = regexp.MustCompile(`"(?:[^"]|"")*"`)
	placeholder = regexp.MustCompile(`\?[0-9]+`)
)

// literalFree reports whether sql, without its quoted identifiers and
// placeholders, holds neither a single quote nor a digit: no literal of
// the filter has reached the SQL text.
func literalFree(sql string) bool {
	rest := placeholder.ReplaceAllString(quotedIdent.ReplaceAllString(sql, ""), "")
	return !strings.ContainsAny(rest, "'0123456789")
}

// FuzzCompile checks, for any filter text, that Parse, Compile, CompileSort
// and Match do not panic, that errors are client errors, that the SQL holds
// no literal from the input, and that a client filter ANDed to a rule can
// only narrow what the rule allows: a filter never fails open.
func FuzzCompile(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	db := openTestDB(f)
	posts := db.schema.FindCollection("posts")
	base := filter.Options{
		Schema: db.schema, Collection: posts, Dialect: sqlite.Dialect{}, Now: testNow,
		Request: db.requests()["user"],
	}
	ruleSrc := "author = @request.auth.id || coauthors ?= @request.auth.id"
	ruleExpr, err := filter.Parse(ruleSrc)
	if err != nil {
		f.Fatalf("Parse(%q) = %v", ruleSrc, err)
	}
	rule, err := filter.Compile(ruleExpr, base)
	if err != nil {
		f.Fatalf("Compile(%q) = %v", ruleSrc, err)
	}
	var allowed []string
	for _, r := range db.find(f, posts, rule) {
		allowed = append(allowed, r.ID())
	}
	if len(allowed) == 0 || len(allowed) == len(db.recs["posts"]) {
		f.Fatalf("rule %q allows %d of %d posts; the test needs a rule that hides some", ruleSrc, len(allowed), len(db.recs["posts"]))
	}

	f.Fuzz(func(t *testing.T, src string) {
		e, err := filter.Parse(src)
		if err != nil {
			pos := errorPosition(t, err, "filter")
			if pos < 1 || pos > len(src)+1 {
				t.Errorf("Parse(%q) = %v, want a position within the input", src, err)
			}
			return
		}
		for _, client := range []bool{true, false} {
			o := base
			o.Client = client
			x, err := filter.Compile(e, o)
			if err != nil {
				var ue *underhood.Error
				if !errors.As(err, &ue) || ue.Code != underhood.EInvalid && ue.Code != underhood.EForbidden {
					t.Errorf("Compile(%q) = %v, want an EInvalid or EForbidden *underhood.Error", src, err)
				}
				continue
			}
			if !literalFree(x.String()) {
				t.Errorf("Compile(%q) = %s, which holds a literal", src, x)
			}
			found, err := db.query(posts, filter.And(rule, x))
			if err != nil {
				t.Fatalf("Find(rule AND Compile(%q)) = %v\nSQL: %s\nargs: %#v", src, err, x, x.Args)
			}
			for _, r := range found {
				if !slices.Contains(allowed, r.ID()) {
					t.Fatalf("rule AND %q selects %s, which the rule alone does not\nSQL: %s\nargs: %#v", src, r.ID(), x, x.Args)
				}
			}
			for _, r := range db.recs["posts"][:3] {
				if _, err := filter.Match(context.Background(), e, o, r, db); err != nil {
					t.Errorf("Match(%q, %s) = %v after Compile succeeded", src, r.ID(), err)
				}
			}
		}

		o := base
		o.Client = true
		sorted, err := filter.CompileSort(src, o)
		if err != nil {
			return
		}
		order, args := sorted.Text(db.dialect, 0), sorted.Args
		if !literalFree(order) {
			t.Errorf("CompileSort(%q) = %s, which holds a literal", src, order)
		}
		err = db.store.Read(context.Background(), func(q sqlstore.Querier) error {
			rows, err := q.QueryContext(context.Background(), `SELECT "r"."id" FROM "posts" AS "r" ORDER BY `+order, args...)
			if err != nil {
				return err
			}
			return rows.Close()
		})
		if err != nil {
			t.Errorf("ORDER BY CompileSort(%q) = %v\nSQL: %s", src, err, order)
		}
	})
}

// relationSteps lists the relations a path may go through from c: its
// relation fields and the back-relations ("posts_via_author") of the
// relation fields of s that point to c.
func relationSteps(s testSchema, c *underhood.Collection) []string {
	var steps []string
	for _, f := range c.Fields {
		if f.Type == underhood.FieldRelation {
			steps = append(steps, f.Name)
		}
	}
	for _, src := range s {
		for _, f := range src.Fields {
			if f.Type == underhood.FieldRelation && f.CollectionID == c.ID {
				steps = append(steps, src.Name+"_via_"+f.Name)
			}
		}
	}
	return steps
}

// stepTarget is the collection a step of relationSteps(s, c) arrives at.
func stepTarget(s testSchema, c *underhood.Collection, step string) *underhood.Collection {
	if f := c.Field(step); f != nil {
		return s.FindCollection(f.CollectionID)
	}
	name, _, _ := strings.Cut(step, "_via_")
	return s.FindCollection(name)
}

// FuzzRelationDepth builds a path through relations from the bytes of
// steps (each picks a relation or back-relation of the collection the
// path has reached) from one of three roots: the filtered record, an
// @collection join and @request.auth, whose relation counts as the first.
// A path through at most filter.MaxRelationDepth relations compiles, runs
// and matches; a longer one is refused with a 400 that says so, in a
// filter, a rule and a sort. Nothing panics.
func FuzzRelationDepth(f *testing.F) {
	f.Add(uint8(0), []byte{0, 1, 2, 3, 4, 5})
	f.Add(uint8(0), []byte{0, 1, 2, 3, 4, 5, 6})
	f.Add(uint8(0), []byte{7, 7, 7, 7, 7, 7, 7, 7})
	f.Add(uint8(1), []byte{0, 0, 0, 0, 0})
	f.Add(uint8(1), []byte{1, 2, 1, 2, 1, 2, 1, 2, 1, 2})
	f.Add(uint8(2), []byte{3, 3, 3, 3, 3})
	f.Add(uint8(2), []byte{3, 3, 3, 3, 3, 3})
	f.Add(uint8(0), []byte{})
	db := openTestDB(f)
	posts := db.schema.FindCollection("posts")
	req := db.requests()["user"]
	f.Fuzz(func(t *testing.T, root uint8, steps []byte) {
		if len(steps) > 3*filter.MaxRelationDepth {
			steps = steps[:3*filter.MaxRelationDepth]
		}
		var segs []string
		var c *underhood.Collection
		prefix, hopCount := "", 0
		switch root % 3 {
		case 0:
			c = posts
		case 1:
			prefix, c = "@collection.comments.", db.schema.FindCollection("comments")
		case 2:
			// @request.auth is a users record: its team is the first
			// relation.
			prefix, c = "@request.auth.team.", db.schema.FindCollection("teams")
			hopCount = 1
		}
		for _, b := range steps {
			options := relationSteps(db.schema, c)
			step := options[int(b)%len(options)]
			segs = append(segs, step)
			c = stepTarget(db.schema, c, step)
			hopCount++
		}
		path := prefix + strings.Join(append(segs, "id"), ".")
		src := path + " ?!= 'x'"
		e, err := filter.Parse(src)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", src, err)
		}
		checkRefused := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s %q goes through %d relations and was accepted", what, path, hopCount)
			}
			if code := errorCode(t, err); code != underhood.EInvalid || !strings.Contains(underhood.ErrorMessage(err), "more than 6 relations") {
				t.Fatalf("%s %q goes through %d relations: %v (code %s), want a 400 naming the limit", what, path, hopCount, err, code)
			}
		}
		for _, client := range []bool{true, false} {
			if client && root%3 != 0 {
				continue // @collection and @request are for rules only
			}
			o := filter.Options{Schema: db.schema, Collection: posts, Dialect: sqlite.Dialect{}, Now: testNow, Request: req, Client: client}
			x, err := filter.Compile(e, o)
			_, merr := filter.Match(context.Background(), e, o, db.recs["posts"][1], db)
			if hopCount > filter.MaxRelationDepth {
				checkRefused("Compile", err)
				checkRefused("Match", merr)
				continue
			}
			if err != nil || merr != nil {
				t.Fatalf("%q goes through %d relations: Compile = %v, Match = %v, want both accepted", path, hopCount, err, merr)
			}
			// Six relations may already cost seconds on the test data (one
			// reason for the store's time limit): a count is cut off
			// after a moment, which proves the SQL valid all the same.
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err = db.store.Read(ctx, func(q sqlstore.Querier) error {
				_, err := db.store.Count(ctx, q, sqlstore.Query{Collection: posts, Where: sqlstore.Filter(x)})
				return err
			})
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Count(%q) = %v\nSQL: %s", src, err, x)
			}
		}
		if root%3 == 0 {
			o := filter.Options{Schema: db.schema, Collection: posts, Dialect: sqlite.Dialect{}, Now: testNow, Request: req, Client: true}
			_, err := filter.CompileSort(path, o)
			if hopCount > filter.MaxRelationDepth {
				checkRefused("CompileSort", err)
			}
		}
	})
}

package filter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// This file is the database the SQL-running tests share: the test schema
// in SQLite (in a temp dir) or PostgreSQL (a schema of its own) with
// random records from a fixed seed, edge values among them, and a
// filter.Loader over those records.

// engine is a database the SQL-running tests run on.
type engine struct {
	name string
	open func(t testing.TB) (*sqlstore.Store, error)
}

var sqliteEngine = engine{"sqlite", func(t testing.TB) (*sqlstore.Store, error) {
	return sqlstore.Open(context.Background(), sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir(), Synchronous: "OFF"})
}}

var postgresEngine = engine{"postgres", func(t testing.TB) (*sqlstore.Store, error) {
	return sqlstore.Open(context.Background(), sqlstore.Config{Dialect: postgres.Dialect{}, DSN: storetest.PostgresDSN(t)})
}}

// engines are the engines the differential tests run on: SQLite, and
// PostgreSQL (skipped without DATABASE_URL).
var engines = []engine{sqliteEngine, postgresEngine}

// textPool holds the text values of the records and of text literals,
// edge cases included: empty, LIKE wildcards, escapes, quotes, unicode,
// text that reads as a number and text that reads as SQL.
var textPool = []string{
	"", "a", "A", "ab", "abc", "abd", "hello", "Hello World", "HELLO", "x y z",
	"100%", "a_b", "a%b", `back\slash`, `\`, "it's", "'", `say "hi"`, `"`, "O'Brien",
	"ünïcode", "ÜNÏCODE", "日本語", "5", "10", "-3", "2.5", " 7 ", "1e3", "007",
	"null", "true", "db", "go", "' OR 1=1 --", `"); DROP TABLE posts; --`,
	"12:30", "23:59:59.5Z", " 2024-03-15", "2024-03-15 ", "2024-03-15T08:00:00+02:00", "2460000.25",
}

var numberPool = []float64{0, 1, -1, 2.5, 3, 5, 7, 10, 100, -0.5, 1e9, 123456789012, 2460000.5, -1e9}

var datePool = []string{
	"", "2024-01-02 03:04:05.000Z", "2024-03-15 00:00:00.000Z", "2024-03-15 12:30:45.000Z",
	"2024-03-14 23:59:59.999Z", "2023-12-31 23:59:59.999Z", "2024-02-29 10:00:00.123Z",
	"2024-03-31 08:00:00.000Z", "2025-06-01 08:00:00.000Z", "1999-01-01 00:00:00.000Z",
}

var jsonPool = []string{
	"", "null", "{}", `{"a":"x"}`, `{"a":"hello"}`, `{"a":5}`, `{"a":"5"}`, `{"a":null}`, `{"a":[1,"x"]}`,
	`{"a":{"b":"c"}}`, `{"a":{"b":7}}`, `{"a":true}`, `{"a":false,"n":2}`, `{"n":3.5}`, `{"n":"7"}`,
	`[1,2,3]`, `["x"]`, `"str"`, "5", "true", `{"a":"ü","n":-1}`, `{"a":""}`, `{"a b":1,"n":0}`,
}

var geoPool = []underhood.GeoPoint{{}, {Lon: 24.5, Lat: -3.25}, {Lon: 24.6, Lat: -3.2}, {Lon: -122.4, Lat: 37.8}, {Lon: 180, Lat: 90}, {Lon: 13.4, Lat: 52.5}}

var tagPool = []string{"db", "go", "sql", "web", "a%b", "x_y", "DB", "ü"}

// testDB is a database with the test schema and random records, and the
// records as the store decodes them.
type testDB struct {
	store   *sqlstore.Store
	dialect filter.Dialect
	schema  testSchema
	recs    map[string][]*underhood.Record // by collection name
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// subset picks up to n distinct values of list.
func subset(r *rand.Rand, list []string, n int) []string {
	out := []string{}
	for _, i := range r.Perm(len(list))[:r.IntN(n+1)] {
		out = append(out, list[i])
	}
	return out
}

// openTestDB builds the SQLite database (openEngineDB).
func openTestDB(t testing.TB) *testDB { return openEngineDB(t, sqliteEngine) }

// openEngineDB builds the database from a fixed seed on eng: teams, users,
// 60 posts and comments, with dangling relations and zero values among
// them.
func openEngineDB(t testing.TB, eng engine) *testDB {
	t.Helper()
	ctx := context.Background()
	st, err := eng.open(t)
	if err != nil {
		t.Fatalf("sqlstore.Open(%s) = %v", eng.name, err)
	}
	t.Cleanup(func() { st.Close() })
	db := &testDB{store: st, dialect: st.Dialect(), schema: newSchema(), recs: map[string][]*underhood.Record{}}
	// List rules that hide some rows, which client filters going through
	// a relation must respect.
	db.schema.FindCollection("users").ListRule = underhood.RuleOf("name != '' || id = @request.auth.id")
	db.schema.FindCollection("posts").ListRule = underhood.RuleOf("published = true || author = @request.auth.id")
	db.schema.FindCollection("comments").ListRule = underhood.RuleOf("body != 'db'")
	r := rand.New(rand.NewPCG(20240315, 1))

	data := map[string][]map[string]any{}
	teamIDs := []string{"t1", "t2", "t3", "t4"}
	for i, name := range []string{"Red", "blue", "", "Ünïcode"} {
		data["teams"] = append(data["teams"], map[string]any{"id": teamIDs[i], "name": name})
	}
	var userIDs []string
	for i := range 10 {
		id := fmt.Sprintf("u%02d", i+1)
		userIDs = append(userIDs, id)
		data["users"] = append(data["users"], map[string]any{
			"id": id, "name": pick(r, textPool), "password": "$2a$10$hash", "tokenKey": "key" + id,
			"email":           pick(r, []string{"", "ann@example.com", "BOB@example.com", "c_d@x.io", "it's@x.io"}),
			"emailVisibility": r.IntN(2) == 0,
			"team":            pick(r, append([]string{"", "tmissing"}, teamIDs...)),
		})
	}
	relIDs := append([]string{"umissing"}, userIDs...)
	var postIDs []string
	for i := range 60 {
		id := fmt.Sprintf("p%02d", i+1)
		postIDs = append(postIDs, id)
		p := map[string]any{"id": id}
		if i > 0 { // p01 keeps every zero value
			var js json.RawMessage
			if s := pick(r, jsonPool); s != "" {
				js = json.RawMessage(s)
			}
			p["title"] = pick(r, textPool)
			p["views"] = pick(r, numberPool)
			p["published"] = r.IntN(2) == 0
			p["tags"] = subset(r, tagPool, 3)
			p["author"] = pick(r, append([]string{""}, relIDs...))
			p["coauthors"] = subset(r, relIDs, 3)
			p["data"] = js
			p["loc"] = pick(r, geoPool)
			p["secret"] = pick(r, textPool)
			p["created"] = pick(r, datePool)
		}
		data["posts"] = append(data["posts"], p)
	}
	for i := range 40 {
		data["comments"] = append(data["comments"], map[string]any{
			"id":   fmt.Sprintf("c%02d", i+1),
			"post": pick(r, append([]string{"", "pmissing"}, postIDs[:20]...)),
			"body": pick(r, textPool),
		})
	}

	err = st.Write(ctx, func(q sqlstore.Querier) error {
		for _, c := range db.schema {
			if err := st.SaveCollection(ctx, q, nil, c); err != nil {
				return err
			}
			for _, d := range data[c.Name] {
				if err := st.InsertRecord(ctx, q, &underhood.Record{Collection: c, Data: d}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("build the database: %v", err)
	}
	for _, c := range db.schema {
		db.recs[c.Name] = db.find(t, c, &filter.SQL{})
	}
	return db
}

// find returns the records of c that x selects.
func (db *testDB) find(t testing.TB, c *underhood.Collection, x *filter.SQL) []*underhood.Record {
	t.Helper()
	recs, err := db.query(c, x)
	if err != nil {
		t.Fatalf("Find(%s) = %v", x, err)
	}
	return recs
}

func (db *testDB) query(c *underhood.Collection, x *filter.SQL) ([]*underhood.Record, error) {
	var recs []*underhood.Record
	err := db.store.Read(context.Background(), func(q sqlstore.Querier) error {
		var err error
		recs, err = db.store.Find(context.Background(), q, sqlstore.Query{Collection: c, Where: sqlstore.Filter(x), Order: []sqlstore.Order{{Field: "id"}}})
		return err
	})
	return recs, err
}

func (db *testDB) record(coll, id string) *underhood.Record {
	for _, r := range db.recs[coll] {
		if r.ID() == id {
			return r
		}
	}
	return nil
}

// The Loader reads the records the store returned once, so that thousands
// of Match calls need no queries; they are the store's decoded records.

func (db *testDB) Get(_ context.Context, c *underhood.Collection, ids []string) ([]*underhood.Record, error) {
	var out []*underhood.Record
	for _, r := range db.recs[c.Name] {
		if slices.Contains(ids, r.ID()) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (db *testDB) Via(_ context.Context, c *underhood.Collection, f *underhood.Field, id string) ([]*underhood.Record, error) {
	var out []*underhood.Record
	for _, r := range db.recs[c.Name] {
		if slices.Contains(r.Strings(f.Name), id) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (db *testDB) All(_ context.Context, c *underhood.Collection) ([]*underhood.Record, error) {
	return db.recs[c.Name], nil
}

// requests are the callers the filters are checked for.
func (db *testDB) requests() map[string]*filter.Request {
	return map[string]*filter.Request{
		"user": {
			Context: "default",
			Method:  "PATCH",
			Headers: map[string]string{"x_token": "tok"},
			Query:   map[string]string{"q": "hello"},
			Body: map[string]any{
				"title": "hello", "views": "7", "published": "true", "tags": []any{"db", "go"},
				"author": "u02", "coauthors": []any{"u03", "umissing"}, "data": json.RawMessage(`{"a":"x","n":2}`),
				"secret": nil,
			},
			Auth: db.record("users", "u01"),
		},
		"guest": {Method: "GET"},
	}
}

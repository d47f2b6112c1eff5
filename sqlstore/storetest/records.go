package storetest

// This file checks how records are stored, found and counted.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// everyType is a collection with a field of every type and form.
func everyType() *underhood.Collection {
	multi := func(id, name, typ string) *underhood.Field {
		f := field(id, name, typ)
		f.MaxSelect = 3
		return f
	}
	return newCollection("every",
		field("f01", "text", underhood.FieldText),
		field("f02", "email", underhood.FieldEmail),
		field("f03", "url", underhood.FieldURL),
		field("f04", "editor", underhood.FieldEditor),
		field("f05", "date", underhood.FieldDate),
		field("f06", "created", underhood.FieldAutodate),
		field("f07", "password", underhood.FieldPassword),
		field("f08", "select", underhood.FieldSelect),
		multi("f09", "selects", underhood.FieldSelect),
		field("f10", "rel", underhood.FieldRelation),
		multi("f11", "rels", underhood.FieldRelation),
		field("f12", "file", underhood.FieldFile),
		multi("f13", "files", underhood.FieldFile),
		field("f14", "number", underhood.FieldNumber),
		field("f15", "bool", underhood.FieldBool),
		field("f16", "json", underhood.FieldJSON),
		field("f17", "geo", underhood.FieldGeoPoint),
	)
}

func testRecordRoundTrip(t *testing.T, newDB NewDB) {
	c := everyType()
	full := map[string]any{
		"id": "abc123", "text": "héllo \"quoted\"", "email": "a@b.c", "url": "https://x.y", "editor": "<p>x</p>",
		"date": "2024-01-02 03:04:05.000Z", "created": "2024-01-02 03:04:05.678Z", "password": "$2a$10$hash",
		"select": "a", "selects": []string{"a", "b"}, "rel": "r1", "rels": []string{"r1", "r2"},
		"file": "f.png", "files": []string{"f1.png"}, "number": -12.5, "bool": true,
		"json": json.RawMessage(`{"k":[1,"two",null]}`), "geo": underhood.GeoPoint{Lon: 24.5, Lat: -3.25},
	}
	zero := map[string]any{
		"id": "zero00", "text": "", "email": "", "url": "", "editor": "", "date": "", "created": "", "password": "",
		"select": "", "selects": []string{}, "rel": "", "rels": []string{}, "file": "", "files": []string{},
		"number": 0.0, "bool": false, "json": json.RawMessage(nil), "geo": underhood.GeoPoint{},
	}
	tests := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"every value", full, full},
		{"absent values are zero", map[string]any{"id": "zero00"}, zero},
		{"zero values", merge(zero, map[string]any{"id": "zero01"}), merge(zero, map[string]any{"id": "zero01"})},
		{"json forms", map[string]any{"id": "j1", "json": json.RawMessage(`"text"`)}, merge(zero, map[string]any{"id": "j1", "json": json.RawMessage(`"text"`)})},
		{"json null", map[string]any{"id": "j2", "json": json.RawMessage(`null`)}, merge(zero, map[string]any{"id": "j2"})},
		{"integral number", map[string]any{"id": "n1", "number": 3.0}, merge(zero, map[string]any{"id": "n1", "number": 3.0})},
		{"big number", map[string]any{"id": "n2", "number": 1e300}, merge(zero, map[string]any{"id": "n2", "number": 1e300})},
	}
	s := openStore(t, newDB)
	saveCollection(t, s, nil, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			insert(t, s, c, tt.in)
			got := find(t, s, sqlstore.Query{Collection: c, Where: sqlstore.Eq("id", tt.in["id"])})
			if len(got) != 1 {
				t.Fatalf("Find(id) = %d records, want 1", len(got))
			}
			if diff := cmp.Diff(tt.want, got[0].Data); diff != "" {
				t.Errorf("record after insert (-want +got):\n%s", diff)
			}
		})
	}

	// Update writes every field.
	next := merge(full, map[string]any{"text": "changed", "selects": []string{}, "json": json.RawMessage(nil), "bool": false, "number": 7.0})
	write(t, s, func(q sqlstore.Querier) error {
		return s.UpdateRecord(context.Background(), q, &underhood.Record{Collection: c, Data: next})
	})
	got := find(t, s, sqlstore.Query{Collection: c, Where: sqlstore.Eq("id", "abc123")})
	if len(got) != 1 {
		t.Fatalf("Find after update = %d records", len(got))
	}
	if diff := cmp.Diff(next, got[0].Data); diff != "" {
		t.Errorf("record after update (-want +got):\n%s", diff)
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func testInsertGeneratesID(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "title", "text"))
	saveCollection(t, s, nil, c)
	r := &underhood.Record{Collection: c, Data: map[string]any{"title": "x"}}
	write(t, s, func(q sqlstore.Querier) error { return s.InsertRecord(context.Background(), q, r) })
	if id := r.ID(); len(id) != 15 || !underhood.ValidID(id) {
		t.Errorf("generated id = %q, want 15 characters of [a-z0-9]", id)
	}
	if got := column(find(t, s, sqlstore.Query{Collection: c}), "id"); !cmp.Equal(got, []any{r.ID()}) {
		t.Errorf("stored ids = %v, want [%s]", got, r.ID())
	}
}

func testUpdateAndDeleteMissingRecord(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "title", "text"))
	saveCollection(t, s, nil, c)
	insert(t, s, c, map[string]any{"id": "a", "title": "x"})
	ctx := context.Background()
	tests := []struct {
		name string
		fn   func(q sqlstore.Querier) error
		want string
	}{
		{"delete existing", func(q sqlstore.Querier) error { return s.DeleteRecord(ctx, q, c, "a") }, ""},
		{"delete missing", func(q sqlstore.Querier) error { return s.DeleteRecord(ctx, q, c, "a") }, underhood.ENotFound},
		{"update missing", func(q sqlstore.Querier) error {
			return s.UpdateRecord(ctx, q, &underhood.Record{Collection: c, Data: map[string]any{"id": "a", "title": "y"}})
		}, underhood.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Write(ctx, tt.fn)
			if got := underhood.ErrorCode(err); got != tt.want {
				t.Errorf("err = %v (code %q), want code %q", err, got, tt.want)
			}
		})
	}
	if n := len(find(t, s, sqlstore.Query{Collection: c})); n != 0 {
		t.Errorf("%d records after delete, want 0", n)
	}
}

func testFindAndCount(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "title", "text"), field("f2", "views", "number"))
	saveCollection(t, s, nil, c)
	for i := 1; i <= 10; i++ {
		insert(t, s, c, map[string]any{"id": fmt.Sprintf("p%02d", i), "title": fmt.Sprintf("t%d", i%3), "views": float64(i)})
	}
	tests := []struct {
		name      string
		query     sqlstore.Query
		wantIDs   []any
		wantCount int
	}{
		{"all in order", sqlstore.Query{Order: []sqlstore.Order{{Field: "id"}}},
			[]any{"p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10"}, 10},
		{"where with args", sqlstore.Query{Where: sqlstore.And(sqlstore.Compare("views", sqlstore.OpGt, 3), sqlstore.Eq("title", "t1")), Order: []sqlstore.Order{{Field: "views", Desc: true}}},
			[]any{"p10", "p07", "p04"}, 3},
		{"limit", sqlstore.Query{Order: []sqlstore.Order{{Field: "views", Desc: true}}, Limit: 2}, []any{"p10", "p09"}, 10},
		{"limit and offset", sqlstore.Query{Order: []sqlstore.Order{{Field: "views"}}, Limit: 3, Offset: 4}, []any{"p05", "p06", "p07"}, 10},
		{"offset only", sqlstore.Query{Order: []sqlstore.Order{{Field: "views"}}, Offset: 8}, []any{"p09", "p10"}, 10},
		{"at most", sqlstore.Query{Where: sqlstore.Compare("views", sqlstore.OpLe, 2), Order: []sqlstore.Order{{Field: "id"}}}, []any{"p01", "p02"}, 2},
		{"or", sqlstore.Query{Where: sqlstore.Or(sqlstore.Eq("id", "p03"), sqlstore.In("id", []string{"p01", "p09"})), Order: []sqlstore.Order{{Field: "id"}}}, []any{"p01", "p03", "p09"}, 3},
		{"in nothing", sqlstore.Query{Where: sqlstore.In("id", nil)}, []any{}, 0},
		{"correlated subquery", sqlstore.Query{
			Where: sqlstore.Raw(func(func(any) string) string {
				return `EXISTS (SELECT 1 FROM "posts" AS o WHERE o."views" = r."views" * 2)`
			}),
			Order: []sqlstore.Order{{Field: "id"}},
		}, []any{"p01", "p02", "p03", "p04", "p05"}, 5},
		{"nothing", sqlstore.Query{Where: sqlstore.Compare("views", sqlstore.OpGt, 100)}, []any{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qq := tt.query
			qq.Collection = c
			got := column(find(t, s, qq), "id")
			if diff := cmp.Diff(tt.wantIDs, got); diff != "" {
				t.Errorf("Find ids (-want +got):\n%s", diff)
			}
			var n int
			read(t, s, func(q sqlstore.Querier) (err error) {
				n, err = s.Count(context.Background(), q, qq)
				return err
			})
			if n != tt.wantCount {
				t.Errorf("Count = %d, want %d", n, tt.wantCount)
			}
		})
	}
}

// testFindReusesStatementsSafely runs the same Find while rows of the same
// query are open, and after the schema changed under a cached statement.
func testFindReusesStatementsSafely(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "title", "text"))
	saveCollection(t, s, nil, c)
	insert(t, s, c, map[string]any{"id": "a", "title": "x"}, map[string]any{"id": "b", "title": "y"})
	ctx := context.Background()
	write(t, s, func(q sqlstore.Querier) error {
		for range 3 {
			list, err := s.Find(ctx, q, sqlstore.Query{Collection: c, Order: []sqlstore.Order{{Field: "id"}}})
			if err != nil {
				return err
			}
			if len(list) != 2 {
				return fmt.Errorf("find returned %d records, want 2", len(list))
			}
		}
		return nil
	})
	next := newCollection("posts", field("f1", "title", "text"), field("f2", "n", "number"))
	saveCollection(t, s, c, next)
	got := find(t, s, sqlstore.Query{Collection: next, Order: []sqlstore.Order{{Field: "id"}}})
	if diff := cmp.Diff([]any{0.0, 0.0}, column(got, "n")); diff != "" {
		t.Errorf("new column after migration (-want +got):\n%s", diff)
	}
}

// testUnsortedFindKeepsInsertionOrder: without a sort, records come in the
// order they were inserted, also after updates (SQLite's rowid order,
// which clients paging through a list without a sort rely on).
func testUnsortedFindKeepsInsertionOrder(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "title", "text"))
	saveCollection(t, s, nil, c)
	for _, id := range []string{"c", "a", "e", "b", "d"} {
		insert(t, s, c, map[string]any{"id": id, "title": id})
	}
	write(t, s, func(q sqlstore.Querier) error {
		return s.UpdateRecord(context.Background(), q, &underhood.Record{Collection: c, Data: map[string]any{"id": "c", "title": "changed"}})
	})
	want := []any{"c", "a", "e", "b", "d"}
	if got := column(find(t, s, sqlstore.Query{Collection: c}), "id"); !cmp.Equal(got, want) {
		t.Errorf("unsorted Find = %v, want the insertion order %v", got, want)
	}
	if got := column(find(t, s, sqlstore.Query{Collection: c, Limit: 2, Offset: 2}), "id"); !cmp.Equal(got, want[2:4]) {
		t.Errorf("unsorted page 2 = %v, want %v", got, want[2:4])
	}
}

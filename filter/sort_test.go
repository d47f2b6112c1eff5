package filter_test

import (
	"context"
	"slices"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
)

// TestSortAgreesAcrossEngines sorts the same records on SQLite and on
// PostgreSQL by every kind of sort term (text, numbers, booleans, dates,
// values inside JSON of mixed types, relations that may be missing,
// :lower) and expects the same order: SQLite's, with NULL first.
func TestSortAgreesAcrossEngines(t *testing.T) {
	lite, pg := openEngineDB(t, sqliteEngine), openEngineDB(t, postgresEngine)
	sorts := []string{
		"title", "-title", "views", "-views", "published,-views", "created", "-created",
		"data.a", "-data.a", "data.n", "-data.n", "data.a.b", "loc.lon", "-loc.lat",
		"author", "author.name", "-author.name", "author.team.name", "title:lower", "-author.name:lower",
		"secret,title", "-published,data.0",
	}
	order := func(db *testDB, src string) []string {
		t.Helper()
		posts := db.schema.FindCollection("posts")
		o := filter.Options{Schema: db.schema, Collection: posts, Dialect: db.dialect, Now: testNow, Superuser: true}
		terms, err := filter.CompileSort(src+",id", o)
		if err != nil {
			t.Fatalf("CompileSort(%q) = %v", src, err)
		}
		var recs []*underhood.Record
		err = db.store.Read(context.Background(), func(q sqlstore.Querier) error {
			var err error
			recs, err = db.store.Find(context.Background(), q, sqlstore.Query{Collection: posts, Order: []sqlstore.Order{{Sorted: terms}}})
			return err
		})
		if err != nil {
			t.Fatalf("Find(sort %q) on %s = %v\nORDER BY %s", src, db.dialect.Name(), err, terms)
		}
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID()
		}
		return ids
	}
	for _, src := range sorts {
		want, got := order(lite, src), order(pg, src)
		if !slices.Equal(want, got) {
			t.Errorf("sort %q:\nSQLite:     %v\nPostgreSQL: %v", src, want, got)
		}
	}
}

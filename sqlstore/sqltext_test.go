package sqlstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
)

// TestParseIndexEntries: ParseIndex tells columns from expressions, so
// record can refuse expressions, and keeps the condition as written.
func TestParseIndexEntries(t *testing.T) {
	ix, err := ParseIndex(`CREATE UNIQUE INDEX IF NOT EXISTS "i" ON t (a COLLATE nocase DESC, lower(b), c) WHERE a != '' AND c > 1;`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Index{Unique: true, IfNotExists: true, Name: "i", Table: "t", Columns: []IndexColumn{
		{Name: "a", Collate: "NOCASE", Sort: "DESC"}, {Expr: "lower(b)"}, {Name: "c"},
	}, Where: "a != '' AND c > 1"}
	if diff := cmp.Diff(want, ix); diff != "" {
		t.Errorf("ParseIndex (-want +got):\n%s", diff)
	}
	if got, want := ix.String(), `CREATE UNIQUE INDEX IF NOT EXISTS i ON t (a COLLATE NOCASE DESC, lower(b), c) WHERE a != '' AND c > 1`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	for _, bad := range []string{"CREATE INDEX a ON x (b) WHERE", "CREATE INDEX a ON x (b,)", "CREATE INDEX a ON x ()", "CREATE INDEX a ON x (b); DROP TABLE x"} {
		if ix, err := ParseIndex(bad); err == nil {
			t.Errorf("ParseIndex(%q) = %+v, want an error", bad, ix)
		}
	}
}

// TestKeyTellsQueriesApart: two queries share a cache key only when they
// would run the same statement with the same parameters.
func TestKeyTellsQueriesApart(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	c := &underhood.Collection{ID: "c1", Name: "posts", Fields: []*underhood.Field{{Name: "id", Type: underhood.FieldText}, {Name: "n", Type: underhood.FieldNumber}}}
	base := Query{Collection: c, Where: And(Eq("id", "a"), Compare("n", OpGt, 1)), Order: []Order{{Field: "n"}}, Limit: 10}
	key := func(q Query) string {
		k, ok := s.Key(q)
		if !ok {
			t.Fatalf("Key(%+v) not ok", q)
		}
		return k
	}
	same := base
	same.Where = And(Eq("id", "a"), Compare("n", OpGt, 1))
	if key(base) != key(same) {
		t.Error("equal queries have different keys")
	}
	for name, q := range map[string]Query{
		"value":  {Collection: c, Where: And(Eq("id", "b"), Compare("n", OpGt, 1)), Order: base.Order, Limit: 10},
		"op":     {Collection: c, Where: And(Eq("id", "a"), Compare("n", OpGe, 1)), Order: base.Order, Limit: 10},
		"order":  {Collection: c, Where: base.Where, Order: []Order{{Field: "n", Desc: true}}, Limit: 10},
		"limit":  {Collection: c, Where: base.Where, Order: base.Order, Limit: 20},
		"offset": {Collection: c, Where: base.Where, Order: base.Order, Limit: 10, Offset: 10},
		"table":  {Collection: &underhood.Collection{ID: "c2", Name: "other", Fields: c.Fields}, Where: base.Where, Order: base.Order, Limit: 10},
	} {
		if key(q) == key(base) {
			t.Errorf("a query with another %s has the same key", name)
		}
	}
}

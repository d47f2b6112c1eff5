package sqlstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
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

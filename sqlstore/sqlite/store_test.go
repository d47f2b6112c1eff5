package sqlite

import (
	"testing"

	"github.com/underhood/underhood"
)

func TestDataSource(t *testing.T) {
	tests := []struct {
		dir, dsn, sync string
		readOnly       bool
		want           string
		wantErr        bool
	}{
		{dir: "/data", sync: "FULL",
			want: "/data/data.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(off)"},
		{dir: "/data", sync: "NORMAL", readOnly: true,
			want: "/data/data.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(off)&_pragma=query_only(on)"},
		{dsn: "/x/y.db", sync: "OFF",
			want: "/x/y.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=foreign_keys(off)"},
		{dir: "/data", sync: "FULL); DROP", wantErr: true},
		{dir: "/da?ta", sync: "FULL", wantErr: true},
		{sync: "FULL", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Dialect{}.DataSource(tt.dir, tt.dsn, tt.sync, tt.readOnly)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("DataSource(%q, %q, %q, %v) = %q, %v; want %q, error %v", tt.dir, tt.dsn, tt.sync, tt.readOnly, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestLimitOffset(t *testing.T) {
	tests := []struct {
		limit, offset int
		want          string
	}{
		{0, 0, ""},
		{10, 0, " LIMIT 10"},
		{10, 5, " LIMIT 10 OFFSET 5"},
		{0, 5, " LIMIT -1 OFFSET 5"},
	}
	for _, tt := range tests {
		if got := (Dialect{}).LimitOffset(tt.limit, tt.offset); got != tt.want {
			t.Errorf("LimitOffset(%d, %d) = %q, want %q", tt.limit, tt.offset, got, tt.want)
		}
	}
}

func TestColumnDefinition(t *testing.T) {
	tests := []struct {
		f    underhood.Field
		want string
	}{
		{underhood.Field{Name: "id", Type: underhood.FieldText}, `TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL`},
		{underhood.Field{Name: "title", Type: underhood.FieldText}, `TEXT DEFAULT '' NOT NULL`},
		{underhood.Field{Name: "n", Type: underhood.FieldNumber}, `NUMERIC DEFAULT 0 NOT NULL`},
		{underhood.Field{Name: "b", Type: underhood.FieldBool}, `BOOLEAN DEFAULT FALSE NOT NULL`},
		{underhood.Field{Name: "rel", Type: underhood.FieldRelation, MaxSelect: 1}, `TEXT DEFAULT '' NOT NULL`},
		{underhood.Field{Name: "rels", Type: underhood.FieldRelation, MaxSelect: 2}, `JSON DEFAULT '[]' NOT NULL`},
		{underhood.Field{Name: "j", Type: underhood.FieldJSON}, `JSON DEFAULT NULL`},
		{underhood.Field{Name: "g", Type: underhood.FieldGeoPoint}, `JSON DEFAULT '{"lon":0,"lat":0}' NOT NULL`},
	}
	for _, tt := range tests {
		if got := (Dialect{}).ColumnDefinition(&tt.f); got != tt.want {
			t.Errorf("ColumnDefinition(%s %s) = %q, want %q", tt.f.Name, tt.f.Type, got, tt.want)
		}
	}
}

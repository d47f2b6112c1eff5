package sqlite

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
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

// TestPrepareDirModes (L4): the data directory the server creates is 0700
// and the database and its WAL and shared-memory files are 0600; database files an earlier version left 0644 are restricted;
// an existing directory's own mode is left alone and reported.
func TestPrepareDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "uh_data")
	if err := PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Dialect: Dialect{}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), func(q sqlstore.Querier) error {
		_, err := q.ExecContext(context.Background(), "CREATE TABLE t (x)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	wantModes(t, map[string]fs.FileMode{dir: 0o700, "data.db": 0o600, "data.db-wal": 0o600, "data.db-shm": 0o600}, dir)
	if m := WideDir(dir); m != 0 {
		t.Errorf("WideDir(%s) = %v, want 0", dir, m)
	}
	s.Close()

	// An install of an earlier version: 0755 and 0644.
	os.Chmod(dir, 0o755)
	for _, f := range []string{"data.db", "data.db-wal", "data.db-shm"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644) // creates the missing ones
		os.Chmod(filepath.Join(dir, f), 0o644)
	}
	if err := PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	wantModes(t, map[string]fs.FileMode{dir: 0o755, "data.db": 0o600, "data.db-wal": 0o600, "data.db-shm": 0o600}, dir)
	if m := WideDir(dir); m != 0o755 {
		t.Errorf("WideDir(%s) = %v, want 0755", dir, m)
	}
}

// wantModes checks the permissions of dir's files (by name) and of dir.
func wantModes(t *testing.T, want map[string]fs.FileMode, dir string) {
	t.Helper()
	for name, mode := range want {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, name)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat %s: %v", p, err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("mode of %s = %v, want %v", p, st.Mode().Perm(), mode)
		}
	}
}

// TestColdClientConnectionsKeepSmallCaches: the client connections that
// serve only when the hot ones are all busy keep small page caches, so
// that a burst that opens all of them does not hold 64 full caches.
func TestColdClientConnectionsKeepSmallCaches(t *testing.T) {
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Dialect: Dialect{}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cacheSize := func() int {
		var n int
		err := s.ClientRead(context.Background(), func(q sqlstore.Querier) error {
			return q.QueryRowContext(context.Background(), "PRAGMA cache_size").Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := cacheSize(); got != -hotCacheKiB {
		t.Errorf("hot connection: cache_size = %d, want %d", got, -hotCacheKiB)
	}
	// Keep every hot connection busy: the next read takes a cold one.
	hot := max(4, 2*runtime.GOMAXPROCS(0))
	release := make(chan struct{})
	var busy, done sync.WaitGroup
	busy.Add(hot)
	for range hot {
		done.Go(func() {
			_ = s.ClientRead(context.Background(), func(sqlstore.Querier) error {
				busy.Done()
				<-release
				return nil
			})
		})
	}
	busy.Wait()
	got := cacheSize()
	close(release)
	done.Wait()
	if got != -coldCacheKiB {
		t.Errorf("cold connection: cache_size = %d, want %d", got, -coldCacheKiB)
	}
}

package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/storetest"
)

func TestDataSource(t *testing.T) {
	tests := []struct {
		dsn, sync string
		readOnly  bool
		want      []string // parameters the result must have
		wantNot   []string
		wantErr   bool
	}{
		{dsn: "postgres://u:pw@h:5432/db?sslmode=disable", sync: "FULL",
			want:    []string{"statement_timeout=30s", "lock_timeout=10s", "connect_timeout=5", "application_name=underhood", "sslmode=disable"},
			wantNot: []string{"default_transaction_read_only", "synchronous_commit"}},
		{dsn: "postgres://h/db?statement_timeout=2s&pool_max_conns=3", sync: "OFF", readOnly: true,
			want:    []string{"statement_timeout=2s", "default_transaction_read_only=on", "synchronous_commit=off"},
			wantNot: []string{"pool_max_conns", "statement_timeout=30s"}},
		{dsn: "host=h dbname=db pool_max_conns=2 connect_timeout=1", sync: "NORMAL",
			want:    []string{"host=h", "dbname=db", "connect_timeout=1", "statement_timeout=30s"},
			wantNot: []string{"pool_max_conns", "connect_timeout=5"}},
		{dsn: "", sync: "FULL", wantErr: true},
		{dsn: "postgres://h/db", sync: "BOGUS", wantErr: true},
	}
	for _, tt := range tests {
		got, err := postgres.Dialect{}.DataSource("", tt.dsn, tt.sync, tt.readOnly)
		if (err != nil) != tt.wantErr {
			t.Errorf("DataSource(%q, %q) error = %v, want error %v", tt.dsn, tt.sync, err, tt.wantErr)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("DataSource(%q) = %q, want %s in it", tt.dsn, got, w)
			}
		}
		for _, w := range tt.wantNot {
			if strings.Contains(got, w) {
				t.Errorf("DataSource(%q) = %q, want no %s in it", tt.dsn, got, w)
			}
		}
	}
	if n := (postgres.Dialect{}).ClientPool("postgres://h/db?pool_max_conns=3"); n != 3 {
		t.Errorf("ClientPool(pool_max_conns=3) = %d, want 3", n)
	}
	if n := (postgres.Dialect{}).ClientPool("postgres://h/db"); n < 16 {
		t.Errorf("ClientPool() = %d, want at least 16", n)
	}
}

// TestSimultaneousOpens opens several stores on one new database at the
// same moment: the system migrations run once, under the advisory lock.
func TestSimultaneousOpens(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const n = 6
	stores := make([]*sqlstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = sqlstore.Open(context.Background(), sqlstore.Config{Dialect: postgres.Dialect{}, DSN: dsn})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d = %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	var versions, applied int
	err := stores[0].Read(context.Background(), func(q sqlstore.Querier) error {
		return q.QueryRowContext(context.Background(), `SELECT COUNT(*), COUNT(DISTINCT version) FROM _system_migrations`).Scan(&applied, &versions)
	})
	if err != nil || applied != versions || applied != len(postgres.Dialect{}.SystemSchema()) {
		t.Errorf("_system_migrations has %d rows of %d versions (%v), want each of the %d once", applied, versions, err, len(postgres.Dialect{}.SystemSchema()))
	}
}

// TestStatementTimeout: a statement that runs longer than the DSN's
// statement_timeout is cancelled by the server, the caller learns that the
// database is unavailable for now (503), and the store goes on working.
func TestStatementTimeout(t *testing.T) {
	dsn := storetest.WithParam(storetest.PostgresDSN(t), "statement_timeout", "200ms")
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Dialect: postgres.Dialect{}, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	slow := func(q sqlstore.Querier) error {
		_, err := q.ExecContext(ctx, `SELECT pg_sleep(2)`)
		return err
	}
	for name, run := range map[string]func() error{
		"read":  func() error { return s.Read(ctx, slow) },
		"write": func() error { return s.Write(ctx, slow) },
	} {
		err := run()
		if code := underhood.ErrorCode(err); code != underhood.EUnavailable || !strings.Contains(err.Error(), "statement timeout") {
			t.Errorf("a 2s %s with statement_timeout=200ms = %v (code %q), want it cancelled as %q", name, err, code, underhood.EUnavailable)
		}
	}
	var one int
	if err := s.Read(ctx, func(q sqlstore.Querier) error { return q.QueryRowContext(ctx, `SELECT 1`).Scan(&one) }); err != nil || one != 1 {
		t.Errorf("a read after the timeouts = %d, %v; want 1", one, err)
	}
	if err := s.Write(ctx, func(q sqlstore.Querier) error { _, err := q.ExecContext(ctx, `SELECT 1`); return err }); err != nil {
		t.Errorf("a write after the timeouts = %v", err)
	}
}

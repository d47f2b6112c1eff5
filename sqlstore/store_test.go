package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

func openTestStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Dialect: sqlite.Dialect{}, Dir: dir})
	if err != nil {
		t.Fatalf("Open(%q) = %v", dir, err)
	}
	return s
}

func mustExec(t testing.TB, s *Store, stmts ...string) {
	t.Helper()
	err := s.Write(context.Background(), func(q Querier) error {
		for _, st := range stmts {
			if _, err := q.ExecContext(context.Background(), st); err != nil {
				return fmt.Errorf("%s: %w", st, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func countRows(t testing.TB, s *Store, query string) int {
	t.Helper()
	var n int
	err := s.Read(context.Background(), func(q Querier) error {
		return q.QueryRowContext(context.Background(), query).Scan(&n)
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestWriteConcurrentCommitsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`)
	var mu sync.Mutex
	var batches []int
	s.onBatch = func(n int) { mu.Lock(); batches = append(batches, n); mu.Unlock() }

	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(context.Background(), func(q Querier) error {
				_, err := q.ExecContext(context.Background(), `INSERT INTO t (id, v) VALUES (?, ?)`, i, fmt.Sprint("v", i))
				return err
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Write %d = %v, want nil", i, err)
		}
	}
	total := 0
	for _, b := range batches {
		total += b
	}
	if total != n {
		t.Errorf("batches %v hold %d writes, want %d", batches, total, n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	s = openTestStore(t, dir)
	defer s.Close()
	if got := countRows(t, s, `SELECT COUNT(*) FROM t`); got != n {
		t.Errorf("after reopen: %d rows, want %d", got, n)
	}
}

// blockWriter occupies the writer until the returned func is called, so
// that the writes started meanwhile are run as one batch.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.Write(context.Background(), func(q Querier) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("blocking Write = %v", err)
		}
	}
}

// waitQueued waits until n writes are blocked on the writer's channel: it
// cannot see them, so it waits for the goroutines to get there.
func waitQueued() { time.Sleep(100 * time.Millisecond) }

func TestWriteFailureRollsBackOnlyItsOwnSavepoint(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`)
	var batches []int
	s.onBatch = func(n int) { batches = append(batches, n) }

	release := blockWriter(t, s)
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	errBoom := errors.New("boom")
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(context.Background(), func(q Querier) error {
				if _, err := q.ExecContext(context.Background(), `INSERT INTO t (id, v) VALUES (?, 'x')`, i); err != nil {
					return err
				}
				if i%3 == 0 {
					return errBoom // after its insert: that insert must vanish
				}
				return nil
			})
		}()
	}
	waitQueued()
	release()
	wg.Wait()

	if len(batches) != 2 || batches[1] != n {
		t.Fatalf("batches = %v, want [1 %d] (all writes in one transaction)", batches, n)
	}
	want := 0
	for i, err := range errs {
		switch {
		case i%3 == 0 && !errors.Is(err, errBoom):
			t.Errorf("Write %d = %v, want boom", i, err)
		case i%3 != 0 && err != nil:
			t.Errorf("Write %d = %v, want nil", i, err)
		case i%3 != 0:
			want++
		}
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t`); got != want {
		t.Errorf("%d rows, want %d", got, want)
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t WHERE id % 3 = 0`); got != 0 {
		t.Errorf("%d rows of failed writes, want 0", got)
	}
}

func TestReadPanicReturnsConnection(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	for i := range s.nread + 2 {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Read %d: panic was swallowed", i)
				}
			}()
			_ = s.Read(context.Background(), func(q Querier) error {
				var n int
				_ = q.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM t`).Scan(&n)
				panic("boom")
			})
		}()
	}
	mustExec(t, s, `INSERT INTO t VALUES (1)`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	err := s.Read(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
	})
	if err != nil || n != 1 {
		t.Errorf("Read after panicking reads = %d, %v; want 1, nil (a fresh snapshot)", n, err)
	}
}

// TestReadersPlanWithNewStatistics checks that once the writer has
// refreshed the planner's statistics, every reader plans with them: a
// reader that kept the statistics of a table it saw with one row would
// scan the whole table for a rowid range, as the outbox relay asks for
// after every commit.
func TestReadersPlanWithNewStatistics(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{Dialect: sqlite.Dialect{}, Dir: dir, Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`, `INSERT INTO t (v) VALUES ('a')`)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Open analyzes t with its one row.
	s, err = Open(ctx, Config{Dialect: sqlite.Dialect{}, Dir: dir, Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const query = `EXPLAIN QUERY PLAN SELECT id, v FROM t WHERE id > ?1 ORDER BY id LIMIT 10`
	plans := func() []string {
		t.Helper()
		var out []string
		for range 2 * s.nread { // the pool hands out every reader in turn
			var plan string
			err := s.Read(ctx, func(q Querier) error {
				var id, parent, unused int
				return q.QueryRowContext(ctx, query, 5).Scan(&id, &parent, &unused, &plan)
			})
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			out = append(out, plan)
		}
		return out
	}
	for _, plan := range plans() {
		if !strings.HasPrefix(plan, "SCAN") {
			t.Fatalf("plan with the statistics of one row = %q, want a SCAN (the premise of this test)", plan)
		}
	}
	for i := range optimizeEvery + 10 { // the writer refreshes the statistics meanwhile
		mustExec(t, s, fmt.Sprintf(`INSERT INTO t (v) VALUES ('%d')`, i))
	}
	for i, plan := range plans() {
		if !strings.Contains(plan, "rowid>?") {
			t.Errorf("Read %d: plan = %q, want a SEARCH of the rowid range", i, plan)
		}
	}
}

// TestClientReadWaitsForAConnectionUpToItsLimit takes every connection of
// the client pool, as costly queries would: a ClientRead then fails, after
// the time limit, with a 503 that says the server is busy, while Read
// still answers; once a connection is free again ClientRead works.
func TestClientReadWaitsForAConnectionUpToItsLimit(t *testing.T) {
	s, err := Open(context.Background(), Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir(), MaxQueryTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var held []*conn
	for range s.nclient {
		select {
		case cn := <-s.hot:
			held = append(held, cn)
		case cn := <-s.clients:
			held = append(held, cn)
		}
	}
	one := func(q Querier) error {
		var n int
		return q.QueryRowContext(context.Background(), "SELECT 1").Scan(&n)
	}
	start := time.Now()
	err = s.ClientRead(context.Background(), one)
	took := time.Since(start)
	var ue *underhood.Error
	if !errors.As(err, &ue) || ue.Code != underhood.EUnavailable || ue.Message != msgBusy {
		t.Errorf("ClientRead with every connection taken = %v, want EUnavailable %q", err, msgBusy)
	}
	if took > 3*time.Second {
		t.Errorf("ClientRead with every connection taken failed after %v, want soon after 200ms", took)
	}
	if err := s.Read(context.Background(), one); err != nil {
		t.Errorf("Read with every client connection taken = %v, want it served", err)
	}
	for _, cn := range held {
		cn.home <- cn
	}
	if err := s.ClientRead(context.Background(), one); err != nil {
		t.Errorf("ClientRead once the connections are back = %v", err)
	}
}

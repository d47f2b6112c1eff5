package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// takeNumber takes the next number of sequence "s" in the write running on
// q and stores it in table t, as the outbox does: after the last number
// the writer remembers, or else the largest stored.
func takeNumber(ctx context.Context, s *Store, q Querier) (n int64, counted bool, err error) {
	last, counted := s.LastInSequence(ctx, q, "s")
	if !counted {
		if err := ScanRow(ctx, q, `SELECT COALESCE(MAX(n), 0) FROM t`, nil, &last); err != nil {
			return 0, false, err
		}
	}
	n = last + 1
	if _, err := q.ExecContext(ctx, `INSERT INTO t (n) VALUES (?)`, n); err != nil {
		return 0, counted, err
	}
	s.TookFromSequence(ctx, q, "s", n)
	return n, counted, nil
}

func storedNumbers(t *testing.T, s *Store) []int64 {
	t.Helper()
	var out []int64
	err := s.Read(context.Background(), func(q Querier) error {
		rows, err := q.QueryContext(context.Background(), `SELECT n FROM t ORDER BY n`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n int64
			if err := rows.Scan(&n); err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSequenceSkipsFailedWritesOfAGroupCommit checks that the numbers a
// write took are given again when its savepoint is rolled back (an error
// or a panic), while the writes around it in the same transaction keep
// theirs: no gap, no number twice.
func TestSequenceSkipsFailedWritesOfAGroupCommit(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	mustExec(t, s, `CREATE TABLE t (n INTEGER PRIMARY KEY)`)

	take := func(fail string) (got int64, counted bool, err error) {
		err = s.Write(ctx, func(q Querier) error {
			var err error
			if got, counted, err = takeNumber(ctx, s, q); err != nil {
				return err
			}
			switch fail {
			case "error":
				return errors.New("refused")
			case "panic":
				panic("boom")
			}
			return nil
		})
		return got, counted, err
	}
	if n, counted, err := take(""); err != nil || n != 1 || counted {
		t.Fatalf("first number = %d, counted %v, %v; want 1 computed in SQL", n, counted, err)
	}

	var batches []int
	s.onBatch = func(n int) { batches = append(batches, n) }
	release := blockWriter(t, s)
	kinds := []string{"", "error", "", "panic", "panic", ""}
	got := make([]int64, len(kinds))
	var wg sync.WaitGroup
	for i, fail := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil && fail != "panic" {
					t.Errorf("write %d panicked: %v", i, p)
				}
			}()
			n, counted, err := take(fail)
			if fail == "" && (err != nil || !counted) {
				t.Errorf("write %d = %d, counted %v, %v; want a counted number", i, n, counted, err)
			}
			if fail == "" {
				got[i] = n
			}
		}()
		waitQueued() // the writes queue in order
	}
	release()
	wg.Wait()
	if want := []int{1, len(kinds)}; !cmp.Equal(batches, want) {
		t.Fatalf("batches = %v, want %v (the writes share one transaction)", batches, want)
	}
	if want := []int64{2, 0, 3, 0, 0, 4}; !cmp.Equal(got, want) {
		t.Errorf("numbers of the writes = %v, want %v (0: failed)", got, want)
	}
	if n, _, err := take(""); err != nil || n != 5 {
		t.Errorf("number after the batch = %d, %v; want 5", n, err)
	}
	if got, want := storedNumbers(t, s), []int64{1, 2, 3, 4, 5}; !cmp.Equal(got, want) {
		t.Errorf("stored numbers = %v, want %v", got, want)
	}
}

// TestSequenceAfterAnotherProcessWrote checks that the writer stops
// counting a sequence itself once another connection to the database
// (another process) has committed, and computes the next number in SQL.
func TestSequenceAfterAnotherProcessWrote(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	defer s.Close()
	ctx := context.Background()
	mustExec(t, s, `CREATE TABLE t (n INTEGER PRIMARY KEY)`)
	take := func() (n int64, counted bool) {
		t.Helper()
		err := s.Write(ctx, func(q Querier) error {
			var err error
			n, counted, err = takeNumber(ctx, s, q)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, counted
	}
	take()
	if n, counted := take(); n != 2 || !counted {
		t.Fatalf("second number = %d, counted %v; want 2 counted by the writer", n, counted)
	}

	other, err := sql.Open(s.dialect.DriverName(), filepath.Join(dir, "data.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`INSERT INTO t (n) SELECT MAX(n) + 1 FROM t`); err != nil {
		t.Fatal(err)
	}

	if n, counted := take(); n != 4 || counted {
		t.Errorf("number after another process took 3 = %d, counted %v; want 4 computed in SQL", n, counted)
	}
	if n, counted := take(); n != 5 || !counted {
		t.Errorf("next number = %d, counted %v; want 5 counted by the writer", n, counted)
	}
}

// TestSequenceOutsideAWrite checks that a Querier of a Read gets no number:
// only the writer counts.
func TestSequenceOutsideAWrite(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	err := s.Read(ctx, func(q Querier) error {
		if n, ok := s.LastInSequence(ctx, q, "s"); ok {
			t.Errorf("LastInSequence in a Read = %d, true; want false", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

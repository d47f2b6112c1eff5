package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood/sqlstore"
)

// This file checks the Store itself: group commit, savepoints, snapshots.

func testWriteConcurrentCommitsSurviveReopen(t *testing.T, newDB NewDB) {
	open := newDB(t)
	s := open(t)
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`)
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(context.Background(), func(q sqlstore.Querier) error {
				_, err := q.ExecContext(context.Background(), `INSERT INTO t (id, v) VALUES (`+ph(s, 1)+`, `+ph(s, 2)+`)`, i, fmt.Sprint("v", i))
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
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	s = open(t)
	if got := countRows(t, s, `SELECT COUNT(*) FROM t`); got != n {
		t.Errorf("after reopen: %d rows, want %d", got, n)
	}
}

// blockWriter occupies the writer until the returned func is called, so
// that the writes started meanwhile are run as one batch.
func blockWriter(t *testing.T, s *sqlstore.Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.Write(context.Background(), func(q sqlstore.Querier) error {
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

// waitQueued gives goroutines time to queue their writes behind the
// writer, which cannot be observed.
func waitQueued() { time.Sleep(100 * time.Millisecond) }

func testWriteFailureRollsBackOnlyItsOwnChanges(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`)
	release := blockWriter(t, s)
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	errBoom := errors.New("boom")
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(context.Background(), func(q sqlstore.Querier) error {
				if _, err := q.ExecContext(context.Background(), `INSERT INTO t (id, v) VALUES (`+ph(s, 1)+`, 'x')`, i); err != nil {
					return err
				}
				switch i % 3 {
				case 0:
					return errBoom // after its insert: that insert must vanish
				case 1:
					// A failed statement (a duplicate key) ends only its
					// own savepoint, even where it aborts the transaction.
					_, err := q.ExecContext(context.Background(), `INSERT INTO t (id, v) VALUES (`+ph(s, 1)+`, 'y')`, i)
					if err == nil {
						return errors.New("duplicate key accepted")
					}
					return err
				}
				return nil
			})
		}()
	}
	waitQueued()
	release()
	wg.Wait()
	want := 0
	for i, err := range errs {
		switch {
		case i%3 == 0 && !errors.Is(err, errBoom):
			t.Errorf("Write %d = %v, want boom", i, err)
		case i%3 == 1 && err == nil:
			t.Errorf("Write %d = nil, want the duplicate key error", i)
		case i%3 == 2 && err != nil:
			t.Errorf("Write %d = %v, want nil", i, err)
		case i%3 == 2:
			want++
		}
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t`); got != want {
		t.Errorf("%d rows, want %d", got, want)
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t WHERE id % 3 <> 2`); got != 0 {
		t.Errorf("%d rows of failed writes, want 0", got)
	}
}

func testWritePanicIsRaisedInCallerOnly(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	release := blockWriter(t, s)
	var wg sync.WaitGroup
	var recovered any
	var okErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer func() { recovered = recover() }()
		_ = s.Write(context.Background(), func(q sqlstore.Querier) error {
			_, _ = q.ExecContext(context.Background(), `INSERT INTO t VALUES (1)`)
			panic("bad fn")
		})
	}()
	go func() {
		defer wg.Done()
		okErr = s.Write(context.Background(), func(q sqlstore.Querier) error {
			_, err := q.ExecContext(context.Background(), `INSERT INTO t VALUES (2)`)
			return err
		})
	}()
	waitQueued()
	release()
	wg.Wait()
	if recovered != "bad fn" {
		t.Errorf("recovered %v, want the panic of fn", recovered)
	}
	if okErr != nil {
		t.Errorf("other Write = %v, want nil", okErr)
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t WHERE id = 1`); got != 0 {
		t.Errorf("the panicking fn's row was committed")
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t WHERE id = 2`); got != 1 {
		t.Errorf("the other fn's row is missing")
	}
}

func testWriteCancelledContext(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)

	// Cancelled before its turn: fn never runs.
	release := blockWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	done := make(chan error)
	go func() {
		done <- s.Write(ctx, func(q sqlstore.Querier) error { ran = true; return nil })
	}()
	waitQueued()
	cancel()
	release()
	if err := <-done; !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Write with ctx cancelled while queued = %v (ran %v), want context.Canceled, not run", err, ran)
	}

	// Cancelled while fn runs: its later statements fail, its changes are
	// rolled back, later writes work.
	ctx, cancel = context.WithCancel(context.Background())
	err := s.Write(ctx, func(q sqlstore.Querier) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		cancel()
		_, err := q.ExecContext(ctx, `INSERT INTO t VALUES (2)`)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write cancelled midway = %v, want context.Canceled", err)
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t`); got != 0 {
		t.Errorf("%d rows after a cancelled write, want 0", got)
	}
	mustExec(t, s, `INSERT INTO t VALUES (3)`)
	if got := countRows(t, s, `SELECT COUNT(*) FROM t`); got != 1 {
		t.Errorf("%d rows after a later write, want 1", got)
	}
}

func testReadIsReadOnlySnapshot(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY)`, `INSERT INTO t VALUES (1)`)
	ctx := context.Background()
	err := s.Read(ctx, func(q sqlstore.Querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO t VALUES (2)`)
		return err
	})
	if err == nil {
		t.Errorf("Read with an INSERT = nil, want an error")
	}
	err = s.Read(ctx, func(q sqlstore.Querier) error {
		var before, after int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&before); err != nil {
			return err
		}
		mustExec(t, s, `INSERT INTO t VALUES (5)`) // another connection commits meanwhile
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&after); err != nil {
			return err
		}
		if before != 1 || after != 1 {
			t.Errorf("counts in one Read = %d, %d; want 1, 1 (one snapshot)", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, s, `SELECT COUNT(*) FROM t`); got != 2 {
		t.Errorf("next Read sees %d rows, want 2", got)
	}
}

func testClosedStoreRefusesCalls(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), func(sqlstore.Querier) error { return nil }); err == nil {
		t.Errorf("Write after Close = nil, want an error")
	}
	if err := s.Read(context.Background(), func(sqlstore.Querier) error { return nil }); err == nil {
		t.Errorf("Read after Close = nil, want an error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func testReadPanicReturnsConnection(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	for i := range 20 { // more than the pool holds
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Read %d: panic was swallowed", i)
				}
			}()
			_ = s.Read(context.Background(), func(q sqlstore.Querier) error {
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
	err := s.Read(ctx, func(q sqlstore.Querier) error {
		return q.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
	})
	if err != nil || n != 1 {
		t.Errorf("Read after panicking reads = %d, %v; want 1, nil (a fresh snapshot)", n, err)
	}
}

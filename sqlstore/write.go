package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// This file holds the writer: group commit of concurrent Writes in one
// transaction, and the upkeep it does between batches.

// Write runs fn inside a write transaction with group commit: the writer
// collects the Write calls waiting at the time (up to 128) into one
// transaction, runs each fn in its own SAVEPOINT (a fn that returns an
// error or panics rolls back only its own changes) and commits once, after
// writing what the fns that succeeded staged (Stage). Every caller is
// answered only after that COMMIT, so nil means committed (and, with
// synchronous FULL, on disk); if the staged values or the COMMIT fail every
// fn of the batch gets the error.
//
// fn must only use q and must not call Write (or Read expecting to see its
// own changes): a nested Write waits for the writer that is running fn and
// deadlocks. When ctx ends before fn starts, fn does not run; once it runs,
// statements of fn fail with ctx's error as soon as ctx is done, but a
// statement that has started is never interrupted, so the shared
// transaction is never harmed. A panic in fn is re-raised in the caller.
func (s *Store) Write(ctx context.Context, fn func(q Querier) error) error {
	if s.closed.Load() {
		return errClosed
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errClosed
	}
	// Wait even if ctx ends now: fn may run and commit, and the caller must
	// not be told otherwise.
	<-req.done
	if req.panicked {
		panic(req.panicVal)
	}
	return s.unavailable(req.err)
}

// writeReq is one Write call waiting for the writer.
type writeReq struct {
	ctx      context.Context
	fn       func(q Querier) error
	err      error
	panicked bool
	panicVal any
	ok       bool // fn ran and its savepoint was released
	done     chan struct{}
}

// writeLoop is the single writer: it runs batches until Close.
func (s *Store) writeLoop() {
	defer close(s.loopDone)
	var poll <-chan time.Time
	if s.dialect.ReadVersion() == "" && s.dialect.DataVersion() != "" {
		t := time.NewTicker(otherWritersPoll)
		defer t.Stop()
		poll = t.C
		s.noticeOtherWriters()
	}
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case r := <-s.writes:
			batch = append(batch[:0], r)
		case <-poll:
			s.noticeOtherWriters()
			continue
		case <-s.closing:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		for len(batch) > 0 {
			batch = s.runBatch(batch)
		}
	}
}

// otherWritersPoll is how often the writer of a database file checks
// whether another process has written to it.
const otherWritersPoll = 500 * time.Millisecond

// noticeOtherWriters counts a new version when another process (the
// CLI, or someone in the sqlite3 shell) has committed to the database
// since the writer last looked: Version only counts this process's
// transactions on such an engine, so results cached under it would
// otherwise be served unchanged until this process wrote. The writer's
// own commits leave its data version as it is.
func (s *Store) noticeOtherWriters() {
	w := s.writer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.open(ctx); err != nil {
		return
	}
	var v int64
	if err := w.c.QueryRowContext(ctx, s.dialect.DataVersion()).Scan(&v); err != nil {
		s.checkConn(w, err)
		return
	}
	if s.seenDataVersion && v != s.dataVersion {
		s.version.Add(1)
	}
	s.dataVersion, s.seenDataVersion = v, true
}

// runBatch runs batch in one transaction and answers its callers. When the
// transaction is lost midway (SQLite rolls back the whole transaction on
// some errors), the callers whose fn already ran get the error and the
// ones not run yet are returned, to run in a fresh transaction.
func (s *Store) runBatch(batch []*writeReq) (rest []*writeReq) {
	ctx := context.Background()
	w := s.writer
	answer := func(list []*writeReq, err error) {
		for _, r := range list {
			if err != nil && r.err == nil && !r.panicked {
				r.err = err
			}
			close(r.done)
		}
	}
	if err := w.open(ctx); err != nil {
		answer(batch, fmt.Errorf("begin write: %w", err))
		return nil
	}
	w.checkGen(s.schemaGen.Load())
	s.seqs.beginTransaction()
	stages := s.loadStages()
	for _, st := range stages {
		st.beginTransaction()
	}
	// The statements that control the transaction wait in pending until
	// the next statement of a fn, or the COMMIT, needs them sent; on a
	// server engine they then go in one round trip.
	pending := []string{s.dialect.BeginWrite()}
	if lock := s.dialect.LockWrites(); lock != "" {
		pending = append(pending, lock)
	}
	began, lastOK := false, false
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		pending = append(pending, "SAVEPOINT w")
		if err := s.control(ctx, w, pending); err != nil {
			s.abort(w)
			if !began {
				answer(batch, fmt.Errorf("begin write: %w", err))
				return nil
			}
			// The end of an earlier fn's savepoint failed: the
			// transaction, and the work of the callers before, is lost.
			answer(batch[:i], fmt.Errorf("write transaction lost: %w", err))
			return batch[i:]
		}
		began, pending = true, pending[:0]
		s.runFn(r, w)
		r.ok = r.err == nil && !r.panicked
		s.seqs.endWrite(r.ok)
		for _, st := range stages {
			st.endWrite(r.ok)
		}
		lastOK = r.ok
		if r.ok {
			pending = append(pending, "RELEASE w")
			continue
		}
		pending = append(pending, "ROLLBACK TO w", "RELEASE w")
	}
	pending, err := s.flushStages(ctx, w, stages, pending, lastOK)
	if err != nil {
		s.abort(w)
		s.checkConn(w, err)
		answer(batch, fmt.Errorf("write staged values: %w", err))
		return nil
	}
	s.seqs.endWrite(true) // the numbers the flush took
	if s.onBatch != nil {
		s.onBatch(len(batch))
	}
	if err := s.control(ctx, w, append(pending, "COMMIT")); err != nil {
		s.abort(w)
		s.checkConn(w, err)
		s.version.Add(1)
		answer(batch, fmt.Errorf("commit: %w", err))
		return nil
	}
	s.seqs.committedTransaction()
	v := s.version.Add(1)
	answer(batch, nil)
	if v%optimizeEvery == 0 {
		s.optimize(w)
	}
	return nil
}

// control runs statements that control a transaction (BEGIN, SAVEPOINT,
// RELEASE, COMMIT…): one at a time through the statement cache, or, on an
// engine where every statement costs a round trip, all in one.
func (s *Store) control(ctx context.Context, w *conn, stmts []string) error {
	if s.dialect.JoinStatements() {
		_, err := w.c.ExecContext(ctx, strings.Join(stmts, "; "))
		return err
	}
	for _, st := range stmts {
		if _, err := w.exec(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// optimizeEvery is how many commits pass between refreshes of the
// planner's statistics: often enough that a table filled after start is
// planned with the right indexes, rarely enough to cost nothing.
const optimizeEvery = 256

// optimize refreshes the planner's statistics, outside any transaction.
// A failure only leaves the statistics as they were. When the statistics
// changed, every connection drops its statements and plans again with the
// new ones (conn.checkGen): a reader that kept the statistics of a table
// it saw nearly empty would scan the whole table where an index or a
// rowid range serves.
func (s *Store) optimize(w *conn) {
	stmt := s.dialect.Optimize()
	if stmt == "" {
		return
	}
	ctx := context.Background()
	before := s.statsDigest(ctx, w)
	_, _ = w.c.ExecContext(ctx, stmt) // not cached: it may hold several statements
	if after := s.statsDigest(ctx, w); after != before {
		s.schemaGen.Add(1)
	}
}

// statsDigest returns the dialect's digest of the planner's statistics, or
// "" when it has none or it cannot be read.
func (s *Store) statsDigest(ctx context.Context, w *conn) string {
	query := s.dialect.StatsDigest()
	if query == "" {
		return ""
	}
	var digest sql.NullString
	if err := w.c.QueryRowContext(ctx, query).Scan(&digest); err != nil {
		return ""
	}
	return digest.String
}

// runFn runs r.fn, turning a panic into r.panicked.
func (s *Store) runFn(r *writeReq, w *conn) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked, r.panicVal = true, p
		}
	}()
	r.err = r.fn(&querier{cn: w, detach: true, ctx: r.ctx})
}

// abort rolls back whatever is left of the write transaction and drops the
// cached statements, whose schema may have been rolled back too, and the
// sequences the writer counts. A connection the rollback finds broken is
// dropped.
func (s *Store) abort(w *conn) {
	_, err := w.exec(context.Background(), "ROLLBACK")
	s.checkConn(w, err)
	s.schemaGen.Add(1)
	s.seqs.forget()
}

package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/underhood/underhood"
)

// This file holds the reads: the two pools of read connections, the time
// limit of a client's read, and how a lost or unreachable database is
// reported.

// Read runs fn on a read-only connection from the pool, inside a read
// transaction, so every statement of fn sees one snapshot of the database.
// Writes of a Write that has not been answered yet are not visible. Read
// is for the reads of the system, whose cost no client decides; see
// ClientRead.
func (s *Store) Read(ctx context.Context, fn func(q Querier) error) error {
	cn, err := s.takeConn(ctx, s.readers)
	if err != nil {
		return err
	}
	return s.read(ctx, cn, s.readers, false, fn)
}

// ClientRead is Read for the reads whose cost a client decides with its
// filter, sort or expand (lists, views, counts): they run on a pool of
// their own, which Read never waits for, and are ended once they have
// taken Config.MaxQueryTime (a little more, on an engine that ends each
// statement itself at the limit). A read ended so fails with an EInvalid
// error that names the limit; its connection serves the next read. A
// read that waits that long for a connection fails with EUnavailable.
func (s *Store) ClientRead(ctx context.Context, fn func(q Querier) error) error {
	limit := s.maxQueryTime
	if limit <= 0 {
		cn, err := s.takeClientConn(ctx)
		if err != nil {
			return err
		}
		return s.read(ctx, cn, cn.home, true, fn)
	}
	wait, cancel := context.WithTimeout(ctx, limit)
	cn, err := s.takeClientConn(wait)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return &underhood.Error{Code: underhood.EUnavailable, Message: msgBusy, Err: err}
		}
		return err
	}
	// Connecting is not part of the query's time.
	if err := cn.open(ctx); err != nil {
		cn.home <- cn
		return s.unavailable(fmt.Errorf("begin read: %w", err))
	}
	// The engine's own limit (ClientSetup) ends a statement cleanly at
	// limit; the deadline, a moment later, ends a read of many statements
	// and, on SQLite, the statement itself.
	rctx, cancel := context.WithTimeoutCause(ctx, limit+max(limit/20, 100*time.Millisecond), errQueryTime)
	defer cancel()
	err = s.read(rctx, cn, cn.home, true, fn)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if errors.Is(context.Cause(rctx), errQueryTime) || s.dialect.TimedOut(err) {
		return &underhood.Error{
			Code:    underhood.EInvalid,
			Message: fmt.Sprintf("The query took longer than %s (limit --max-query-time); narrow the filter or sort.", limit),
			Err:     err,
		}
	}
	return err
}

// errQueryTime is the cause of the end of a ClientRead past its limit.
var errQueryTime = errors.New("sqlstore: query time limit reached")

// msgBusy is what a client is told when every connection of the client
// pool stayed busy for the whole query time limit.
const msgBusy = "The server is busy with other queries. Please try again later."

// hotWait is how long a client query waits for a hot connection before
// it takes any other.
const hotWait = 250 * time.Millisecond

// takeClientConn takes a hot client connection, or, when none is free
// within hotWait, any client connection, waiting until ctx ends.
func (s *Store) takeClientConn(ctx context.Context) (*conn, error) {
	select {
	case cn := <-s.hot:
		return cn, nil
	default:
	}
	t := time.NewTimer(hotWait)
	defer t.Stop()
	select {
	case cn := <-s.hot:
		return cn, nil
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closing:
		return nil, errClosed
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	select {
	case cn := <-s.hot:
		return cn, nil
	case cn := <-s.clients:
		return cn, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closing:
		return nil, errClosed
	}
}

// takeConn takes a connection from pool, waiting until ctx ends.
func (s *Store) takeConn(ctx context.Context, pool chan *conn) (*conn, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	select {
	case cn := <-pool:
		return cn, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closing:
		return nil, errClosed
	}
}

// read runs fn in a read transaction on cn, which it then puts back in
// pool. client marks a ClientRead.
func (s *Store) read(ctx context.Context, cn *conn, pool chan *conn, client bool, fn func(q Querier) error) (err error) {
	bg := context.WithoutCancel(ctx)
	chain := s.dialect.JoinStatements()
	defer func() {
		// Runs on panics too: the connection goes back without a
		// transaction, or, on a server engine, inside the BEGIN of the
		// next read, sent with this one's ROLLBACK in one round trip. A
		// transaction takes its snapshot at its first statement, so the
		// waiting one holds none and the next read sees every write
		// committed before it starts.
		if cn.inRead {
			end := "ROLLBACK"
			if chain {
				end = "ROLLBACK; " + s.dialect.BeginRead()
			}
			var rerr error
			if chain {
				_, rerr = cn.c.ExecContext(bg, end)
			} else {
				_, rerr = cn.exec(bg, end)
			}
			cn.inRead = chain && rerr == nil
			if rerr != nil && err == nil {
				err = fmt.Errorf("end read: %w", rerr)
			}
		}
		s.checkConn(cn, err)
		pool <- cn
		err = s.unavailable(err)
	}()
	if err := cn.open(ctx); err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	cn.checkGen(s.schemaGen.Load())
	if !cn.inRead {
		if _, err := cn.exec(bg, s.dialect.BeginRead()); err != nil {
			return fmt.Errorf("begin read: %w", err)
		}
		cn.inRead = true
	}
	q := &querier{cn: cn}
	if client {
		q.client, q.ctx = true, ctx
	}
	return fn(q)
}

// msgUnavailable is what a client is told while the database is unreachable.
const msgUnavailable = "The database is unavailable. Please try again later."

// msgTimedOut is what a client is told when a statement ran out of time.
const msgTimedOut = "The database did not answer in time. Please try again later."

// unavailable turns an error of an unreachable database, or of a statement
// the database gave up on, into EUnavailable.
func (s *Store) unavailable(err error) error {
	if err == nil {
		return nil
	}
	msg := msgUnavailable
	switch {
	case s.dialect.Unavailable(err):
	case s.dialect.TimedOut(err):
		msg = msgTimedOut
	default:
		return err
	}
	var ue *underhood.Error
	if errors.As(err, &ue) && ue.Code == underhood.EUnavailable {
		return err
	}
	return &underhood.Error{Code: underhood.EUnavailable, Message: msg, Err: err}
}

// checkConn drops cn's connection when err says it is broken, so that the
// next use opens a new one.
func (s *Store) checkConn(cn *conn, err error) {
	if err != nil && cn.c != nil && s.dialect.Unavailable(err) {
		_ = cn.close()
		cn.c = nil
	}
}

// ignoreBroken drops the error of closing a connection that was already
// lost.
func ignoreBroken(d Dialect, err error) error {
	if err != nil && d.Unavailable(err) {
		return nil
	}
	return err
}

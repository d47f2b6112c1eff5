package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
)

// This file holds a connection with its cache of prepared statements, and
// the Querier handed to the functions of Read and Write.

// conn is one database connection and its prepared statements. It is used
// by one goroutine at a time. c is nil after the connection was lost; open
// gets a new one from db.
type conn struct {
	c      *sql.Conn
	db     *sql.DB
	gen    uint64
	stmts  map[string]*cachedStmt
	inRead bool       // a read transaction is open (Read)
	reload string     // Dialect.ReloadStats
	setup  []string   // run on each new connection (Dialect.ClientSetup)
	home   chan *conn // the pool a client connection goes back to
}

// open makes sure cn has a connection.
func (cn *conn) open(ctx context.Context) error {
	if cn.c != nil {
		return nil
	}
	c, err := cn.db.Conn(ctx)
	if err != nil {
		return err
	}
	for _, st := range cn.setup {
		if _, err := c.ExecContext(ctx, st); err != nil {
			_ = c.Close()
			return fmt.Errorf("set up connection: %w", err)
		}
	}
	cn.c, cn.stmts, cn.inRead = c, nil, false
	return nil
}

// cachedStmt is a prepared statement; busy guards against running it
// again while its rows are open.
type cachedStmt struct {
	st   *sql.Stmt
	busy atomic.Bool
}

// checkGen drops the cached statements when the schema or the planner's
// statistics changed since they were prepared (gen is the store's
// schemaGen), and makes the connection load the new statistics. It runs
// outside any transaction but a waiting read's (JoinStatements).
func (cn *conn) checkGen(gen uint64) {
	if cn.gen == gen {
		return
	}
	cn.clearStmts()
	cn.gen = gen
	if cn.reload != "" && cn.c != nil {
		// A failure only leaves the old statistics in use.
		_, _ = cn.c.ExecContext(context.Background(), cn.reload)
	}
}

// clearStmts forgets every cached statement. One in use (its rows are
// open) is not closed, as Close would wait for those rows: it is left to
// the connection's close.
func (cn *conn) clearStmts() {
	for _, cs := range cn.stmts {
		if !cs.busy.Load() {
			_ = cs.st.Close()
		}
	}
	cn.stmts = nil
}

func (cn *conn) close() error {
	if cn.c == nil {
		return nil
	}
	cn.clearStmts()
	return cn.c.Close()
}

// stmt returns the cached prepared statement of query, marked busy, or nil
// when it is busy (the caller then runs query unprepared). An error to
// prepare query is returned: on PostgreSQL it has ended the transaction,
// so running the query again would only report that.
func (cn *conn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if cs, ok := cn.stmts[query]; ok {
		if cs.busy.CompareAndSwap(false, true) {
			return cs, nil
		}
		return nil, nil
	}
	st, err := cn.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(cn.stmts) >= maxCachedStmts {
		cn.clearStmts()
	}
	if cn.stmts == nil {
		cn.stmts = map[string]*cachedStmt{}
	}
	cs := &cachedStmt{st: st}
	cs.busy.Store(true)
	cn.stmts[query] = cs
	return cs, nil
}

// exec runs a statement that returns no rows through the statement cache.
func (cn *conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	cs, err := cn.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return cn.c.ExecContext(ctx, query, args...)
	}
	defer cs.busy.Store(false)
	return cs.st.ExecContext(ctx, args...)
}

// query runs a query through the statement cache; release must be called
// once the rows are closed.
func (cn *conn) query(ctx context.Context, query string, args ...any) (rows *sql.Rows, release func(), err error) {
	cs, err := cn.stmt(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	if cs == nil {
		rows, err = cn.c.QueryContext(ctx, query, args...)
		return rows, func() {}, err
	}
	rows, err = cs.st.QueryContext(ctx, args...)
	if err != nil {
		cs.busy.Store(false)
		return nil, nil, err
	}
	return rows, func() { cs.busy.Store(false) }, nil
}

// querier is the Querier of a Read or Write fn. For writes (detach) the
// statements run detached from the caller's context, so that a cancelled
// caller cannot interrupt a statement of the shared transaction; a caller
// whose context is done gets its error instead of running more statements.
// The statements of a ClientRead (client) run with the read's context,
// which ends at its time limit, whatever context fn passes them.
type querier struct {
	cn     *conn
	detach bool
	client bool
	ctx    context.Context // the Write caller's context, or the ClientRead's
}

// context returns the context to run a statement with, or the error that
// ends the caller's work.
func (q *querier) context(ctx context.Context) (context.Context, error) {
	if q.client {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return q.ctx, nil
	}
	if !q.detach {
		return ctx, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// ExecContext runs a statement through the connection's statement cache.
func (q *querier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := q.context(ctx)
	if err != nil {
		return nil, err
	}
	return q.cn.exec(ctx, query, args...)
}

// QueryContext runs a query. Its statement is not cached: the caller may
// run the same query again while these rows are open.
func (q *querier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := q.context(ctx)
	if err != nil {
		return nil, err
	}
	return q.cn.c.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query expected to return at most one row.
func (q *querier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	dctx, err := q.context(ctx)
	if err != nil {
		// ctx (or the caller's) is done: database/sql checks the context
		// before it touches the connection, so this only yields the error.
		done := ctx
		if ctx.Err() == nil {
			done = q.ctx
		}
		return q.cn.c.QueryRowContext(done, query, args...)
	}
	return q.cn.c.QueryRowContext(dctx, query, args...)
}

// queryRows runs a query of the store itself through the statement cache
// when q is one of the store's queriers.
func queryRows(ctx context.Context, q Querier, query string, args ...any) (*sql.Rows, func(), error) {
	cq, ok := q.(*querier)
	if !ok {
		rows, err := q.QueryContext(ctx, query, args...)
		return rows, func() {}, err
	}
	ctx, err := cq.context(ctx)
	if err != nil {
		return nil, nil, err
	}
	return cq.cn.query(ctx, query, args...)
}

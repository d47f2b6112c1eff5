// Package sqlstore is the storage layer of Underhood: collections as real
// tables with one column per field, records as rows, and the system tables
// (_collections, _params) beside them, all through database/sql over a
// Dialect (sqlstore/sqlite, sqlstore/postgres).
//
// A Store has one writer connection and two pools of read-only
// connections: a small one for the reads of the system (Read), among them
// the caller's identity on every authenticated request, and a large one
// for the reads whose cost a client decides with its filter, sort and
// expand (ClientRead), which run under a time limit. However many costly
// client queries run, the system's reads never wait behind them.
// Writes are group committed: concurrent Write calls share one transaction
// and one fsync, each inside its own SAVEPOINT, and every caller is answered
// only after the shared COMMIT.
//
// On a server engine (PostgreSQL) several nodes may share the database: a
// lost connection is opened again on next use, errors of an unreachable
// database are EUnavailable, schema changes are serialised by an advisory
// lock, and every node hears of the schema and settings changes of the
// others (OnChange).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
)

// Querier runs SQL statements. The Querier handed to a Read or Write fn is
// valid only until fn returns.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Dialect is a database engine: the filter language's SQL shapes
// (filter.Dialect) and the storage side below. sqlite.Dialect implements
// it. Its methods use primitive and root types only, so that a dialect
// package need not import sqlstore.
type Dialect interface {
	filter.Dialect

	// DriverName is the database/sql driver to open.
	DriverName() string
	// DataSource returns the data source name of the writer connection, or
	// of a reader connection when readOnly, for the database in dir (or at
	// dsn, for server engines). synchronous is "FULL", "NORMAL" or "OFF".
	DataSource(dir, dsn, synchronous string, readOnly bool) (string, error)
	// ClientPool returns how many connections to keep for the reads of
	// ClientRead on the database at dsn (0 = default); they are opened as
	// they are first needed.
	ClientPool(dsn string) int
	// ClientSetup returns the statements that prepare a new connection of
	// the client pool before its first transaction: a bound on its memory,
	// and, when maxQueryTime > 0 and the engine can, the time limit of each
	// of its statements.
	ClientSetup(maxQueryTime time.Duration) []string
	// Materialize returns query, a SELECT, rewritten so that the engine
	// computes all its rows before it returns the first, on an engine
	// whose statements can only be interrupted until their first row
	// (SQLite); on any other engine it returns query unchanged.
	Materialize(query string) string
	// BeginWrite is the statement that starts a write transaction and takes
	// the write lock at once (SQLite: BEGIN IMMEDIATE).
	BeginWrite() string
	// BeginRead is the statement that starts a read-only transaction whose
	// statements all see one snapshot.
	BeginRead() string
	// LockSchema is the statement that serialises schema changes and
	// system migrations of every process on the database until the
	// transaction ends ("" when BeginWrite already does).
	LockSchema() string
	// RebuildsTables reports whether columns are changed by rebuilding
	// the table (SQLite) rather than with ALTER TABLE in place.
	RebuildsTables() bool
	// StrictViews reports whether views depend on the tables they read,
	// so that a table is changed with the views dropped and created again.
	StrictViews() bool
	// HiddenColumns are the definitions of columns every table gets
	// beside its fields (none when the engine has a rowid).
	HiddenColumns() []string
	// Collate renders the column expression expr of an index with the
	// SQLite collation ("NOCASE", "BINARY", "RTRIM") users write.
	Collate(expr, collation string) string
	// Unavailable reports whether err means that the database cannot be
	// reached, as opposed to a failed statement.
	Unavailable(err error) bool
	// TimedOut reports whether err is a statement that the database gave
	// up on (a statement or lock timeout): the connection is sound, the
	// caller may try again later.
	TimedOut(err error) bool
	// LockWrites is the statement that a write transaction runs after
	// BeginWrite to exclude the writers of other processes sharing the
	// database until it ends and to count the transaction in the version
	// ReadVersion reads ("" when BeginWrite already excludes them).
	LockWrites() string
	// JoinStatements reports whether statements without parameters that
	// control transactions should be sent together, as one: on a server
	// engine each statement costs a round trip.
	JoinStatements() bool
	// ReadVersion is the query of the number of write transactions that
	// the processes sharing the database have committed ("" when this
	// process is the only writer and counts them itself).
	ReadVersion() string
	// SystemSchema lists the statements that create the system tables, one
	// migration each; their index in the list is their version minus one,
	// so statements are only ever appended.
	SystemSchema() []string
	// ColumnDefinition is the type and constraints of f's column, without
	// the column name: "TEXT DEFAULT '' NOT NULL".
	ColumnDefinition(f *underhood.Field) string
	// ConvertColumn returns an SQL expression that converts expr, a column
	// holding values of field from, to the stored form of field to.
	ConvertColumn(from, to *underhood.Field, expr string) string
	// RenameTable returns the statements that rename table from to to.
	RenameTable(from, to string) []string
	// LimitOffset renders a LIMIT/OFFSET clause (0 = none) with a leading
	// space, or "".
	LimitOffset(limit, offset int) string
	// Optimize is the statement that refreshes the query planner's
	// statistics, which the writer runs every optimizeEvery commits and at
	// open ("" = none).
	Optimize() string
	// StatsDigest is the query of a text that changes whenever Optimize
	// has changed the planner's statistics ("" = none).
	StatsDigest() string
	// ReloadStats is the statement that makes a connection plan its next
	// statements with the newest statistics, on an engine where a
	// connection keeps the ones it loaded with the schema until the schema
	// changes ("" = none).
	ReloadStats() string
	// DataVersion is the query of a number that changes whenever another
	// connection has committed to the database, cheap enough to run in
	// every write transaction; it lets the writer count sequences itself
	// (sequence.go). "" when there is none: sequences are then computed
	// in SQL.
	DataVersion() string
	// UniqueViolation reports whether err is a unique constraint violation
	// and names the columns ("slug") or, failing that, the index at fault.
	UniqueViolation(err error) (columns []string, index string, ok bool)
}

// Listener is implemented by the dialects of engines that several
// processes share: it carries change notices between them.
type Listener interface {
	// NotifyStatement sends the notice bound to placeholder 1 to every
	// listener when the transaction it runs in commits.
	NotifyStatement() string
	// Listen calls notify with each notice until ctx ends, reconnecting
	// when needed; after each (re)connection it calls notify("").
	Listen(ctx context.Context, dsn string, notify func(payload string))
}

// Config selects and configures the database of a Store.
type Config struct {
	Dialect     Dialect
	Dir         string // data directory (sqlite: <Dir>/data.db), created if missing
	DSN         string // server engines: the connection string
	Synchronous string // "FULL" (default), "NORMAL" or "OFF"
	// MaxQueryTime bounds each ClientRead: 0 means DefaultMaxQueryTime, a
	// negative value no limit.
	MaxQueryTime time.Duration
}

// DefaultMaxQueryTime is the time a ClientRead may take unless
// Config.MaxQueryTime says otherwise.
const DefaultMaxQueryTime = 5 * time.Second

// systemReaders is the number of connections of Read. Its reads are the
// store's own and the services' (identities, settings, the outbox), each
// cheap, so a few serve any load.
const systemReaders = 4

// maxBatch bounds how many Write calls share one transaction.
const maxBatch = 128

// maxCachedStmts bounds the prepared statements kept per connection.
const maxCachedStmts = 256

// errClosed is returned by calls on a closed Store.
var errClosed = errors.New("sqlstore: store is closed")

// Store is a database of collections and records. It is safe for
// concurrent use.
type Store struct {
	dialect Dialect
	db      *sql.DB // the writer: one connection
	rdb     *sql.DB // the readers

	writer  *conn
	readers chan *conn // Read's
	nread   int
	clients chan *conn // ClientRead's, beyond hot
	// hot are the client connections ClientRead takes first: few (two
	// per processor, at least 4), so their page caches stay warm and
	// queries do not thrash the processors (all 64 connections in turn
	// had halved the counted lists of the load benchmark on SQLite). A
	// client query waits for one up to hotWait, then takes
	// any connection of clients, so costly queries holding the hot ones
	// delay the others by no more than that.
	hot     chan *conn
	nclient int
	// maxQueryTime bounds a ClientRead (0: no limit).
	maxQueryTime time.Duration
	// versions are the connections of Version on an engine where read
	// connections wait inside a transaction (JoinStatements).
	versions chan *conn
	nversion int

	writes   chan *writeReq
	closing  chan struct{}
	loopDone chan struct{}
	closed   atomic.Bool
	closeMu  sync.Mutex

	// onBatch, when set (by tests), is told the size of every batch just
	// before its COMMIT.
	onBatch func(size int)

	// schemaGen counts changes of the schema and of the planner's
	// statistics; a connection whose statement cache was filled under
	// another generation drops it.
	schemaGen atomic.Uint64

	// version counts committed write transactions; see Version.
	version atomic.Uint64
	// polls shares the round trips of Version on a shared engine.
	polls versionPolls

	// seqs are the sequences the writer counts (sequence.go).
	seqs sequences
	// dataVersion is the writer's last reading of Dialect.DataVersion by
	// noticeOtherWriters, once seenDataVersion; writer goroutine only.
	dataVersion     int64
	seenDataVersion bool
	// stages collect values to write before each COMMIT (stage.go).
	stagesMu sync.Mutex
	stages   []stager

	// node names this process in its change notices; onChange is told of
	// the changes of other processes (see OnChange).
	node       string
	onChange   atomic.Pointer[func(topic string)]
	stopListen context.CancelFunc
	listenDone chan struct{}
}

// Version counts the write transactions committed to the database. It
// changes before any caller of a Write learns that its write committed, so
// a result computed in a Read begun after loading Version n describes the
// data of version n or later: callers may cache derived results (counts)
// under it. On an engine that several processes share (ReadVersion) it
// counts the transactions of all of them and costs a round trip; when the
// database cannot be read it returns a number no earlier call returned.
// On a database file it counts this process's transactions, and one more
// within otherWritersPoll of any other process committing.
func (s *Store) Version() uint64 {
	query := s.dialect.ReadVersion()
	if query == "" {
		return s.version.Load()
	}
	v, err := s.polls.read(func() (uint64, error) { return s.readVersion(query) })
	if err != nil {
		return 1<<63 | s.version.Add(1)
	}
	return v
}

// versionPolls lets concurrent callers of Version share one query. A
// caller may only take the answer of a query sent after it arrived (an
// earlier one could miss a write that was answered before the caller
// began), so a caller that finds a query in flight queues for the next
// one, which any number of callers then share: at most one query runs
// and one waits, however many requests ask.
type versionPolls struct {
	mu      sync.Mutex
	running *versionPoll // sent, not yet answered
	next    *versionPoll // to be sent when running is answered
}

type versionPoll struct {
	done chan struct{}
	v    uint64
	err  error
}

// read returns the answer of a call of query sent after read was called.
func (p *versionPolls) read(query func() (uint64, error)) (uint64, error) {
	p.mu.Lock()
	if c := p.next; c != nil {
		p.mu.Unlock()
		<-c.done
		return c.v, c.err
	}
	c := &versionPoll{done: make(chan struct{})}
	prev := p.running
	if prev == nil {
		p.running = c
	} else {
		p.next = c
	}
	p.mu.Unlock()
	if prev != nil {
		<-prev.done
		p.mu.Lock()
		p.next = nil
		p.running = c
		p.mu.Unlock()
	}
	c.v, c.err = query()
	p.mu.Lock()
	p.running = nil
	p.mu.Unlock()
	close(c.done)
	return c.v, c.err
}

// readVersion runs query, outside any transaction, on a read connection.
func (s *Store) readVersion(query string) (uint64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool := s.readers
	if s.versions != nil {
		pool = s.versions
	}
	var cn *conn
	select {
	case cn = <-pool:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.closing:
		return 0, errClosed
	}
	var v int64
	err := cn.open(ctx)
	if err == nil {
		var rows *sql.Rows
		var release func()
		rows, release, err = cn.query(ctx, query)
		if err == nil {
			if rows.Next() {
				err = rows.Scan(&v)
			}
			rows.Close()
			release()
		}
	}
	s.checkConn(cn, err)
	pool <- cn
	return uint64(v), err
}

// Open opens (creating if needed) the database that cfg describes, runs the
// system migrations and starts the writer.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	d := cfg.Dialect
	if d == nil {
		return nil, errors.New("sqlstore: no dialect")
	}
	syncMode := strings.ToUpper(cfg.Synchronous)
	switch syncMode {
	case "":
		syncMode = "FULL"
	case "FULL", "NORMAL", "OFF", "EXTRA":
	default:
		return nil, fmt.Errorf("sqlstore: invalid synchronous mode %q", cfg.Synchronous)
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	wdsn, err := d.DataSource(cfg.Dir, cfg.DSN, syncMode, false)
	if err != nil {
		return nil, err
	}
	rdsn, err := d.DataSource(cfg.Dir, cfg.DSN, syncMode, true)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dialect:      d,
		writes:       make(chan *writeReq),
		closing:      make(chan struct{}),
		loopDone:     make(chan struct{}),
		node:         underhood.RandomString(12),
		maxQueryTime: cfg.MaxQueryTime,
	}
	switch {
	case s.maxQueryTime == 0:
		s.maxQueryTime = DefaultMaxQueryTime
	case s.maxQueryTime < 0:
		s.maxQueryTime = 0
	}
	fail := func(err error) (*Store, error) {
		s.closeConns()
		return nil, err
	}
	if s.db, err = sql.Open(d.DriverName(), wdsn); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	s.db.SetMaxOpenConns(1)
	s.db.SetMaxIdleConns(1)
	s.db.SetConnMaxLifetime(0)
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("open database: %w", err))
	}
	s.writer = &conn{c: c, db: s.db, reload: d.ReloadStats()}

	// Migrate before opening readers, so they see the system tables.
	if err := s.migrateSystem(ctx); err != nil {
		return fail(err)
	}
	s.optimize(s.writer)

	nc := d.ClientPool(cfg.DSN)
	if nc <= 0 {
		nc = max(4, runtime.GOMAXPROCS(0)*2)
	}
	n := systemReaders
	if s.rdb, err = sql.Open(d.DriverName(), rdsn); err != nil {
		return fail(fmt.Errorf("open database: %w", err))
	}
	nv := 0
	if d.JoinStatements() && d.ReadVersion() != "" {
		nv = 2
	}
	s.rdb.SetMaxOpenConns(n + nc + nv)
	s.rdb.SetMaxIdleConns(n + nc + nv)
	s.rdb.SetConnMaxLifetime(0)
	nh := min(nc, max(4, 2*runtime.GOMAXPROCS(0)))
	s.hot = make(chan *conn, nh)
	s.clients = make(chan *conn, nc-nh)
	setup := d.ClientSetup(s.maxQueryTime)
	for i := range nc {
		// Connected on first use: most are never needed.
		cn := &conn{db: s.rdb, reload: d.ReloadStats(), setup: setup}
		if i < nh {
			cn.home = s.hot
		} else {
			cn.home = s.clients
		}
		cn.home <- cn
		s.nclient++
	}
	s.readers = make(chan *conn, n)
	for range n {
		c, err := s.rdb.Conn(ctx)
		if err != nil {
			return fail(fmt.Errorf("open read connection: %w", err))
		}
		s.readers <- &conn{c: c, db: s.rdb, reload: d.ReloadStats()}
		s.nread++
	}
	if nv > 0 {
		s.versions = make(chan *conn, nv)
		for range nv {
			c, err := s.rdb.Conn(ctx)
			if err != nil {
				return fail(fmt.Errorf("open read connection: %w", err))
			}
			s.versions <- &conn{c: c, db: s.rdb, reload: d.ReloadStats()}
			s.nversion++
		}
	}
	if l, ok := d.(Listener); ok {
		lctx, cancel := context.WithCancel(context.Background())
		s.stopListen, s.listenDone = cancel, make(chan struct{})
		go func() {
			defer close(s.listenDone)
			l.Listen(lctx, wdsn, s.heard)
		}()
	}
	go s.writeLoop()
	return s, nil
}

// Change topics of OnChange.
const (
	TopicSchema = "schema" // collections were created, changed or deleted
	TopicParams = "params" // a value of _params changed
	TopicAll    = ""       // anything may have changed (notices were missed)
)

// OnChange registers fn to be told, on a goroutine of the store, when
// another process sharing the database has committed a change of the
// given topic. Only server engines have other processes; fn replaces any
// earlier one.
func (s *Store) OnChange(fn func(topic string)) { s.onChange.Store(&fn) }

// Shared reports whether other processes may share the database (a server
// engine), so that a change they commit can be here before its notice.
func (s *Store) Shared() bool { return s.stopListen != nil }

// heard handles a change notice "node topic".
func (s *Store) heard(payload string) {
	node, topic, _ := strings.Cut(payload, " ")
	if payload != "" && node == s.node {
		return // our own change
	}
	s.schemaGen.Add(1) // cached statements may name old columns
	if fn := s.onChange.Load(); fn != nil {
		(*fn)(topic)
	}
}

// notify tells the other processes of a change of topic when q's
// transaction commits.
func (s *Store) notify(ctx context.Context, q Querier, topic string) error {
	l, ok := s.dialect.(Listener)
	if !ok {
		return nil
	}
	if _, err := q.ExecContext(ctx, l.NotifyStatement(), s.node+" "+topic); err != nil {
		return fmt.Errorf("notify %s change: %w", topic, err)
	}
	return nil
}

// Close stops the writer after the batch it is running, waits for running
// reads and closes the database. Calls after Close fail.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	close(s.closing)
	<-s.loopDone
	if s.stopListen != nil {
		s.stopListen()
		<-s.listenDone
	}
	return s.closeConns()
}

// closeConns closes every connection and both pools.
func (s *Store) closeConns() error {
	var errs []error
	if s.writer != nil {
		errs = append(errs, ignoreBroken(s.dialect, s.writer.close()))
	}
	for ; s.nread > 0; s.nread-- {
		errs = append(errs, ignoreBroken(s.dialect, (<-s.readers).close()))
	}
	for ; s.nclient > 0; s.nclient-- {
		var cn *conn
		select {
		case cn = <-s.hot:
		case cn = <-s.clients:
		}
		errs = append(errs, ignoreBroken(s.dialect, cn.close()))
	}
	for ; s.nversion > 0; s.nversion-- {
		errs = append(errs, ignoreBroken(s.dialect, (<-s.versions).close()))
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// Dialect returns the dialect the store was opened with.
func (s *Store) Dialect() Dialect { return s.dialect }

// schemaChanged drops cached statements after DDL: the writer's at once,
// the readers' when they are next used.
func (s *Store) schemaChanged(q Querier) {
	s.schemaGen.Add(1)
	if cq, ok := q.(*querier); ok {
		cq.cn.clearStmts()
	}
}

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

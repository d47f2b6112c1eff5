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
	// the client pool before its first transaction: a bound on its memory
	// (hot: one of the few connections handed out first, which serve
	// ordinary load; the others serve only when those are all busy), and,
	// when maxQueryTime > 0 and the engine can, the time limit of each of
	// its statements.
	ClientSetup(maxQueryTime time.Duration, hot bool) []string
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
	hotSetup, coldSetup := d.ClientSetup(s.maxQueryTime, true), d.ClientSetup(s.maxQueryTime, false)
	for i := range nc {
		// Connected on first use: most are never needed.
		cn := &conn{db: s.rdb, reload: d.ReloadStats(), setup: coldSetup, home: s.clients}
		if i < nh {
			cn.setup, cn.home = hotSetup, s.hot
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

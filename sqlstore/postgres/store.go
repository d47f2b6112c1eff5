package postgres

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/underhood/underhood"
)

// This file is the storage side of the dialect (sqlstore.Dialect):
// connection settings, column types, conversions and error classification.

// rowIDColumn is the hidden identity column of every table, which keeps
// the insertion order SQLite's rowid gives (sort=@rowid, and the order of
// _collections).
const rowIDColumn = "_rowid_"

// Connection parameters Underhood sets unless the DSN sets them.
const (
	defaultStatementTimeout = "30s"
	defaultConnectTimeout   = "5" // seconds: a node fails fast while the database is unreachable
	defaultLockTimeout      = "10s"
)

// poolParam is the DSN parameter that sets how many read connections a
// node keeps (as pgxpool names it); it is not sent to the server.
const poolParam = "pool_max_conns"

// DriverName returns "pgx", the database/sql driver of pgx/v5/stdlib.
func (Dialect) DriverName() string { return "pgx" }

// DataSource returns dsn (a postgres:// URL or key=value string) with
// Underhood's defaults for what it does not set: statement_timeout 30s,
// lock_timeout 10s, connect_timeout 5s and application_name underhood.
// Readers get default_transaction_read_only; synchronous "OFF" sets
// synchronous_commit off. pool_max_conns is removed (see ClientPool).
func (Dialect) DataSource(dir, dsn, synchronous string, readOnly bool) (string, error) {
	if dsn == "" {
		return "", errors.New("postgres: no connection string")
	}
	params := map[string]string{
		"statement_timeout": defaultStatementTimeout,
		"lock_timeout":      defaultLockTimeout,
		"connect_timeout":   defaultConnectTimeout,
		"application_name":  "underhood",
	}
	if readOnly {
		params["default_transaction_read_only"] = "on"
		// Read connections wait between reads inside a BEGIN that holds
		// no snapshot (sqlstore.Store.Read); a server-wide timeout of
		// idle transactions must not close them.
		params["idle_in_transaction_session_timeout"] = "0"
	}
	switch synchronous {
	case "OFF":
		params["synchronous_commit"] = "off"
	case "FULL", "NORMAL", "EXTRA":
	default:
		return "", fmt.Errorf("postgres: invalid synchronous mode %q", synchronous)
	}
	return withParams(dsn, params)
}

// withParams adds params that dsn does not set and removes poolParam.
func withParams(dsn string, params map[string]string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("postgres: invalid connection URL: %w", redactURLError(err))
		}
		q := u.Query()
		q.Del(poolParam)
		for k, v := range params {
			if q.Get(k) == "" {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	set := map[string]bool{}
	var kept []string
	for _, kv := range strings.Fields(dsn) {
		k, _, _ := strings.Cut(kv, "=")
		if k == poolParam {
			continue
		}
		set[k] = true
		kept = append(kept, kv)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		if !set[k] {
			kept = append(kept, k+"="+params[k])
		}
	}
	return strings.Join(kept, " "), nil
}

// redactURLError drops the URL (and so any password) from a parse error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// ClientPool returns pool_max_conns from dsn, else max(16, 4×GOMAXPROCS):
// enough connections that a few costly client queries, each ended by
// statement_timeout, leave room for the others, and few enough that
// several nodes share a server's default max_connections (100). The
// store opens them as they are needed.
func (Dialect) ClientPool(dsn string) int {
	if v := dsnParam(dsn, poolParam); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return max(16, 4*runtime.GOMAXPROCS(0))
}

// ClientSetup sets the connection's statement_timeout to maxQueryTime
// (when > 0): the server ends a statement past it with 57014, and the
// connection stays usable.
func (Dialect) ClientSetup(maxQueryTime time.Duration, _ bool) []string {
	if maxQueryTime <= 0 {
		return nil
	}
	return []string{fmt.Sprintf("SET statement_timeout = %d", max(1, maxQueryTime.Milliseconds()))}
}

// Materialize returns query: the server ends a statement at its
// statement_timeout whatever row it is at.
func (Dialect) Materialize(query string) string { return query }

// dsnParam reads one parameter of a URL or key=value dsn.
func dsnParam(dsn, key string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return ""
		}
		return u.Query().Get(key)
	}
	for _, kv := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// BeginWrite is a plain BEGIN (read committed); LockWrites follows it.
func (Dialect) BeginWrite() string { return "BEGIN" }

// LockWrites makes the write transactions of all nodes take turns and
// counts them: it takes the row lock of the one row of _uh_version,
// which it increments. Each node already runs its writes one
// group-committed transaction at a time; the lock extends that to the
// cluster. Two reasons: the events of a collection get gapless sequence
// numbers inside the transaction that writes them (record's outbox), which
// concurrent transactions would contend for, and two transactions that
// each hold the rows of several group-committed writes could deadlock on
// each other's unique keys, failing writes that are valid. Reads are not
// affected and scale with nodes; the database's write throughput is that
// of one node's writer, which group commit keeps high. The count lets
// every node cache read results until any node writes (ReadVersion).
func (Dialect) LockWrites() string { return `UPDATE _uh_version SET v = v + 1 WHERE id = 1` }

// JoinStatements returns true: each statement is a round trip to the
// server, and BEGIN, SAVEPOINT, RELEASE and COMMIT can share one.
func (Dialect) JoinStatements() bool { return true }

// ReadVersion reads the count LockWrites keeps.
func (Dialect) ReadVersion() string { return `SELECT v FROM _uh_version WHERE id = 1` }

// BeginRead starts a read-only transaction on one snapshot.
func (Dialect) BeginRead() string { return "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" }

// schemaLockKey is the advisory lock that serialises schema changes and
// system migrations of every node on a database ("uhschema").
const schemaLockKey = 0x7568736368656d61

// LockSchema takes the schema lock until the transaction ends.
func (Dialect) LockSchema() string {
	return "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(schemaLockKey, 10) + ")"
}

// RebuildsTables returns false: columns are changed in place with ALTER
// TABLE.
func (Dialect) RebuildsTables() bool { return false }

// StrictViews returns true: a view depends on the columns it reads, so
// tables are changed with the views dropped and created again after.
func (Dialect) StrictViews() bool { return true }

// HiddenColumns is the identity column that keeps the insertion order,
// indexed: it is the order of lists without a sort.
func (Dialect) HiddenColumns() []string {
	return []string{quote(rowIDColumn) + " BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE"}
}

// SystemSchema returns the migrations of the system tables and of the SQL
// functions the filter language uses.
func (Dialect) SystemSchema() []string {
	return []string{
		`CREATE TABLE _collections (
			id      TEXT COLLATE "C" PRIMARY KEY NOT NULL,
			name    TEXT COLLATE "C" NOT NULL,
			type    TEXT DEFAULT 'base' NOT NULL,
			system  BOOLEAN DEFAULT FALSE NOT NULL,
			data    JSONB DEFAULT '{}' NOT NULL,
			created TEXT COLLATE "C" DEFAULT '' NOT NULL,
			updated TEXT COLLATE "C" DEFAULT '' NOT NULL,
			"_rowid_" BIGINT GENERATED ALWAYS AS IDENTITY
		);
		CREATE UNIQUE INDEX _collections_name ON _collections (lower(name))`,
		`CREATE TABLE _params (
			key     TEXT COLLATE "C" PRIMARY KEY NOT NULL,
			value   JSONB DEFAULT NULL,
			created TEXT COLLATE "C" DEFAULT '' NOT NULL,
			updated TEXT COLLATE "C" DEFAULT '' NOT NULL
		)`,
		functions,
		`CREATE TABLE _uh_version (id INTEGER PRIMARY KEY, v BIGINT NOT NULL);
		INSERT INTO _uh_version (id, v) VALUES (1, 0)`,
		// The functions again (CREATE OR REPLACE), for databases made
		// before strftime knew %G %V %g %U %W %k %l %I %p %P and %J. A
		// later change of the functions appends them once more.
		functions,
	}
}

// ColumnDefinition returns the column type of f: text in the "C"
// collation, double precision, boolean, and jsonb for JSON, geo points and
// multi-value fields.
func (Dialect) ColumnDefinition(f *underhood.Field) string {
	if f.Name == "id" && f.Type == underhood.FieldText {
		return `TEXT COLLATE "C" PRIMARY KEY DEFAULT ('r' || substr(md5(random()::text), 1, 14)) NOT NULL`
	}
	switch f.Storage() {
	case underhood.StoredNumber:
		return `DOUBLE PRECISION DEFAULT 0 NOT NULL`
	case underhood.StoredBool:
		return `BOOLEAN DEFAULT FALSE NOT NULL`
	case underhood.StoredMulti:
		return `JSONB DEFAULT '[]' NOT NULL`
	case underhood.StoredJSON:
		return `JSONB DEFAULT NULL`
	case underhood.StoredGeo:
		return `JSONB DEFAULT '{"lon":0,"lat":0}' NOT NULL`
	}
	return `TEXT COLLATE "C" DEFAULT '' NOT NULL`
}

// ConvertColumn returns an expression converting expr from the stored form
// of field from to that of field to, as the SQLite dialect does: most
// pairs go through text.
func (Dialect) ConvertColumn(from, to *underhood.Field, expr string) string {
	fk, tk := from.Storage(), to.Storage()
	if fk == tk {
		return expr
	}
	switch {
	case fk == underhood.StoredNumber && tk == underhood.StoredBool:
		return `(` + expr + ` <> 0)`
	case fk == underhood.StoredBool && tk == underhood.StoredNumber:
		return `(CASE WHEN ` + expr + ` THEN 1 ELSE 0 END)`
	case fk == underhood.StoredNumber && tk == underhood.StoredJSON:
		return `to_jsonb(` + expr + `)`
	case fk == underhood.StoredBool && tk == underhood.StoredJSON:
		return `to_jsonb(` + expr + `)`
	case fk == underhood.StoredMulti && tk == underhood.StoredJSON:
		return expr
	}
	return convertFromText(tk, convertToText(fk, expr))
}

// convertToText converts expr of kind k to text (never NULL).
func convertToText(k underhood.Storage, expr string) string {
	switch k {
	case underhood.StoredNumber:
		return `uh_num_text(` + expr + `)`
	case underhood.StoredBool:
		return `(CASE WHEN ` + expr + ` THEN 'true' ELSE 'false' END)`
	case underhood.StoredMulti:
		return `COALESCE(uh_any_text(uh_norm(` + expr + ` -> 0)), '')`
	case underhood.StoredJSON:
		return `COALESCE(CASE WHEN jsonb_typeof(` + expr + `) = 'string' THEN ` + expr + ` #>> '{}' ELSE uh_json_text(` + expr + `) END, '')`
	case underhood.StoredGeo:
		return `uh_json_text(` + expr + `)`
	}
	return expr
}

// convertFromText converts text expr to kind k.
func convertFromText(k underhood.Storage, expr string) string {
	switch k {
	case underhood.StoredNumber:
		return `uh_cast_num(` + expr + `)`
	case underhood.StoredBool:
		return `(lower(btrim(` + expr + `)) IN ('true', 'yes', 'on') OR uh_cast_num(` + expr + `) <> 0)`
	case underhood.StoredMulti:
		return `(CASE WHEN ` + expr + ` = '' THEN '[]'::jsonb WHEN jsonb_typeof(uh_try_jsonb(` + expr + `)) = 'array' ` +
			`THEN (SELECT COALESCE(jsonb_agg(COALESCE(uh_any_text(uh_norm(e)), '')), '[]'::jsonb) FROM jsonb_array_elements(uh_try_jsonb(` + expr + `)) AS e) ` +
			`ELSE jsonb_build_array(` + expr + `) END)`
	case underhood.StoredJSON:
		return `(CASE WHEN ` + expr + ` = '' THEN NULL ELSE COALESCE(uh_try_jsonb(` + expr + `), to_jsonb(` + expr + `)) END)`
	case underhood.StoredGeo:
		return `(CASE WHEN jsonb_typeof(uh_try_jsonb(` + expr + `)) = 'object' THEN jsonb_build_object(` +
			`'lon', COALESCE(uh_any_num(uh_norm(uh_try_jsonb(` + expr + `) -> 'lon')), 0), ` +
			`'lat', COALESCE(uh_any_num(uh_norm(uh_try_jsonb(` + expr + `) -> 'lat')), 0)) ` +
			`ELSE '{"lon":0,"lat":0}'::jsonb END)`
	}
	return expr
}

// RenameTable renames a table; views that read it follow it.
func (Dialect) RenameTable(from, to string) []string {
	return []string{`ALTER TABLE ` + quote(from) + ` RENAME TO ` + quote(to)}
}

// Optimize returns "": autovacuum keeps the planner's statistics.
func (Dialect) Optimize() string { return "" }

// DataVersion returns "": the nodes sharing the database write in turns,
// and a sequence counted in memory would cost a round trip to check in
// every transaction, where computing its number in SQL costs none.
func (Dialect) DataVersion() string { return "" }

// StatsDigest returns "": there is no Optimize to follow.
func (Dialect) StatsDigest() string { return "" }

// ReloadStats returns "": every statement is planned with the statistics
// of the moment.
func (Dialect) ReloadStats() string { return "" }

// LimitOffset renders LIMIT and OFFSET.
func (Dialect) LimitOffset(limit, offset int) string {
	var b strings.Builder
	if limit > 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(limit))
	}
	if offset > 0 {
		b.WriteString(" OFFSET " + strconv.Itoa(offset))
	}
	return b.String()
}

// Collate renders a column of an index with a SQLite collation: NOCASE
// becomes lower(expr), BINARY the "C" collation, RTRIM rtrim(expr).
func (Dialect) Collate(expr, collation string) string {
	switch strings.ToUpper(collation) {
	case "NOCASE":
		return "lower(" + expr + ")"
	case "BINARY":
		return expr + ` COLLATE "C"`
	case "RTRIM":
		return "rtrim(" + expr + ")"
	}
	return expr + " COLLATE " + quote(collation)
}

// UniqueViolation recognises unique_violation (23505) and reads the
// columns from its detail, `Key (slug, "userId")=(…) already exists.`, or
// names the index when the key is an expression.
func (Dialect) UniqueViolation(err error) (columns []string, index string, ok bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return nil, "", false
	}
	if cols, ok := keyColumns(pe.Detail); ok {
		return cols, "", true
	}
	return nil, pe.ConstraintName, true
}

// keyColumns parses the column list of a unique violation's detail.
func keyColumns(detail string) ([]string, bool) {
	rest, ok := strings.CutPrefix(detail, "Key (")
	if !ok {
		return nil, false
	}
	list, _, ok := strings.Cut(rest, ")=(")
	if !ok {
		return nil, false
	}
	var cols []string
	for _, part := range strings.Split(list, ", ") {
		if len(part) >= 2 && part[0] == '"' && part[len(part)-1] == '"' {
			cols = append(cols, strings.ReplaceAll(part[1:len(part)-1], `""`, `"`))
			continue
		}
		for _, c := range part {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return nil, false // an expression
			}
		}
		cols = append(cols, part)
	}
	return cols, len(cols) > 0
}

// TimedOut reports whether err is PostgreSQL cancelling a statement that
// ran past statement_timeout (57014) or waited past lock_timeout (55P03).
func (Dialect) TimedOut(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "57014" || pe.Code == "55P03")
}

// Unavailable reports whether err means the database cannot be reached or
// is shutting down, rather than that a statement failed.
func (Dialect) Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutdown, cannot connect now
			pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		pgconn.SafeToRetry(err):
		return true
	}
	return strings.Contains(err.Error(), "conn closed")
}

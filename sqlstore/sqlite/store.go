package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/underhood/underhood"
)

// This file is the storage side of the dialect (sqlstore.Dialect): opening
// the database, column types, conversions and error classification.

// DriverName returns "sqlite", the modernc.org/sqlite driver.
func (Dialect) DriverName() string { return "sqlite" }

// DataSource returns the DSN of <dir>/data.db: WAL journal, the given
// synchronous mode, a 10 s busy timeout and foreign keys off; readers are
// query_only. A non-empty dsn is used as the file name instead.
func (Dialect) DataSource(dir, dsn, synchronous string, readOnly bool) (string, error) {
	path := dsn
	if path == "" {
		if dir == "" {
			return "", errors.New("sqlite: no data directory")
		}
		path = filepath.Join(dir, "data.db")
	}
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("sqlite: database path %q must not contain '?' or '#'", path)
	}
	switch synchronous {
	case "FULL", "NORMAL", "OFF", "EXTRA":
	default:
		return "", fmt.Errorf("sqlite: invalid synchronous mode %q", synchronous)
	}
	params := []string{
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(" + synchronous + ")",
		"foreign_keys(off)",
	}
	if readOnly {
		params = append(params, "query_only(on)")
	}
	var b strings.Builder
	b.WriteString(path)
	for i, p := range params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString("_pragma=")
		b.WriteString(p)
	}
	return b.String(), nil
}

// clientPool is the number of connections of client reads. An embedded
// database has no server to protect, and a connection costs only its
// memory, so 64 let that many costly filters run to their time limit while
// other clients are still served. The store hands out a few of them first
// (its hot connections), so that in ordinary load the caches stay warm;
// the others serve only when those are all busy.
const clientPool = 64

// The page cache of each client connection: SQLite's default for the hot
// ones, and an eighth of it for the others. A connection's memory is
// mostly its caches once it has scanned a large table (about 4.5 MiB with
// the default, its temporary tables' included), and under the shared load
// benchmark's list_varied on a busy machine all 64 were in use: the peak
// RSS went from 133 MiB (8 connections) to 390-400 MiB, and with small
// caches on the cold ones to about 200 MiB. Pages evicted are read again
// from the operating system's cache.
const (
	hotCacheKiB  = 2000
	coldCacheKiB = 256
)

// ClientPool returns 64: see clientPool.
func (Dialect) ClientPool(string) int { return clientPool }

// ClientSetup bounds the connection's page caches, of its database and of
// its temporary tables (hotCacheKiB, coldCacheKiB). SQLite has no
// statement timeout of its own: the store interrupts a statement through
// its context.
func (Dialect) ClientSetup(_ time.Duration, hot bool) []string {
	kib := coldCacheKiB
	if hot {
		kib = hotCacheKiB
	}
	return []string{fmt.Sprintf("PRAGMA cache_size = -%d", kib), fmt.Sprintf("PRAGMA temp.cache_size = -%d", kib)}
}

// Materialize wraps query in a MATERIALIZED common table expression: the
// driver interrupts a statement whose context ends only while it
// computes its first row, so rows that a costly filter yields one by one
// would otherwise run on past any time limit. The table is filled in the
// order of query's ORDER BY and read back in that order.
func (Dialect) Materialize(query string) string {
	return `WITH "_uh_rows" AS MATERIALIZED (` + query + `) SELECT * FROM "_uh_rows"`
}

// BeginWrite returns "BEGIN IMMEDIATE", which takes the write lock at once
// instead of failing to upgrade a read lock later.
func (Dialect) BeginWrite() string { return "BEGIN IMMEDIATE" }

// BeginRead returns "BEGIN": a read transaction of SQLite sees one
// snapshot.
func (Dialect) BeginRead() string { return "BEGIN" }

// LockSchema returns "": BEGIN IMMEDIATE already excludes other writers.
func (Dialect) LockSchema() string { return "" }

// RebuildsTables returns true: SQLite's ALTER TABLE cannot change a
// column's type.
func (Dialect) RebuildsTables() bool { return true }

// StrictViews returns false: a view names tables and columns by name and
// is checked only when used.
func (Dialect) StrictViews() bool { return false }

// HiddenColumns returns none: every table has a rowid.
func (Dialect) HiddenColumns() []string { return nil }

// Collate is SQLite's own COLLATE clause.
func (Dialect) Collate(expr, collation string) string { return expr + " COLLATE " + collation }

// Unavailable returns false: an embedded database is never out of reach.
func (Dialect) Unavailable(error) bool { return false }

// TimedOut returns false: SQLite sets no statement timeouts (one writer
// in the process, readers that never wait for it).
func (Dialect) TimedOut(error) bool { return false }

// LockWrites returns "": BEGIN IMMEDIATE takes the write lock.
func (Dialect) LockWrites() string { return "" }

// JoinStatements returns false: SQLite runs in the process, and its
// prepared statements are cheaper one at a time.
func (Dialect) JoinStatements() bool { return false }

// ReadVersion returns "": one process writes, and counts its commits.
func (Dialect) ReadVersion() string { return "" }

// SystemSchema returns the migrations of the system tables.
func (Dialect) SystemSchema() []string {
	return []string{
		`CREATE TABLE _collections (
			id      TEXT PRIMARY KEY NOT NULL,
			name    TEXT UNIQUE NOT NULL COLLATE NOCASE,
			type    TEXT DEFAULT 'base' NOT NULL,
			system  BOOLEAN DEFAULT FALSE NOT NULL,
			data    JSON DEFAULT '{}' NOT NULL,
			created TEXT DEFAULT '' NOT NULL,
			updated TEXT DEFAULT '' NOT NULL
		)`,
		`CREATE TABLE _params (
			key     TEXT PRIMARY KEY NOT NULL,
			value   JSON DEFAULT NULL,
			created TEXT DEFAULT '' NOT NULL,
			updated TEXT DEFAULT '' NOT NULL
		)`,
	}
}

// ColumnDefinition returns the column type of f, as in the storage layout.
func (Dialect) ColumnDefinition(f *underhood.Field) string {
	if f.Name == "id" && f.Type == underhood.FieldText {
		return `TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL`
	}
	switch f.Storage() {
	case underhood.StoredNumber:
		return `NUMERIC DEFAULT 0 NOT NULL`
	case underhood.StoredBool:
		return `BOOLEAN DEFAULT FALSE NOT NULL`
	case underhood.StoredMulti:
		return `JSON DEFAULT '[]' NOT NULL`
	case underhood.StoredJSON:
		return `JSON DEFAULT NULL`
	case underhood.StoredGeo:
		return `JSON DEFAULT '{"lon":0,"lat":0}' NOT NULL`
	}
	return `TEXT DEFAULT '' NOT NULL`
}

// ConvertColumn returns an expression converting expr from the stored form
// of field from to that of field to. Most pairs go through text: a number
// becomes its decimal text, a multi value its first element, a JSON string
// its content; text becomes a number by CAST, a bool when it reads as true,
// a one-element array (or the array it spells), JSON (itself when valid,
// else a JSON string) or a geo point (when it is a JSON object with lon/lat).
func (Dialect) ConvertColumn(from, to *underhood.Field, expr string) string {
	fk, tk := from.Storage(), to.Storage()
	if fk == tk {
		return expr
	}
	switch {
	case fk == underhood.StoredNumber && tk == underhood.StoredBool:
		return `(CASE WHEN ` + expr + ` <> 0 THEN 1 ELSE 0 END)`
	case fk == underhood.StoredBool && tk == underhood.StoredNumber:
		return `(CASE WHEN ` + expr + ` THEN 1 ELSE 0 END)`
	case fk == underhood.StoredNumber && tk == underhood.StoredJSON:
		return `json_quote(` + expr + `)`
	case fk == underhood.StoredBool && tk == underhood.StoredJSON:
		return `(CASE WHEN ` + expr + ` THEN 'true' ELSE 'false' END)`
	case fk == underhood.StoredMulti && tk == underhood.StoredJSON:
		return `(CASE WHEN json_valid(` + expr + `) THEN ` + expr + ` ELSE '[]' END)`
	}
	return convertFromText(tk, convertToText(fk, expr))
}

// convertToText converts expr of kind k to text (never NULL).
func convertToText(k underhood.Storage, expr string) string {
	switch k {
	case underhood.StoredNumber:
		return `CAST(` + expr + ` AS TEXT)`
	case underhood.StoredBool:
		return `(CASE WHEN ` + expr + ` THEN 'true' ELSE 'false' END)`
	case underhood.StoredMulti:
		return `COALESCE((SELECT CAST(value AS TEXT) FROM json_each(CASE WHEN json_valid(` + expr + `) AND json_type(` + expr + `) = 'array' THEN ` + expr + ` ELSE '[]' END) ORDER BY key LIMIT 1), '')`
	case underhood.StoredJSON:
		return `(CASE WHEN ` + expr + ` IS NULL THEN '' WHEN json_valid(` + expr + `) AND json_type(` + expr + `) = 'text' THEN json_extract(` + expr + `, '$') ELSE CAST(` + expr + ` AS TEXT) END)`
	case underhood.StoredGeo:
		return `CAST(` + expr + ` AS TEXT)`
	}
	return expr
}

// convertFromText converts text expr to kind k.
func convertFromText(k underhood.Storage, expr string) string {
	switch k {
	case underhood.StoredNumber:
		return `CAST(` + expr + ` AS NUMERIC)`
	case underhood.StoredBool:
		return `(CASE WHEN lower(trim(` + expr + `)) IN ('true', 'yes', 'on') OR CAST(` + expr + ` AS NUMERIC) <> 0 THEN 1 ELSE 0 END)`
	case underhood.StoredMulti:
		return `(CASE WHEN ` + expr + ` = '' THEN '[]' WHEN json_valid(` + expr + `) AND json_type(` + expr + `) = 'array' THEN (SELECT json_group_array(CAST(value AS TEXT)) FROM json_each(` + expr + `)) ELSE json_array(` + expr + `) END)`
	case underhood.StoredJSON:
		return `(CASE WHEN ` + expr + ` = '' THEN NULL WHEN json_valid(` + expr + `) THEN json(` + expr + `) ELSE json_quote(` + expr + `) END)`
	case underhood.StoredGeo:
		return `(CASE WHEN json_valid(` + expr + `) AND json_type(` + expr + `) = 'object' THEN json_object('lon', COALESCE(json_extract(` + expr + `, '$.lon'), 0) + 0, 'lat', COALESCE(json_extract(` + expr + `, '$.lat'), 0) + 0) ELSE '{"lon":0,"lat":0}' END)`
	}
	return expr
}

// RenameTable renames a table with legacy_alter_table on, so that SQLite
// neither rewrites nor checks the views that name it: a view is defined by
// its collection's stored query, and one broken view must not block the
// migration of another collection.
func (Dialect) RenameTable(from, to string) []string {
	return []string{
		`PRAGMA legacy_alter_table = ON`,
		`ALTER TABLE ` + ddlQuote(from) + ` RENAME TO ` + ddlQuote(to),
		`PRAGMA legacy_alter_table = OFF`,
	}
}

// Optimize runs PRAGMA optimize over every table (mask 0x10002), with
// analysis_limit bounding the rows ANALYZE reads per index.
func (Dialect) Optimize() string { return "PRAGMA analysis_limit=1000; PRAGMA optimize=0x10002" }

// DataVersion returns "PRAGMA data_version", which changes when another
// connection commits: the store's own readers never do, so a change means
// another process wrote to the database.
func (Dialect) DataVersion() string { return "PRAGMA data_version" }

// StatsDigest returns the query of every row of sqlite_stat1, which
// ANALYZE (run by Optimize) rewrites. Before the first ANALYZE the table
// does not exist and the query fails, which reads as "no statistics".
func (Dialect) StatsDigest() string {
	return "SELECT group_concat(tbl || ' ' || ifnull(idx, '') || ' ' || stat, ';') FROM sqlite_stat1"
}

// ReloadStats returns "PRAGMA writable_schema=RESET", which makes the
// connection read the schema again, and with it the statistics, without
// writing anything: a connection otherwise plans with the statistics it
// loaded with the schema until the schema changes, as ANALYZE does not
// change it.
func (Dialect) ReloadStats() string { return "PRAGMA writable_schema=RESET" }

// LimitOffset renders SQLite's LIMIT/OFFSET (an OFFSET needs a LIMIT: -1).
func (Dialect) LimitOffset(limit, offset int) string {
	switch {
	case limit > 0 && offset > 0:
		return fmt.Sprintf(" LIMIT %d OFFSET %d", limit, offset)
	case limit > 0:
		return fmt.Sprintf(" LIMIT %d", limit)
	case offset > 0:
		return fmt.Sprintf(" LIMIT -1 OFFSET %d", offset)
	}
	return ""
}

// UniqueViolation recognises SQLITE_CONSTRAINT_UNIQUE and _PRIMARYKEY and
// reads the columns from "UNIQUE constraint failed: posts.slug, posts.x"
// (or the index from "… failed: index 'idx_x'", for expression indexes).
func (Dialect) UniqueViolation(err error) (columns []string, index string, ok bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil, "", false
	}
	if se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE && se.Code() != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return nil, "", false
	}
	msg := se.Error()
	const marker = "UNIQUE constraint failed: "
	i := strings.Index(msg, marker)
	if i < 0 {
		return nil, "", true
	}
	rest := msg[i+len(marker):]
	if j := strings.LastIndex(rest, " ("); j >= 0 { // the driver's " (2067)" suffix
		rest = rest[:j]
	}
	if strings.HasPrefix(rest, "index '") {
		return nil, strings.TrimSuffix(strings.TrimPrefix(rest, "index '"), "'"), true
	}
	for _, part := range strings.Split(rest, ", ") {
		if k := strings.LastIndexByte(part, '.'); k >= 0 {
			part = part[k+1:]
		}
		columns = append(columns, part)
	}
	return columns, "", true
}

// ddlQuote double-quotes an identifier for the DDL written here.
func ddlQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

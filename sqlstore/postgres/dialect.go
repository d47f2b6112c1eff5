// Package postgres is the PostgreSQL dialect of sqlstore: column types,
// DDL, connection settings and the SQL shapes of the filter language on
// PostgreSQL (through github.com/jackc/pgx/v5 and its database/sql driver),
// and the LISTEN connection that tells a node about schema and settings
// changes made by other nodes on the same database.
//
// The filter language keeps SQLite's semantics on PostgreSQL: comparisons
// of values whose types differ, or are known only at run time, go through
// SQL functions (functions.go) that apply SQLite's affinity and ordering
// rules; comparisons of values of one static type are plain SQL, so
// indexes are used. Text columns use the "C" collation, so text compares
// and sorts byte by byte as on SQLite.
package postgres

import (
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Dialect implements sqlstore.Dialect and filter.Dialect for PostgreSQL.
// The zero value is ready to use.
type Dialect struct{}

// Name returns "postgres".
func (Dialect) Name() string { return "postgres" }

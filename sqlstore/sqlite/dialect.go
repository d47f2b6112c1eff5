// Package sqlite is the SQLite dialect of sqlstore: column types, DDL and
// the SQL shapes of the filter language on SQLite (modernc.org/sqlite, pure
// Go, so the binary builds with CGO_ENABLED=0).
package sqlite

// Dialect implements sqlstore.Dialect and filter.Dialect for SQLite.
// The zero value is ready to use.
type Dialect struct{}

// Name returns "sqlite".
func (Dialect) Name() string { return "sqlite" }

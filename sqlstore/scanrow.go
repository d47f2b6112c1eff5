package sqlstore

import (
	"context"
	"database/sql"
)

// ScanRow runs query, which returns at most one row, through the
// connection's statement cache when q is one of the store's queriers, and
// scans that row into dest. It is sql.ErrNoRows when there is none. Hot
// paths that read a value back from a write (INSERT … RETURNING) use it
// instead of QueryRowContext, which prepares the statement every time.
func ScanRow(ctx context.Context, q Querier, query string, args []any, dest ...any) error {
	rows, release, err := queryRows(ctx, q, query, args...)
	if err != nil {
		return err
	}
	defer release()
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// ScanRows runs query through the connection's statement cache when q is
// one of the store's queriers and calls scan with each row it returns,
// for a query run again and again (the outbox relay's), which
// QueryContext would prepare every time. scan must not run query again.
func ScanRows(ctx context.Context, q Querier, query string, args []any, scan func(rows *sql.Rows) error) error {
	rows, release, err := queryRows(ctx, q, query, args...)
	if err != nil {
		return err
	}
	defer release()
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

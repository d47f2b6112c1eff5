// Package recordtest opens a record service for the tests of the packages
// built on it: a store of the given configuration and the service over
// it, both closed when the test ends.
package recordtest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// Open opens a store of cfg and a record service over it that logs to
// log (nil: nowhere); both are closed when tb ends.
func Open(tb testing.TB, cfg sqlstore.Config, log *slog.Logger) *record.Service {
	tb.Helper()
	records, _ := OpenStore(tb, cfg, log)
	return records
}

// OpenStore is Open for a test that also uses the store.
func OpenStore(tb testing.TB, cfg sqlstore.Config, log *slog.Logger) (*record.Service, *sqlstore.Store) {
	tb.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	records, err := record.New(ctx, store, log)
	if err != nil {
		tb.Fatal(err)
	}
	return records, store
}

package sqlite_test

import (
	"context"
	"testing"

	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestConformance runs the storage conformance suite on SQLite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) storetest.Open {
		dir := t.TempDir()
		return func(t testing.TB) *sqlstore.Store {
			t.Helper()
			s, err := sqlstore.Open(context.Background(), sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: dir})
			if err != nil {
				t.Fatalf("Open(%q) = %v", dir, err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

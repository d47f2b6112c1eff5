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
		return func(t testing.TB, adjust ...func(*sqlstore.Config)) *sqlstore.Store {
			t.Helper()
			cfg := sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: dir}
			for _, a := range adjust {
				a(&cfg)
			}
			s, err := sqlstore.Open(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Open(%q) = %v", dir, err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

package postgres_test

import (
	"context"
	"testing"

	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestConformance runs the storage conformance suite on PostgreSQL, each
// test in a schema of its own ($DATABASE_URL; skipped without it).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) storetest.Open {
		dsn := storetest.PostgresDSN(t)
		return func(t testing.TB, adjust ...func(*sqlstore.Config)) *sqlstore.Store {
			t.Helper()
			cfg := sqlstore.Config{Dialect: postgres.Dialect{}, DSN: dsn}
			for _, a := range adjust {
				a(&cfg)
			}
			s, err := sqlstore.Open(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

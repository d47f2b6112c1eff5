// Package storetest is the conformance suite of sqlstore's dialects: every
// engine runs the same tests of the Store (group commit, snapshots),
// collections (tables, migrations, indexes, views) and records through
// storetest.Run, so that the engines cannot drift apart. It also creates
// the throw-away PostgreSQL schemas that tests of any package use.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create and drop test schemas

	"github.com/underhood/underhood/sqlstore"
)

// Open opens a Store on one test database, with its configuration changed
// by adjust; opened again after the Store is closed, it opens the same
// database. The Store is closed when the test ends.
type Open func(t testing.TB, adjust ...func(*sqlstore.Config)) *sqlstore.Store

// NewDB creates a new, empty database for one test.
type NewDB func(t testing.TB) Open

// Run runs the conformance suite, each test on a database of its own.
func Run(t *testing.T, newDB NewDB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newDB NewDB)
	}{
		{"WriteConcurrentCommitsSurviveReopen", testWriteConcurrentCommitsSurviveReopen},
		{"WriteFailureRollsBackOnlyItsOwnChanges", testWriteFailureRollsBackOnlyItsOwnChanges},
		{"WritePanicIsRaisedInCallerOnly", testWritePanicIsRaisedInCallerOnly},
		{"WriteCancelledContext", testWriteCancelledContext},
		{"ReadIsReadOnlySnapshot", testReadIsReadOnlySnapshot},
		{"ClosedStoreRefusesCalls", testClosedStoreRefusesCalls},
		{"ReadPanicReturnsConnection", testReadPanicReturnsConnection},
		{"RecordRoundTrip", testRecordRoundTrip},
		{"InsertGeneratesID", testInsertGeneratesID},
		{"UpdateAndDeleteMissingRecord", testUpdateAndDeleteMissingRecord},
		{"FindAndCount", testFindAndCount},
		{"FindReusesStatementsSafely", testFindReusesStatementsSafely},
		{"UnsortedFindKeepsInsertionOrder", testUnsortedFindKeepsInsertionOrder},
		{"SaveCollectionMigratesColumns", testSaveCollectionMigratesColumns},
		{"RenameCollectionKeepsDataAndIndexes", testRenameCollectionKeepsDataAndIndexes},
		{"UniqueViolationNamesTheColumns", testUniqueViolationNamesTheColumns},
		{"IndexCollations", testIndexCollations},
		{"SaveCollectionRefusesBadIndexes", testSaveCollectionRefusesBadIndexes},
		{"IndexWithSemicolonInString", testIndexWithSemicolonInString},
		{"ViewCollection", testViewCollection},
		{"ViewFields", testViewFields},
		{"CollectionsAndParamsPersist", testCollectionsAndParamsPersist},
		{"MigrationsSurviveBrokenViews", testMigrationsSurviveBrokenViews},
		{"ViewsFollowTheirTables", testViewsFollowTheirTables},
		{"ArchiveRoundTrip", testArchiveRoundTrip},
		{"ClientReadTimeLimit", testClientReadTimeLimit},
		{"ClientReadsLeaveReadFree", testClientReadsLeaveReadFree},
		{"ClientReadKeepsOrder", testClientReadKeepsOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newDB)
		})
	}
}

// PostgresURL returns $DATABASE_URL, or skips the test when it is not set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Skip("DATABASE_URL is not set: skipping the PostgreSQL tests (.ci/run sets it to the local server)")
	}
	return u
}

// PostgresDSN creates an empty schema in the database at $DATABASE_URL
// and returns a connection string whose search_path is that schema, so
// that tests running at the same time never see each other's tables. The
// schema is dropped when the test ends. The test is skipped when
// DATABASE_URL is not set.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "uh_test_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", redact(base), err)
	}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	return WithParam(base, "search_path", schema)
}

// WithParam adds a parameter to a URL or key=value connection string.
func WithParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// redact hides the password of a connection URL.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return "the database"
}

// EngineEnv names the environment variable that selects the engine of the
// suites that run on one engine at a time (record, rest, …): "sqlite", the
// default, or "postgres". CI runs them once with each.
const EngineEnv = "UNDERHOOD_TEST_ENGINE"

// Config returns the configuration of a new, empty database for a test,
// on the engine $UNDERHOOD_TEST_ENGINE selects: sqlite (in a temporary
// directory) or postgres (in a schema of its own, see PostgresDSN). The
// dialects are passed in, as this package may not import them.
func Config(t testing.TB, sqlite, postgres sqlstore.Dialect) sqlstore.Config {
	t.Helper()
	switch e := os.Getenv(EngineEnv); e {
	case "", "sqlite":
		return sqlstore.Config{Dialect: sqlite, Dir: t.TempDir()}
	case "postgres":
		if os.Getenv("DATABASE_URL") == "" {
			t.Fatalf("%s=postgres needs DATABASE_URL", EngineEnv)
		}
		return sqlstore.Config{Dialect: postgres, DSN: PostgresDSN(t)}
	default:
		t.Fatalf("%s=%q: want sqlite or postgres", EngineEnv, e)
	}
	return sqlstore.Config{}
}

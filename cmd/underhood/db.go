package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// dbUsage documents --db for the flag sets of the commands.
const dbUsage = "database: a postgres:// URL (default: SQLite in --dir; also $UH_DB)"

// defaultDB is the --db default: $UH_DB, else "" (SQLite in --dir). Every
// variable of ours starts with UH_; UNDERHOOD_DB, its first name, is still
// read when UH_DB is not set, so existing deployments keep working.
func defaultDB(getenv func(string) string) string {
	return envOr(getenv, "UH_DB", envOr(getenv, "UNDERHOOD_DB", ""))
}

// isPostgres reports whether db names a PostgreSQL database: a URL, or a
// key=value connection string.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") ||
		strings.HasPrefix(db, "host=") || strings.HasPrefix(db, "dbname=")
}

// openStore opens the store of a command: PostgreSQL when db names one,
// else SQLite in dir (db may then be "" or "sqlite"); adjust sets the
// command's options.
func openStore(ctx context.Context, dir, db string, adjust ...func(*sqlstore.Config)) (*sqlstore.Store, error) {
	config := func(cfg sqlstore.Config) sqlstore.Config {
		for _, a := range adjust {
			a(&cfg)
		}
		return cfg
	}
	switch {
	case isPostgres(db):
		s, err := sqlstore.Open(ctx, config(sqlstore.Config{Dialect: postgres.Dialect{}, DSN: db}))
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", redactDB(db), err)
		}
		return s, nil
	case db == "" || db == "sqlite":
		// Whoever reads data.db can mint a superuser's token.
		if err := sqlite.PrepareDir(dir); err != nil {
			return nil, fmt.Errorf("open data directory %s: %w", dir, err)
		}
		s, err := sqlstore.Open(ctx, config(sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: dir}))
		if err != nil {
			return nil, fmt.Errorf("open data directory %s: %w", dir, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("--db %s: want a postgres:// URL, or nothing for SQLite in --dir", redactDB(db))
}

// dataLocation says where the data is, for the start banner.
func dataLocation(dir, db string) string {
	if isPostgres(db) {
		return redactDB(db)
	}
	return dir
}

// redactDB is db without its password, fit for logs and errors.
func redactDB(db string) string {
	if u, err := url.Parse(db); err == nil && u.Scheme != "" {
		u.RawQuery = ""
		return u.Redacted()
	}
	if strings.Contains(db, "=") {
		var kept []string
		for _, kv := range strings.Fields(db) {
			if k, _, _ := strings.Cut(kv, "="); k == "password" {
				kv = "password=xxxxx"
			}
			kept = append(kept, kv)
		}
		return strings.Join(kept, " ")
	}
	return "(unreadable database name)"
}

// warnWideDir logs a warning when the data directory is open to other
// users. It is left as it is, since the operator may share it on purpose
// (a backup user's group, a mounted volume): the database and the stored
// files in it are readable by the server's user only, but their names
// and sizes are not.
func warnWideDir(log *slog.Logger, dir string) {
	if mode := sqlite.WideDir(dir); mode != 0 {
		log.Warn("data directory is open to other users; its files are not, but their names are: chmod 700 it",
			"dir", dir, "mode", fmt.Sprintf("%#o", mode))
	}
}

package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The database file holds password hashes and the keys that sign every
// token: whoever reads it can mint a superuser's token. So the data
// directory and the database's files are private to the server's user.
const (
	// DirMode is the mode of a data directory the server creates.
	DirMode = 0o700
	// FileMode is the mode of data.db and of the -wal and -shm files
	// SQLite creates beside it.
	FileMode = 0o600
)

// PrepareDir creates the data directory dir (mode 0700) when it is
// missing, and in it data.db (0600) when that is missing: SQLite gives
// the -wal and -shm files it creates the mode of the database file, and
// an empty file is an empty database to it. Database files that exist
// with a wider mode (created by an earlier version, 0644) are restricted
// to 0600. The mode of an existing dir is left as it is (the operator
// chose it); WideDir tells whether to warn about it.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	db := filepath.Join(dir, "data.db")
	f, err := os.OpenFile(db, os.O_RDONLY|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	for _, p := range []string{db, db + "-wal", db + "-shm", db + "-journal"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database file: %w", err)
		}
		if mode := st.Mode().Perm(); mode&^FileMode != 0 {
			if err := os.Chmod(p, mode&FileMode); err != nil {
				return fmt.Errorf("restrict %s to its owner: %w", p, err)
			}
		}
	}
	return nil
}

// WideDir returns the mode of dir when its group or others may read,
// write or enter it, and 0 otherwise (or when it cannot be read).
func WideDir(dir string) fs.FileMode {
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return 0
	}
	return st.Mode().Perm()
}

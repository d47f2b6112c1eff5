package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// exportCmd writes the project (collections, settings, records with their
// password hashes) to a portable archive that import restores into either
// engine. A running server may share the database: the archive is one
// consistent snapshot.
func exportCmd(ctx context.Context, e env, dir, db string, args []string) (err error) {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&dir, "dir", dir, "data directory")
	fs.StringVar(&db, "db", db, dbUsage)
	out := fs.String("out", "", `archive file to write ("-" for stdout)`)
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(positional) > 0 {
		return fmt.Errorf("export: unexpected argument %q", positional[0])
	}
	if *out == "" {
		return errors.New("export: --out FILE is required")
	}
	store, err := openStore(ctx, dir, db)
	if err != nil {
		return err
	}
	defer store.Close()

	w, finish := e.stdout, func() error { return nil }
	if *out != "-" {
		// Written beside the target and renamed at the end, so that a
		// failed export never leaves a half archive under the name.
		f, err := os.CreateTemp(filepath.Dir(*out), ".export-*")
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer os.Remove(f.Name())
		w = f
		finish = func() error {
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), *out)
		}
	}
	stats, err := store.Export(ctx, w)
	if err != nil {
		return err
	}
	if err := finish(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if *out != "-" {
		fmt.Fprintf(e.stdout, "Exported %d collections, %d settings and %d records to %s.\n", stats.Collections, stats.Params, stats.Records, *out)
	}
	return nil
}

// importCmd restores an archive into an empty database.
func importCmd(ctx context.Context, e env, dir, db string, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&dir, "dir", dir, "data directory")
	fs.StringVar(&db, "db", db, dbUsage)
	in := fs.String("in", "", `archive file to read ("-" for stdin; or give it as the argument)`)
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case len(positional) == 1 && *in == "":
		*in = positional[0]
	case len(positional) > 0:
		return fmt.Errorf("import: unexpected argument %q", positional[len(positional)-1])
	}
	if *in == "" {
		return errors.New("import: the archive to read is required (import FILE, or --in FILE)")
	}
	var r io.Reader = e.stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		r = f
	}
	if r == nil {
		return errors.New("import: no standard input")
	}
	store, err := openStore(ctx, dir, db)
	if err != nil {
		return err
	}
	defer store.Close()
	stats, err := store.Import(ctx, r)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Imported %d collections, %d settings and %d records into %s.\n", stats.Collections, stats.Params, stats.Records, dataLocation(dir, db))
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Defaults of the serve and data flags; the UH_HTTP and UH_DIR environment
// variables override them, flags override both.
const (
	defaultHTTP = "127.0.0.1:8090"
	defaultDir  = "./uh_data"
)

const usage = `Underhood: a PocketBase-compatible backend in one binary.

Usage:
  underhood [--dir DIR | --db URL] COMMAND [ARGS]

Commands:
  serve [--http ADDR] [--dir DIR] [--origins LIST] [--outbound-allow LIST]
        [--public DIR] [--index-fallback]
                     start the server (default --http ` + defaultHTTP + `)
  superuser upsert EMAIL PASSWORD    create or update a superuser
  superuser create EMAIL PASSWORD    create a superuser
  superuser update EMAIL PASSWORD    change a superuser's password
  superuser delete EMAIL             delete a superuser
  export --out FILE  write the project (collections, settings, records,
                     password hashes) to a portable archive
  import FILE        restore an archive into an empty database of either
                     engine (SQLite in --dir, or --db)
  version            print the version
  help               print this help

Flags may come before or after the arguments of any command.
--dir defaults to $UH_DIR, then ` + defaultDir + `; --http to $UH_HTTP;
--db (a postgres:// URL; several servers may share one database) to
$UH_DB, else SQLite in --dir;
--outbound-allow (networks the server may fetch from although they are
internal, e.g. 127.0.0.1/32) to $UH_OUTBOUND_ALLOW;
--public (a folder served as the website at /) to $UH_PUBLIC, then
./uh_public when it exists; --index-fallback to $UH_INDEX_FALLBACK.
`

// env is the process environment as run sees it.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// run is the whole program; main only calls it. args[0] is the program name.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}

	// Global flags come before the command; each command also accepts
	// --dir itself, anywhere among its arguments.
	global := flag.NewFlagSet("underhood", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	dir := global.String("dir", envOr(getenv, "UH_DIR", defaultDir), "data directory")
	db := global.String("db", defaultDB(getenv), dbUsage)
	if len(args) > 0 {
		args = args[1:]
	}
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return fmt.Errorf("%w\n\n%s", err, usage)
	}
	args = global.Args()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, e, *dir, *db, rest)
	case "superuser":
		return superuser(ctx, e, *dir, *db, rest)
	case "export":
		return exportCmd(ctx, e, *dir, *db, rest)
	case "import":
		return importCmd(ctx, e, *dir, *db, rest)
	case "version", "--version":
		fmt.Fprintf(stdout, "underhood %s\n", fullVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// parseInterleaved parses fs from args, allowing flags before, between and
// after positional arguments, which it returns in order. Everything after
// "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func envOr(getenv func(string) string, key, def string) string {
	if v := strings.TrimSpace(getenv(key)); v != "" {
		return v
	}
	return def
}

// fullVersion is version plus the VCS revision the binary was built from,
// when the toolchain recorded one.
func fullVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return version
	}
	return version + " (" + rev + modified + ")"
}

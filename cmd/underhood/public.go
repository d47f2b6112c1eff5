package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/underhood/underhood/server"
)

// defaultPublic is the folder serve publishes as the website at / when it
// exists and neither --public nor $UH_PUBLIC names another.
const defaultPublic = "./uh_public"

// publicFlags are serve's static site flags (docs/static.md).
type publicFlags struct {
	fs       *flag.FlagSet
	getenv   func(string) string
	dir      *string
	fallback *bool
	envErr   error // a $UH_INDEX_FALLBACK that is not a boolean
}

// addPublicFlags registers --public and --index-fallback on fs, with their
// UH_ environment variables as defaults.
func addPublicFlags(fs *flag.FlagSet, getenv func(string) string) publicFlags {
	p := publicFlags{fs: fs, getenv: getenv}
	p.dir = fs.String("public", envOr(getenv, "UH_PUBLIC", ""),
		"folder served as the website at / (default "+defaultPublic+" when it exists; --public= serves none; env UH_PUBLIC)")
	fallback := false
	if v := envOr(getenv, "UH_INDEX_FALLBACK", ""); v != "" {
		var err error
		if fallback, err = strconv.ParseBool(v); err != nil {
			p.envErr = fmt.Errorf("serve: UH_INDEX_FALLBACK: %q is not true or false", v)
		}
	}
	p.fallback = fs.Bool("index-fallback", fallback,
		"answer unknown paths of the website with its index.html, for single-page apps (env UH_INDEX_FALLBACK)")
	return p
}

// static returns the website handler the flags ask for, or nil when there
// is no site: neither flag nor variable is set and ./uh_public does not
// exist. A folder named explicitly must exist.
func (p publicFlags) static(log *slog.Logger) (*server.Static, error) {
	if p.envErr != nil {
		return nil, p.envErr
	}
	fallback := *p.fallback
	dir := *p.dir
	explicit := p.getenv("UH_PUBLIC") != ""
	p.fs.Visit(func(f *flag.Flag) {
		if f.Name == "public" {
			explicit = true
		}
	})
	if !explicit {
		if fi, err := os.Stat(defaultPublic); err == nil && fi.IsDir() {
			dir = defaultPublic
		}
	}
	if dir == "" {
		if fallback {
			return nil, fmt.Errorf("serve: --index-fallback needs a website folder (--public DIR, or %s)", defaultPublic)
		}
		return nil, nil
	}
	st, err := server.NewStatic(dir, server.StaticOptions{IndexFallback: fallback, Log: log})
	if err != nil {
		return nil, fmt.Errorf("serve: --public: %w", err)
	}
	return st, nil
}

// fallbackNote is what the start message adds when unknown paths of the
// site get its index.html.
func fallbackNote(st *server.Static) string {
	if st.IndexFallback() {
		return " (unknown paths: index.html)"
	}
	return ""
}

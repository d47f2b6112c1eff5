package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Local is a Storage in a directory of the local disk (by default
// <data dir>/storage). Every write goes to a temporary file in the target's
// directory, is synced, and is renamed into place, so a reader or a crash
// never sees half a file. Names starting with "." are its own (temporary
// files, the staging directory) and never listed.
type Local struct {
	root    string
	staging string
}

// dirMode is the mode of the directories Local creates; its files are
// 0600 (os.CreateTemp's): only the server's user may read what users
// uploaded, protected files included.
const dirMode = 0o700

// NewLocal returns the storage rooted at dir, creating it when missing.
func NewLocal(dir string) (*Local, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local storage: %w", err)
	}
	staging := filepath.Join(root, ".staging")
	if err := os.MkdirAll(staging, dirMode); err != nil {
		return nil, fmt.Errorf("local storage: %w", err)
	}
	return &Local{root: root, staging: staging}, nil
}

// Root returns the directory the storage keeps its files in.
func (l *Local) Root() string { return l.root }

// path maps key to a path under the root; ok is false for a key that is
// not valid or names one of the storage's own hidden entries.
func (l *Local) path(key string) (string, bool) {
	if !validKey(key) || strings.HasPrefix(key, ".") || strings.Contains(key, "/.") {
		return "", false
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), true
}

func errBadKey(key string) error { return fmt.Errorf("local storage: invalid key %q", key) }

// Put implements Storage.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	p, ok := l.path(key)
	if !ok {
		return errBadKey(key)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("local storage: %w", err)
	}
	f, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return fmt.Errorf("local storage: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, r)
	if err != nil {
		return fmt.Errorf("local storage: write %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("local storage: write %s: got %d bytes, want %d", key, n, size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("local storage: sync %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("local storage: close %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("local storage: %w", err)
	}
	done = true
	syncDir(dir)
	return nil
}

// StagingDir implements stager: uploads are written on the same file
// system, so PutFile is a rename.
func (l *Local) StagingDir() string { return l.staging }

// PutFile implements stager. The file at path must already be synced.
func (l *Local) PutFile(ctx context.Context, key, path string) error {
	p, ok := l.path(key)
	if !ok {
		return errBadKey(key)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("local storage: %w", err)
	}
	if err := os.Rename(path, p); err != nil {
		return fmt.Errorf("local storage: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable. Failing to is not fatal: the
// file itself is on disk, and the orphan sweep handles the rare loss.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Open implements Storage.
func (l *Local) Open(ctx context.Context, key string) (Object, error) {
	p, ok := l.path(key)
	if !ok {
		return nil, fmt.Errorf("local storage: %q: %w", key, errNotExist)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("local storage: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("local storage: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("local storage: %q: %w", key, errNotExist)
	}
	return &localObject{File: f, info: l.info(key, st)}, nil
}

func (l *Local) info(key string, st fs.FileInfo) Info {
	mod := st.ModTime().UTC()
	return Info{Key: key, Size: st.Size(), ModTime: mod, ETag: fmt.Sprintf(`"%x-%x"`, mod.UnixNano(), st.Size())}
}

type localObject struct {
	*os.File
	info Info
}

func (o *localObject) Info() Info { return o.info }

// Delete implements Storage. Directories left empty are removed too.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, ok := l.path(key)
	if !ok {
		return errBadKey(key)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local storage: %w", err)
	}
	for dir := filepath.Dir(p); dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty (or gone)
		}
	}
	return nil
}

// List implements Storage.
func (l *Local) List(ctx context.Context, prefix string) ([]Info, error) {
	start := l.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		p, ok := l.path(prefix[:i])
		if !ok {
			return nil, nil
		}
		start = p
	}
	var out []Info
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if path != start && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(l.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, l.info(key, st))
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("local storage: list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

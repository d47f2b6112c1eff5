package files

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Storage keeps the bytes of uploaded files and their thumbnails under
// slash-separated keys ("<collectionId>/<recordId>/<name>"). Local keeps
// them on disk, S3 in an S3-compatible bucket. Implementations are safe for
// concurrent use.
type Storage interface {
	// Put stores size bytes read from r under key, replacing what was
	// there. A reader sees either the old object or the whole new one,
	// never a part. contentType is recorded where the backend can keep it.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open returns the object under key for reading, or an error
	// satisfying errors.Is(err, fs.ErrNotExist).
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the object under key; a missing object is no error.
	Delete(ctx context.Context, key string) error
	// List returns every object whose key starts with prefix, in key
	// order.
	List(ctx context.Context, prefix string) ([]Info, error)
}

// Object is a stored file opened for reading. Seeking is cheap: a remote
// object is fetched from the new offset on the next Read.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag is a quoted entity tag that changes whenever the content does.
	ETag string
	// ContentType is the type recorded by Put, "" when the backend keeps
	// none (the server then detects it from the content).
	ContentType string
}

// stager is implemented by a Storage that can take a finished file from a
// staging directory on its own file system by renaming it, which saves
// copying an upload a second time.
type stager interface {
	// StagingDir is where uploads are written before they are stored.
	StagingDir() string
	// PutFile moves the file at path to key.
	PutFile(ctx context.Context, key, path string) error
}

// errNotExist is returned (wrapped) for a missing object.
var errNotExist = fs.ErrNotExist

// IsNotExist reports whether err says an object does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// validKey reports whether key is a relative, slash-separated path
// without empty, "." or ".." elements, so that no backend can be led
// outside its root.
func validKey(key string) bool {
	if key == "" || len(key) > 1024 || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return false
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\\x00") {
			return false
		}
	}
	return true
}

// deletePrefix removes every object under prefix whose modification time
// is before (the zero time: every object).
func deletePrefix(ctx context.Context, st Storage, prefix string, before time.Time) error {
	list, err := st.List(ctx, prefix)
	if err != nil {
		return err
	}
	var first error
	for _, o := range list {
		if !before.IsZero() && !o.ModTime.Before(before) {
			continue
		}
		if err := st.Delete(ctx, o.Key); err != nil && first == nil {
			first = err
		}
	}
	return first
}

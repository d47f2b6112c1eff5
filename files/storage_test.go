package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/files/s3test"
	"github.com/underhood/underhood/outbound"
)

// backends are the storages every conformance test runs on: the local
// disk and a bucket of a real S3-compatible server on loopback.
var backends = []struct {
	name string
	open func(t *testing.T) Storage
}{
	{"local", func(t *testing.T) Storage {
		st, err := NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"s3", func(t *testing.T) Storage {
		srv := s3test.Start(t)
		st, err := NewS3(S3Config{Endpoint: srv.Endpoint, Bucket: "uh-" + underhood.RandomString(12),
			Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Allow: srv.Allow})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.EnsureBucket(context.Background()); err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

func eachBackend(t *testing.T, fn func(t *testing.T, st Storage)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

func put(t *testing.T, st Storage, key, content string) {
	t.Helper()
	if err := st.Put(context.Background(), key, strings.NewReader(content), int64(len(content)), "text/plain"); err != nil {
		t.Fatalf("Put(%q) = %v", key, err)
	}
}

func read(t *testing.T, st Storage, key string) string {
	t.Helper()
	o, err := st.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q) = %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return string(b)
}

func keys(list []Info) string {
	var ks []string
	for _, i := range list {
		ks = append(ks, i.Key)
	}
	return strings.Join(ks, " ")
}

func TestStoragePutOpenOverwrite(t *testing.T) {
	eachBackend(t, func(t *testing.T, st Storage) {
		ctx := context.Background()
		put(t, st, "c1/r1/hello.txt", "hello, world")
		o, err := st.Open(ctx, "c1/r1/hello.txt")
		if err != nil {
			t.Fatal(err)
		}
		info := o.Info()
		o.Close()
		if info.Size != 12 || info.ETag == "" || time.Since(info.ModTime) > time.Minute {
			t.Errorf("Info() = %+v, want size 12, an ETag and a recent time", info)
		}
		if got := read(t, st, "c1/r1/hello.txt"); got != "hello, world" {
			t.Errorf("read = %q", got)
		}
		time.Sleep(10 * time.Millisecond)
		put(t, st, "c1/r1/hello.txt", "replaced")
		o, err = st.Open(ctx, "c1/r1/hello.txt")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		if b, _ := io.ReadAll(o); string(b) != "replaced" || o.Info().ETag == info.ETag {
			t.Errorf("after overwrite: %q, ETag %s (was %s)", b, o.Info().ETag, info.ETag)
		}
	})
}

func TestStorageSeekReadsFromOffset(t *testing.T) {
	eachBackend(t, func(t *testing.T, st Storage) {
		content := strings.Repeat("0123456789", 1000)
		put(t, st, "c/r/digits.txt", content)
		o, err := st.Open(context.Background(), "c/r/digits.txt")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(o, buf); err != nil || string(buf) != "0123" {
			t.Fatalf("first read = %q, %v", buf, err)
		}
		for _, off := range []int64{5005, 17, 9996} {
			if _, err := o.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(o, buf); err != nil || string(buf) != content[off:off+4] {
				t.Errorf("read at %d = %q, %v; want %q", off, buf, err, content[off:off+4])
			}
		}
		if end, _ := o.Seek(0, io.SeekEnd); end != int64(len(content)) {
			t.Errorf("Seek(0, end) = %d, want %d", end, len(content))
		}
		if n, err := o.Read(buf); n != 0 || err != io.EOF {
			t.Errorf("read at end = %d, %v; want 0, EOF", n, err)
		}
	})
}

func TestStorageListAndDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, st Storage) {
		ctx := context.Background()
		for _, k := range []string{"a/b/1", "a/b/2", "a/c/thumbs_x/3", "ab/4"} {
			put(t, st, k, k)
		}
		tests := []struct{ prefix, want string }{
			{"a/b/", "a/b/1 a/b/2"},
			{"a/", "a/b/1 a/b/2 a/c/thumbs_x/3"},
			{"a/c/thumbs_", "a/c/thumbs_x/3"},
			{"", "a/b/1 a/b/2 a/c/thumbs_x/3 ab/4"},
			{"zz/", ""},
		}
		for _, tt := range tests {
			list, err := st.List(ctx, tt.prefix)
			if err != nil {
				t.Fatalf("List(%q) = %v", tt.prefix, err)
			}
			if got := keys(list); got != tt.want {
				t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		}
		if err := st.Delete(ctx, "a/b/1"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "a/b/1"); err != nil {
			t.Errorf("second Delete = %v, want nil", err)
		}
		if _, err := st.Open(ctx, "a/b/1"); !IsNotExist(err) {
			t.Errorf("Open(deleted) = %v, want not-exist", err)
		}
		if err := deletePrefix(ctx, st, "a/", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if list, _ := st.List(ctx, ""); keys(list) != "ab/4" {
			t.Errorf("after deletePrefix(a/): %q, want %q", keys(list), "ab/4")
		}
	})
}

// TestStoragePutEmptyAndUnsized: an empty file is stored and read back
// as one, and so is a body whose size the caller does not know (-1).
func TestStoragePutEmptyAndUnsized(t *testing.T) {
	eachBackend(t, func(t *testing.T, st Storage) {
		ctx := context.Background()
		tests := []struct {
			key, content string
			size         int64
		}{
			{"c/r/empty.txt", "", 0},
			{"c/r/empty-unsized.txt", "", -1},
			{"c/r/unsized.txt", "streamed", -1},
		}
		for _, tt := range tests {
			if err := st.Put(ctx, tt.key, onlyReader{strings.NewReader(tt.content)}, tt.size, "text/plain"); err != nil {
				t.Fatalf("Put(%q, size %d) = %v", tt.key, tt.size, err)
			}
			if got := read(t, st, tt.key); got != tt.content {
				t.Errorf("read %q = %q, want %q", tt.key, got, tt.content)
			}
		}
		list, err := st.List(ctx, "c/r/")
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int64
		for _, info := range list {
			sizes = append(sizes, info.Size)
		}
		if want := []int64{0, 0, 8}; !reflect.DeepEqual(sizes, want) {
			t.Errorf("List(c/r/) sizes = %v, want %v (keys %s)", sizes, want, keys(list))
		}
	})
}

func TestStorageRefusesKeysOutsideItsRoot(t *testing.T) {
	eachBackend(t, func(t *testing.T, st Storage) {
		ctx := context.Background()
		for _, key := range []string{"../escape", "/abs", "a//b", "a/./b", "a/../../b", "", "a/", `a\..\b`} {
			if err := st.Put(ctx, key, strings.NewReader("x"), 1, ""); err == nil {
				t.Errorf("Put(%q) = nil, want an error", key)
			}
			if _, err := st.Open(ctx, key); err == nil {
				t.Errorf("Open(%q) = nil error", key)
			}
		}
		if _, err := st.Open(ctx, "missing/key"); !IsNotExist(err) {
			t.Errorf("Open(missing) = %v, want not-exist", err)
		}
	})
}

// TestStorageServeContent checks what Serve relies on: http.ServeContent
// over an Object answers ranges and conditional requests on both backends.
func TestStorageServeContent(t *testing.T) {
	eachBackend(t, func(t *testing.T, st Storage) {
		content := strings.Repeat("abcdefghij", 100)
		put(t, st, "c/r/f.txt", content)
		serve := func(h http.Header) *httptest.ResponseRecorder {
			o, err := st.Open(context.Background(), "c/r/f.txt")
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			req := httptest.NewRequest("GET", "/f", nil)
			req.Header = h
			w := httptest.NewRecorder()
			w.Header().Set("ETag", o.Info().ETag)
			http.ServeContent(w, req, "", o.Info().ModTime, o)
			return w
		}
		full := serve(http.Header{})
		if full.Code != 200 || full.Body.String() != content {
			t.Fatalf("full = %d (%d bytes)", full.Code, full.Body.Len())
		}
		etag := full.Header().Get("ETag")
		if w := serve(http.Header{"Range": {"bytes=100-109"}}); w.Code != 206 || w.Body.String() != content[100:110] {
			t.Errorf("range = %d %q, want 206 %q", w.Code, w.Body.String(), content[100:110])
		}
		if w := serve(http.Header{"Range": {"bytes=-5"}}); w.Code != 206 || w.Body.String() != content[995:] {
			t.Errorf("suffix range = %d %q", w.Code, w.Body.String())
		}
		if w := serve(http.Header{"If-None-Match": {etag}}); w.Code != 304 {
			t.Errorf("If-None-Match = %d, want 304", w.Code)
		}
		if w := serve(http.Header{"If-Match": {`"other"`}}); w.Code != 412 {
			t.Errorf("If-Match other = %d, want 412", w.Code)
		}
		if w := serve(http.Header{"Range": {"bytes=0-1"}, "If-Range": {`"other"`}}); w.Code != 200 || w.Body.Len() != len(content) {
			t.Errorf("If-Range stale = %d, want the whole file", w.Code)
		}
		if w := serve(http.Header{"Range": {"bytes=5000-"}}); w.Code != 416 {
			t.Errorf("unsatisfiable range = %d, want 416", w.Code)
		}
	})
}

func TestLocalPutIsAtomic(t *testing.T) {
	dir := t.TempDir()
	st, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A reader that fails half-way must leave neither a partial file nor
	// a temporary one.
	r := io.MultiReader(strings.NewReader("partial"), errReader{})
	if err := st.Put(context.Background(), "c/r/f", r, 100, ""); err == nil {
		t.Fatal("Put with a failing reader = nil")
	}
	list, _ := st.List(context.Background(), "")
	entries, _ := os.ReadDir(dir + "/c/r")
	if len(list) != 0 || len(entries) != 0 {
		t.Errorf("after a failed Put: listed %q, directory holds %d entries", keys(list), len(entries))
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestParseS3URL(t *testing.T) {
	tests := []struct {
		in      string
		want    S3Config
		wantErr bool
	}{
		{in: "s3://AK:S%2Fx@127.0.0.1:7070/bucket?region=eu-west-1&tls=false",
			want: S3Config{Endpoint: "http://127.0.0.1:7070", Bucket: "bucket", Region: "eu-west-1", AccessKey: "AK", SecretKey: "S/x"}},
		{in: "s3://AK:SK@s3.example.com/b",
			want: S3Config{Endpoint: "https://s3.example.com", Bucket: "b", AccessKey: "AK", SecretKey: "SK"}},
		{in: "s3://s3.example.com/b", wantErr: true},
		{in: "s3://AK:SK@s3.example.com/", wantErr: true},
		{in: "s3://AK:SK@s3.example.com/a/b", wantErr: true},
		{in: "http://AK:SK@s3.example.com/b", wantErr: true},
		{in: "s3://AK:SK@h/b?tls=maybe", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseS3URL(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("ParseS3URL(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestS3WrongSecretIsRefused(t *testing.T) {
	srv := s3test.Start(t)
	st, err := NewS3(S3Config{Endpoint: srv.Endpoint, Bucket: "uh-" + underhood.RandomString(12),
		AccessKey: srv.AccessKey, SecretKey: "not-the-secret", Allow: srv.Allow})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Put(context.Background(), "k", bytes.NewReader([]byte("x")), 1, "")
	t.Logf("Put with a wrong secret: %v", err)
	if err == nil || !strings.Contains(err.Error(), "Signature") && !strings.Contains(err.Error(), "Access") && !strings.Contains(err.Error(), "403") {
		t.Errorf("Put with a wrong secret = %v, want a signature error", err)
	}
	if err != nil && (strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), srv.AccessKey)) {
		t.Errorf("Put with a wrong secret = %v, which shows a credential", err)
	}
	if got := st.String(); strings.Contains(got, "not-the-secret") || strings.Contains(got, srv.AccessKey) {
		t.Errorf("String() = %q, which shows a credential", got)
	}
}

// TestNewS3RefusesInvalidConfig: a configuration no S3 server could serve
// fails when the storage is made, naming what is wrong and not the secret.
func TestNewS3RefusesInvalidConfig(t *testing.T) {
	valid := S3Config{Endpoint: "https://s3.example.com", Bucket: "uploads", AccessKey: "AK", SecretKey: "the-secret"}
	tests := []struct {
		name      string
		change    func(c *S3Config)
		wantError string // "" = accepted
	}{
		{"valid", func(c *S3Config) {}, ""},
		{"trailing slash", func(c *S3Config) { c.Endpoint += "/" }, ""},
		{"endpoint with a path", func(c *S3Config) { c.Endpoint += "/s3" }, "has a path"},
		{"endpoint without a scheme", func(c *S3Config) { c.Endpoint = "s3.example.com" }, "invalid endpoint"},
		{"ftp endpoint", func(c *S3Config) { c.Endpoint = "ftp://s3.example.com" }, "invalid endpoint"},
		{"bucket too short", func(c *S3Config) { c.Bucket = "b" }, `bucket "b"`},
		{"bucket with two dots", func(c *S3Config) { c.Bucket = "a..b" }, `bucket "a..b"`},
		{"no bucket", func(c *S3Config) { c.Bucket = "" }, "required"},
		{"no secret", func(c *S3Config) { c.SecretKey = "" }, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			st, err := NewS3(cfg)
			switch {
			case tt.wantError == "" && err != nil:
				t.Fatalf("NewS3(%+v) = %v, want nil", cfg, err)
			case tt.wantError == "":
				if got, want := st.String(), "https://s3.example.com/uploads"; got != want {
					t.Errorf("String() = %q, want %q", got, want)
				}
			case err == nil || !strings.Contains(err.Error(), tt.wantError):
				t.Errorf("NewS3 with %s = %v, want an error saying %q", tt.name, err, tt.wantError)
			case strings.Contains(err.Error(), "the-secret"):
				t.Errorf("NewS3 with %s = %v, which shows the secret", tt.name, err)
			}
		})
	}
}

// TestS3MultipartRoundTrip: an object larger than one part goes up as a
// multipart upload (backup archives are many GiB) and comes back byte for
// byte, also when read from the middle after a Seek. Parts are 5 MiB, the
// least S3 allows, so 12 MiB make three.
func TestS3MultipartRoundTrip(t *testing.T) {
	srv := s3test.Start(t)
	st, err := NewS3(S3Config{Endpoint: srv.Endpoint, Bucket: "uh-" + underhood.RandomString(12),
		Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Allow: srv.Allow})
	if err != nil {
		t.Fatal(err)
	}
	st.partSize = 5 << 20
	ctx := context.Background()
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	content := make([]byte, 12<<20)
	rand.NewChaCha8([32]byte{1}).Read(content) // parts in the wrong order would not match
	small := []byte("smaller than a part")

	tests := []struct {
		name      string
		content   []byte
		body      func(b []byte) io.Reader
		size      int64 // -1: unknown
		wantParts int   // 0: a single PUT
	}{
		// A file: minio-go sends the parts from their offsets.
		{"seekable body", content, func(b []byte) io.Reader { return bytes.NewReader(b) }, int64(len(content)), 3},
		// A stream of known length: read part by part.
		{"stream", content, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }, int64(len(content)), 3},
		{"stream of unknown size", content, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }, -1, 3},
		{"short stream of unknown size", small, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }, -1, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("backups/%d.tar", i)
			if err := st.Put(ctx, key, tt.body(tt.content), tt.size, "application/x-tar"); err != nil {
				t.Fatalf("Put(%q, %d bytes, size %d) = %v", key, len(tt.content), tt.size, err)
			}
			o, err := st.Open(ctx, key)
			if err != nil {
				t.Fatalf("Open(%q) = %v", key, err)
			}
			defer o.Close()
			info := o.Info()
			if info.Size != int64(len(tt.content)) || info.ContentType != "application/x-tar" {
				t.Errorf("Info() = %+v, want size %d and type application/x-tar", info, len(tt.content))
			}
			// S3 gives a multipart object the ETag "<hash>-<parts>".
			if want := fmt.Sprintf(`-%d"`, tt.wantParts); (tt.wantParts > 0) != strings.HasSuffix(info.ETag, want) {
				t.Errorf("ETag %s: want %d parts", info.ETag, tt.wantParts)
			}
			got, err := io.ReadAll(o)
			if err != nil || !bytes.Equal(got, tt.content) {
				t.Fatalf("read back %d bytes (%v), want the %d bytes stored", len(got), err, len(tt.content))
			}
			if len(tt.content) < 6<<20 {
				return
			}
			// Across the first part boundary, then inside the last part.
			for _, off := range []int64{5<<20 - 7, 11<<20 + 123} {
				if _, err := o.Seek(off, io.SeekStart); err != nil {
					t.Fatalf("Seek(%d) = %v", off, err)
				}
				buf := make([]byte, 4096)
				if _, err := io.ReadFull(o, buf); err != nil || !bytes.Equal(buf, tt.content[off:off+4096]) {
					t.Errorf("read 4096 bytes at %d = %v, or not the bytes stored there", off, err)
				}
			}
		})
	}
	list, err := st.List(ctx, "backups/")
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, info := range list {
		sizes = append(sizes, info.Size)
	}
	want := []int64{int64(len(content)), int64(len(content)), int64(len(content)), int64(len(small))}
	if !reflect.DeepEqual(sizes, want) {
		t.Errorf("List(backups/) sizes = %v, want %v", sizes, want)
	}
}

// onlyReader hides every method but Read, as a network stream has.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestS3RefusesInternalEndpoints: an S3 endpoint on loopback or at the
// cloud metadata address is refused with outbound's error unless its
// network is allowed or the endpoint is trusted (given by the operator).
func TestS3RefusesInternalEndpoints(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})) // every bucket exists
	t.Cleanup(srv.Close)
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name      string
		endpoint  string
		allow     []netip.Prefix
		trusted   bool
		wantError string // "" = reached
	}{
		{"loopback", srv.URL, nil, false, "refused to connect to 127.0.0.1 (loopback address)"},
		{"loopback allowed", srv.URL, loopback, false, ""},
		{"loopback trusted", srv.URL, nil, true, ""},
		{"metadata", "http://169.254.169.254", nil, false, "refused to connect to 169.254.169.254 (cloud metadata address)"},
		{"metadata with loopback allowed", "http://169.254.169.254:80", loopback, false, "refused to connect to 169.254.169.254 (cloud metadata address)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A refused connection is retried with backoff, like any
			// failed one, for a few seconds; the cases wait side by side.
			t.Parallel()
			st, err := NewS3(S3Config{Endpoint: tt.endpoint, Bucket: "bucket", AccessKey: "AK", SecretKey: "SK", Allow: tt.allow, Trusted: tt.trusted})
			if err != nil {
				t.Fatal(err)
			}
			err = st.EnsureBucket(context.Background())
			switch {
			case tt.wantError == "" && err != nil:
				t.Errorf("EnsureBucket on %s = %v, want nil", tt.endpoint, err)
			case tt.wantError != "" && (!errors.Is(err, outbound.ErrRefused) || !strings.Contains(err.Error(), tt.wantError)):
				t.Errorf("EnsureBucket on %s = %v, want an outbound.ErrRefused saying %q", tt.endpoint, err, tt.wantError)
			}
		})
	}
}

// TestLocalModes (L4): the directories Local creates are 0700 and the
// files it stores 0600: uploads, protected ones included, are the server
// user's alone.
func TestLocalModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "storage")
	st, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), "coll/rec/a.txt", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	staged := filepath.Join(st.StagingDir(), "upload")
	if err := os.WriteFile(staged, []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := st.PutFile(context.Background(), "coll/other/b.txt", staged); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{
		".": 0o700, ".staging": 0o700, "coll": 0o700, "coll/rec": 0o700, "coll/other": 0o700, "coll/rec/a.txt": 0o600, "coll/other/b.txt": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Errorf("stat %s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != want {
			t.Errorf("mode of %s = %#o, want %#o", name, fi.Mode().Perm(), want)
		}
	}
}

// TestS3ForcePathStyle: the settings' forcePathStyle is honoured: on a
// provider where minio-go would address the bucket by host name, it is
// put in the path instead.
func TestS3ForcePathStyle(t *testing.T) {
	for _, force := range []bool{false, true} {
		var mu sync.Mutex
		var seen []*url.URL
		client := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			seen = append(seen, r.URL)
			mu.Unlock()
			h := http.Header{}
			h.Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
			return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		})}
		st, err := NewS3(S3Config{Endpoint: "https://s3.amazonaws.com", Bucket: "uh-bucket", Region: "us-east-1",
			AccessKey: "a", SecretKey: "b", ForcePathStyle: force, Client: client})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(context.Background(), "k.txt", strings.NewReader("x"), 1, "text/plain"); err != nil {
			t.Fatalf("Put (forcePathStyle %v) = %v", force, err)
		}
		mu.Lock()
		if len(seen) == 0 {
			t.Fatalf("forcePathStyle %v: no request sent", force)
		}
		for _, u := range seen {
			pathStyle := strings.HasPrefix(u.Path, "/uh-bucket/") && !strings.HasPrefix(u.Host, "uh-bucket.")
			if pathStyle != force {
				t.Errorf("forcePathStyle %v: request to %s", force, u)
			}
		}
		mu.Unlock()
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

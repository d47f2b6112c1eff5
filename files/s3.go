package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/underhood/underhood/outbound"
)

// S3Config says where an S3-compatible bucket is and how to sign requests
// to it. Buckets are addressed path-style (http(s)://endpoint/bucket/key),
// which every S3-compatible server understands, except on the providers
// that prefer virtual-hosted buckets (AWS, Google Cloud Storage, Alibaba
// Cloud), where minio-go uses bucket.endpoint/key.
type S3Config struct {
	// Endpoint is the server's base URL, without a path, e.g.
	// "https://s3.example.com" or "http://127.0.0.1:7070".
	Endpoint  string
	Bucket    string
	Region    string // "us-east-1" when empty
	AccessKey string
	SecretKey string
	// ForcePathStyle addresses the bucket path-style on every provider
	// (the settings' forcePathStyle), for servers that lack the DNS names
	// of virtual-hosted buckets.
	ForcePathStyle bool
	// Allow lists the internal networks the endpoint may be in. Unless
	// Trusted, the client refuses to connect to a loopback, private,
	// link-local or cloud metadata address outside them, as the server's
	// other outbound requests do (package outbound): an endpoint set in
	// the settings by a superuser must not reach into the server's
	// network.
	Allow []netip.Prefix
	// Trusted skips that check: the endpoint was given by the operator
	// (serve --storage), who can reach the server's network anyway.
	Trusted bool
	// Client, when set, sends the requests through its Transport (nil:
	// http.DefaultTransport); its other fields are not used, because
	// minio-go builds its own http.Client around the transport. Nil is a
	// transport with sane timeouts that checks addresses as Allow and
	// Trusted say.
	Client *http.Client
}

// ParseS3URL reads the --storage form of an S3 configuration:
//
//	s3://ACCESS:SECRET@host:port/bucket?region=eu-west-1&tls=false
//
// ACCESS and SECRET are URL-encoded; tls=false speaks plain HTTP (for a
// server on loopback), otherwise HTTPS.
func ParseS3URL(s string) (S3Config, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" {
		return S3Config{}, errors.New("storage: want s3://ACCESS:SECRET@host[:port]/bucket[?region=…&tls=false]")
	}
	bucket := strings.Trim(u.Path, "/")
	if u.Host == "" || bucket == "" || strings.Contains(bucket, "/") {
		return S3Config{}, errors.New("storage: s3 URL needs a host and a bucket: s3://ACCESS:SECRET@host[:port]/bucket")
	}
	if u.User == nil {
		return S3Config{}, errors.New("storage: s3 URL needs credentials: s3://ACCESS:SECRET@host/bucket")
	}
	secret, _ := u.User.Password()
	q := u.Query()
	scheme := "https"
	if v := q.Get("tls"); v != "" {
		tls, err := strconv.ParseBool(v)
		if err != nil {
			return S3Config{}, fmt.Errorf("storage: tls=%q is not a boolean", v)
		}
		if !tls {
			scheme = "http"
		}
	}
	return S3Config{
		Endpoint:  scheme + "://" + u.Host,
		Bucket:    bucket,
		Region:    q.Get("region"),
		AccessKey: u.User.Username(),
		SecretKey: secret,
	}, nil
}

// streamPartSize is the part size of an upload whose size is not known in
// advance. minio-go holds one part in memory while it sends it, and would
// otherwise pick parts of about 537 MiB (enough for 5 TiB in 10,000
// parts); 64 MiB parts still allow objects of 625 GiB, at a memory cost a
// server can afford for each such upload in flight.
const streamPartSize = 64 << 20

// S3 is a Storage in a bucket of an S3-compatible server, spoken to with
// minio-go, which signs the requests, retries those that failed for a
// reason worth retrying, and uploads large objects in parts.
type S3 struct {
	client   *minio.Client
	endpoint string // scheme://host, for String
	bucket   string
	region   string
	// partSize is the part size of multipart uploads; 0 lets minio-go
	// choose (16 MiB, more for objects that need more than 10,000 parts),
	// and an object no larger than one part goes in a single PUT. Tests
	// set it small to send multipart uploads of a few MiB.
	partSize uint64
}

// NewS3 returns the storage described by cfg. It does not contact the
// server; EnsureBucket does.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, errors.New("s3 storage: invalid endpoint: not a URL")
	}
	// Redacted: the endpoint must not carry credentials, but if it does,
	// the error must not show them.
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3 storage: invalid endpoint %q", u.Redacted())
	}
	// minio-go builds every URL from the host alone, so a path would be
	// dropped silently; refuse it rather than talk to another service.
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("s3 storage: endpoint %q has a path; give the server's base URL (scheme://host[:port])", u.Redacted())
	}
	if cfg.Bucket == "" || cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3 storage: bucket, access key and secret are required")
	}
	// minio-go refuses a name that no S3 server accepts ("b", "a..b")
	// before every request; checked here, it fails when the storage is
	// configured rather than on the first upload.
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 storage: bucket %q: %w", cfg.Bucket, err)
	}
	if cfg.Region == "" {
		// A region given up front also spares minio-go a GetBucketLocation
		// request before the first request to the bucket.
		cfg.Region = "us-east-1"
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    u.Scheme == "https",
		Transport: s3Transport(cfg),
		Region:    cfg.Region,
		BucketLookup: func() minio.BucketLookupType {
			if cfg.ForcePathStyle {
				return minio.BucketLookupPath
			}
			return minio.BucketLookupAuto
		}(),
	})
	if err != nil {
		return nil, fmt.Errorf("s3 storage: endpoint %q: %w", u.Scheme+"://"+u.Host, err)
	}
	return &S3{client: client, endpoint: u.Scheme + "://" + u.Host, bucket: cfg.Bucket, region: cfg.Region}, nil
}

// s3Transport returns the transport of cfg's requests: cfg.Client's, else
// one that refuses internal addresses unless cfg trusts the endpoint.
func s3Transport(cfg S3Config) http.RoundTripper {
	if cfg.Client != nil {
		if cfg.Client.Transport == nil {
			return http.DefaultTransport
		}
		return cfg.Client.Transport
	}
	tr := outbound.NewTransport(cfg.Allow)
	if cfg.Trusted {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	// Files are served concurrently, all from one host; the default keeps
	// only 2 idle connections to it.
	tr.MaxIdleConnsPerHost = 32
	// A body may stream for as long as it takes, but a server that does
	// not start answering within a minute is not going to.
	tr.ResponseHeaderTimeout = 60 * time.Second
	return tr
}

// String describes the storage without its credentials.
func (s *S3) String() string { return s.endpoint + "/" + s.bucket }

// s3Error describes a failed request: "s3 <op> <key>: " and, when the
// server answered, its error code and message. A missing object (404 for
// anything but the bucket) wraps fs.ErrNotExist.
func s3Error(op, key string, err error) error {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return fmt.Errorf("s3 %s %q: %w", op, key, err)
	}
	if resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket {
		return fmt.Errorf("s3 %s %q: %w", op, key, errNotExist)
	}
	return fmt.Errorf("s3 %s %q: %s: %w", op, key, resp.Code, err)
}

// EnsureBucket creates the bucket when it does not exist yet.
func (s *S3) EnsureBucket(ctx context.Context) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3 storage: %w", s3Error("head bucket", s.bucket, err))
	}
	if exists {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	// Another node starting at the same time may have created it first.
	if err != nil && minio.ToErrorResponse(err).Code != minio.BucketAlreadyOwnedByYou {
		return fmt.Errorf("s3 storage: %w", s3Error("create bucket", s.bucket, err))
	}
	return nil
}

// Put implements Storage. An object larger than one part is sent as a
// multipart upload, which the server assembles only when every part has
// arrived, so a reader never sees part of it. A body of unknown size
// (size < 0) that fits in one part of streamPartSize is sent whole; a
// longer one streams in parts, with at most two parts in memory.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if !validKey(key) {
		return fmt.Errorf("s3 storage: invalid key %q", key)
	}
	opts := minio.PutObjectOptions{ContentType: contentType, PartSize: s.partSize}
	if size < 0 {
		part := int64(streamPartSize)
		if s.partSize != 0 {
			part = int64(s.partSize)
		}
		opts.PartSize = uint64(part)
		// Given -1, minio-go allocates a whole part and starts a multipart
		// upload even for a few bytes; a body that turns out to fit in one
		// part goes in a single PUT instead.
		head, err := io.ReadAll(io.LimitReader(r, part+1))
		if err != nil {
			return fmt.Errorf("s3 put %q: read: %w", key, err)
		}
		if int64(len(head)) <= part {
			r, size = bytes.NewReader(head), int64(len(head))
		} else {
			r = io.MultiReader(bytes.NewReader(head), r)
		}
	}
	if _, err := s.client.PutObject(ctx, s.bucket, key, r, size, opts); err != nil {
		return s3Error("put", key, err)
	}
	return nil
}

// stat returns what a HEAD request says about key.
func (s *S3) stat(ctx context.Context, key string) (Info, string, error) {
	if !validKey(key) {
		return Info{}, "", fmt.Errorf("s3 head %q: %w", key, errNotExist)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, "", s3Error("head", key, err)
	}
	info := Info{Key: key, Size: oi.Size, ModTime: oi.LastModified.UTC(), ETag: quoteETag(oi.ETag), ContentType: oi.ContentType}
	return info, oi.ETag, nil
}

// quoteETag gives back the quotes minio-go strips from entity tags:
// Info.ETag is what an HTTP ETag header carries.
func quoteETag(etag string) string {
	if etag == "" || strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/`) {
		return etag
	}
	return `"` + etag + `"`
}

// Open implements Storage: a HEAD now, and a GET (with Range when not
// reading from the start) on the first Read after each Seek.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	info, etag, err := s.stat(ctx, key)
	if err != nil {
		return nil, err
	}
	return &s3Object{s: s, ctx: ctx, info: info, etag: etag}, nil
}

// s3Object reads an object lazily. It keeps the context of Open because
// io.Reader has no place for one; it lives no longer than one request.
// minio-go's own Object is not used: it runs a goroutine per open object,
// and its Seek fails past the end, where io.Seeker (and ServeContent's
// probing) allows it.
type s3Object struct {
	s    *S3
	ctx  context.Context
	info Info
	etag string // unquoted, as minio-go wants it for If-Match
	off  int64
	body io.ReadCloser
}

func (o *s3Object) Info() Info { return o.info }

func (o *s3Object) Read(p []byte) (int, error) {
	if o.off >= o.info.Size {
		return 0, io.EOF
	}
	if o.body == nil {
		var opts minio.GetObjectOptions
		if o.off > 0 {
			if err := opts.SetRange(o.off, 0); err != nil {
				return 0, fmt.Errorf("s3 get %q: %w", o.info.Key, err)
			}
		}
		// The object must still be the one HEAD described; a replaced one
		// fails rather than mixing two versions in one response.
		if o.etag != "" {
			if err := opts.SetMatchETag(o.etag); err != nil {
				return 0, fmt.Errorf("s3 get %q: %w", o.info.Key, err)
			}
		}
		body, _, header, err := minio.Core{Client: o.s.client}.GetObject(o.ctx, o.s.bucket, o.info.Key, opts)
		if err != nil {
			return 0, s3Error("get", o.info.Key, err)
		}
		if o.off > 0 && header.Get("Content-Range") == "" {
			body.Close()
			return 0, fmt.Errorf("s3 get %q: server ignored the range", o.info.Key)
		}
		o.body = body
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	if err == io.EOF && o.off < o.info.Size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.info.Size + offset
	default:
		return 0, errors.New("s3 object: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("s3 object: negative position")
	}
	if abs != o.off && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = abs
	return abs, nil
}

func (o *s3Object) Close() error {
	if o.body != nil {
		err := o.body.Close()
		o.body = nil
		return err
	}
	return nil
}

// Delete implements Storage.
func (s *S3) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("s3 storage: invalid key %q", key)
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).StatusCode != http.StatusNotFound {
		return s3Error("delete", key, err)
	}
	return nil
}

// List implements Storage with ListObjectsV2, which minio-go pages
// through until the listing is complete.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	// Cancelling stops the listing if it ends early on an error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []Info
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, s3Error("list", prefix, oi.Err)
		}
		out = append(out, Info{Key: oi.Key, Size: oi.Size, ModTime: oi.LastModified.UTC(), ETag: quoteETag(oi.ETag)})
	}
	return out, nil
}

package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood/outbound"
)

// S3Config says where an S3-compatible bucket is and how to sign requests
// to it. Requests are path-style (http(s)://endpoint/bucket/key), which
// every S3-compatible server understands.
type S3Config struct {
	// Endpoint is the server's base URL, e.g. "https://s3.example.com" or
	// "http://127.0.0.1:7070".
	Endpoint  string
	Bucket    string
	Region    string // "us-east-1" when empty
	AccessKey string
	SecretKey string
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
	// Client sends the requests; nil is a client with sane timeouts that
	// checks addresses as Allow and Trusted say.
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

// S3 is a Storage in a bucket of an S3-compatible server, spoken to with
// a small SigV4 client: PutObject, GetObject (with Range), HeadObject,
// DeleteObject, ListObjectsV2 and CreateBucket.
type S3 struct {
	base   *url.URL
	bucket string
	sign   signer
	client *http.Client
	now    func() time.Time
}

// NewS3 returns the storage described by cfg. It does not contact the
// server; EnsureBucket does.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3 storage: invalid endpoint %q", cfg.Endpoint)
	}
	if cfg.Bucket == "" || cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3 storage: bucket, access key and secret are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := cfg.Client
	if client == nil {
		tr := outbound.NewTransport(cfg.Allow)
		if cfg.Trusted {
			tr = http.DefaultTransport.(*http.Transport).Clone()
		}
		tr.MaxIdleConnsPerHost = 32
		tr.ResponseHeaderTimeout = 60 * time.Second
		client = &http.Client{Transport: tr}
	}
	return &S3{
		base:   &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")},
		bucket: cfg.Bucket,
		sign:   signer{accessKey: cfg.AccessKey, secretKey: cfg.SecretKey, region: cfg.Region},
		client: client,
		now:    time.Now,
	}, nil
}

// String describes the storage without its credentials.
func (s *S3) String() string { return s.base.String() + "/" + s.bucket }

// objectURL returns the path-style URL of key ("" for the bucket itself).
func (s *S3) objectURL(key string, q url.Values) *url.URL {
	path := s.base.Path + "/" + s.bucket
	if key != "" {
		path += "/" + key
	}
	u := &url.URL{Scheme: s.base.Scheme, Host: s.base.Host, Path: path}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		segs[i] = uriEncode(seg)
	}
	u.RawPath = strings.Join(segs, "/")
	if q != nil {
		u.RawQuery = canonicalQuery(q)
	}
	return u
}

// do signs and sends a request. body may be nil; payloadHash is its hex
// SHA-256 or unsignedPayload.
func (s *S3) do(ctx context.Context, method string, u *url.URL, body io.Reader, size int64, payloadHash string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.URL = u
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if payloadHash == "" {
		payloadHash = emptySHA256
	}
	s.sign.sign(req, payloadHash, s.now())
	return s.client.Do(req)
}

// s3Error is the XML error body of S3.
type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// responseError turns a failed response into an error, closing its body.
// 404 becomes errNotExist.
func responseError(op, key string, resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e s3Error
	xml.Unmarshal(b, &e)
	if resp.StatusCode == http.StatusNotFound && e.Code != "NoSuchBucket" {
		return fmt.Errorf("s3 %s %q: %w", op, key, errNotExist)
	}
	if e.Code == "" {
		e.Code = resp.Status
	}
	return fmt.Errorf("s3 %s %q: %s: %s", op, key, e.Code, e.Message)
}

// EnsureBucket creates the bucket when it does not exist yet.
func (s *S3) EnsureBucket(ctx context.Context) error {
	resp, err := s.do(ctx, http.MethodHead, s.objectURL("", nil), nil, 0, "", nil)
	if err != nil {
		return fmt.Errorf("s3 storage: %w", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode != http.StatusNotFound:
		return fmt.Errorf("s3 storage: bucket %q: %s", s.bucket, resp.Status)
	}
	resp, err = s.do(ctx, http.MethodPut, s.objectURL("", nil), nil, 0, "", nil)
	if err != nil {
		return fmt.Errorf("s3 storage: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return responseError("create bucket", s.bucket, resp)
	}
	resp.Body.Close()
	return nil
}

// Put implements Storage. A body that can seek is hashed first so the
// server checks its integrity; anything else is sent unsigned.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if !validKey(key) {
		return fmt.Errorf("s3 storage: invalid key %q", key)
	}
	if size < 0 {
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("s3 put %q: %w", key, err)
		}
		r, size = bytes.NewReader(b), int64(len(b))
	}
	hash := unsignedPayload
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			h := sha256.New()
			if _, err := io.CopyN(h, rs, size); err != nil {
				return fmt.Errorf("s3 put %q: %w", key, err)
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return fmt.Errorf("s3 put %q: %w", key, err)
			}
			hash = hex.EncodeToString(h.Sum(nil))
		}
	}
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	var body io.Reader = io.LimitReader(r, size)
	if size == 0 {
		body = http.NoBody
	}
	resp, err := s.do(ctx, http.MethodPut, s.objectURL(key, nil), body, size, hash, header)
	if err != nil {
		return fmt.Errorf("s3 put %q: %w", key, err)
	}
	if resp.StatusCode/100 != 2 {
		return responseError("put", key, resp)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// stat returns what a HEAD request says about key.
func (s *S3) stat(ctx context.Context, key string) (Info, error) {
	if !validKey(key) {
		return Info{}, fmt.Errorf("s3 head %q: %w", key, errNotExist)
	}
	resp, err := s.do(ctx, http.MethodHead, s.objectURL(key, nil), nil, 0, "", nil)
	if err != nil {
		return Info{}, fmt.Errorf("s3 head %q: %w", key, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Info{}, responseError("head", key, resp)
	}
	resp.Body.Close()
	info := Info{Key: key, Size: resp.ContentLength, ETag: resp.Header.Get("ETag"), ContentType: resp.Header.Get("Content-Type")}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = t.UTC()
	}
	if info.ETag != "" && !strings.HasPrefix(info.ETag, `"`) && !strings.HasPrefix(info.ETag, `W/`) {
		info.ETag = `"` + info.ETag + `"`
	}
	return info, nil
}

// Open implements Storage: a HEAD now, and a GET (with Range when not
// reading from the start) on the first Read after each Seek.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	info, err := s.stat(ctx, key)
	if err != nil {
		return nil, err
	}
	return &s3Object{s: s, ctx: ctx, info: info}, nil
}

// s3Object reads an object lazily. It keeps the context of Open because
// io.Reader has no place for one; it lives no longer than one request.
type s3Object struct {
	s    *S3
	ctx  context.Context
	info Info
	off  int64
	body io.ReadCloser
}

func (o *s3Object) Info() Info { return o.info }

func (o *s3Object) Read(p []byte) (int, error) {
	if o.off >= o.info.Size {
		return 0, io.EOF
	}
	if o.body == nil {
		header := http.Header{}
		if o.off > 0 {
			header.Set("Range", "bytes="+strconv.FormatInt(o.off, 10)+"-")
		}
		// The object must still be the one HEAD described; a replaced one
		// fails rather than mixing two versions in one response.
		if o.info.ETag != "" {
			header.Set("If-Match", o.info.ETag)
		}
		resp, err := o.s.do(o.ctx, http.MethodGet, o.s.objectURL(o.info.Key, nil), nil, 0, "", header)
		if err != nil {
			return 0, fmt.Errorf("s3 get %q: %w", o.info.Key, err)
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
			return 0, responseError("get", o.info.Key, resp)
		}
		if o.off > 0 && resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return 0, fmt.Errorf("s3 get %q: server ignored the range", o.info.Key)
		}
		o.body = resp.Body
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
	resp, err := s.do(ctx, http.MethodDelete, s.objectURL(key, nil), nil, 0, "", nil)
	if err != nil {
		return fmt.Errorf("s3 delete %q: %w", key, err)
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return responseError("delete", key, resp)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// listResult is the body of a ListObjectsV2 response.
type listResult struct {
	Contents []struct {
		Key          string `xml:"Key"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int64  `xml:"Size"`
	} `xml:"Contents"`
	IsTruncated           bool   `xml:"IsTruncated"`
	NextContinuationToken string `xml:"NextContinuationToken"`
}

// List implements Storage with ListObjectsV2, following continuation
// tokens until the listing is complete.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "max-keys": {"1000"}}
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := s.do(ctx, http.MethodGet, s.objectURL("", q), nil, 0, "", nil)
		if err != nil {
			return nil, fmt.Errorf("s3 list %q: %w", prefix, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, responseError("list", prefix, resp)
		}
		var res listResult
		err = xml.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&res)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("s3 list %q: %w", prefix, err)
		}
		for _, c := range res.Contents {
			info := Info{Key: c.Key, Size: c.Size, ETag: c.ETag}
			if t, err := time.Parse(time.RFC3339Nano, c.LastModified); err == nil {
				info.ModTime = t.UTC()
			}
			out = append(out, info)
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			return out, nil
		}
		token = res.NextContinuationToken
	}
}

package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/files"
	"github.com/underhood/underhood/files/s3test"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// fileEnv is a running API with a file service over one storage backend,
// a superuser, alice and bob, and a "docs" collection:
//
//	attachments  file, 5 files of at most 64 KiB, any type
//	image        file, one JPEG/PNG/GIF/WebP with thumbs
//	secret       file, protected
//	papers       file, 5 files (for the per-request limit)
//
// Owners see their docs; anyone sees public ones, except that a
// protected file of a public doc is for its owner only (the view rule
// tests @request.context).
type fileEnv struct {
	*env
	files   *files.Service
	store   files.Storage
	staging string
	coll    string // id of docs
}

// fileBackends are the storages the file suite runs on.
var fileBackends = []struct {
	name string
	open func(t *testing.T) files.Storage
}{
	{"local", func(t *testing.T) files.Storage {
		st, err := files.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"s3", func(t *testing.T) files.Storage {
		srv := s3test.Start(t)
		cfg, err := files.ParseS3URL(srv.URL("uh-" + underhood.RandomString(12)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Allow = srv.Allow // versitygw listens on loopback
		st, err := files.NewS3(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.EnsureBucket(context.Background()); err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// eachFileBackend runs fn once per storage backend.
func eachFileBackend(t *testing.T, opts files.Options, fn func(t *testing.T, e *fileEnv)) {
	for _, b := range fileBackends {
		t.Run(b.name, func(t *testing.T) { fn(t, newFileEnv(t, b.open(t), opts)) })
	}
}

func newFileEnv(t *testing.T, st files.Storage, opts files.Options) *fileEnv {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), log)
	if opts.MaxFiles == 0 {
		opts.MaxFiles = 8
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = -1
	}
	staging := t.TempDir()
	opts.StagingDir = staging
	fileSvc := files.New(st, records, log, opts)
	t.Cleanup(fileSvc.Close)
	authSvc := auth.New(records, log)
	api := rest.NewHandler(rest.Deps{Records: records, Auth: authSvc, Log: log, Files: fileSvc})
	srv := httptest.NewServer(server.New(server.Deps{API: api, Auth: authSvc, Log: log}))
	t.Cleanup(srv.Close)
	e := &fileEnv{env: &env{t: t, srv: srv, records: records, tokens: map[string]string{}, ids: map[string]string{}},
		files: fileSvc, store: st, staging: staging}
	if l, ok := st.(*files.Local); ok {
		e.staging = l.StagingDir()
	}

	// The cheapest bcrypt cost: the suite signs in a dozen accounts, and
	// the default cost makes that slow under the race detector.
	for _, name := range []string{"_superusers", "users"} {
		c, err := records.Collection(name)
		if err != nil {
			t.Fatal(err)
		}
		c = c.Clone()
		c.Field("password").Cost = 4
		if _, err := records.SaveCollection(ctx, records.SystemRequest().Auth, c.ID, c); err != nil {
			t.Fatalf("lower the password cost of %s: %v", name, err)
		}
	}
	if _, err := records.Create(ctx, records.SystemRequest(), "_superusers", map[string]any{
		"email": "admin@example.com", "password": "1234567890", "passwordConfirm": "1234567890"}, ""); err != nil {
		t.Fatal(err)
	}
	e.tokens["su"] = e.login("_superusers", "admin@example.com", "1234567890")
	for _, name := range []string{"alice", "bob"} {
		st, body := e.do("POST", "/api/collections/users/records", "", map[string]any{
			"email": name + "@example.com", "password": "secret-" + name, "passwordConfirm": "secret-" + name, "name": name})
		if st != 200 {
			t.Fatalf("create %s: %d %s", name, st, body)
		}
		e.ids[name] = jsonField(t, body, "id")
		e.tokens[name] = e.login("users", name+"@example.com", "secret-"+name)
	}
	status, body := e.do("POST", "/api/collections", "su", map[string]any{
		"name": "docs", "type": "base",
		"listRule":   "owner = @request.auth.id || public = true",
		"viewRule":   `owner = @request.auth.id || (public = true && @request.context != "protectedFile")`,
		"createRule": "@request.auth.id != '' && owner = @request.auth.id",
		"updateRule": "owner = @request.auth.id", "deleteRule": "owner = @request.auth.id",
		"fields": []map[string]any{
			{"name": "title", "type": "text", "required": true},
			{"name": "public", "type": "bool"},
			{"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
			{"name": "attachments", "type": "file", "maxSelect": 5, "maxSize": 64 << 10},
			{"name": "image", "type": "file", "maxSelect": 1, "maxSize": 1 << 20,
				"mimeTypes": []string{"image/jpeg", "image/png", "image/gif", "image/webp"},
				"thumbs":    []string{"50x50", "40x0", "0x30", "30x20t", "30x20b", "30x30f"}},
			{"name": "secret", "type": "file", "maxSelect": 1, "protected": true},
			{"name": "papers", "type": "file", "maxSelect": 5},
		},
	})
	if status != 200 {
		t.Fatalf("create docs: %d %s", status, body)
	}
	e.coll = jsonField(t, body, "id")
	return e
}

// part is one part of a multipart body: a file when filename is set.
type part struct {
	name, filename string
	data           []byte
}

func file(name, filename string, data []byte) part { return part{name, filename, data} }
func value(name, v string) part                    { return part{name: name, data: []byte(v)} }

func multipartBody(t *testing.T, parts ...part) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, p.name, p.filename))
			// The client's type is never trusted: always claim PNG.
			h.Set("Content-Type", "image/png")
			w, err = mw.CreatePart(h)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// upload sends a multipart create (id "") or update as who.
func (e *fileEnv) upload(method, id, who string, parts ...part) (int, map[string]any, string) {
	e.t.Helper()
	body, ct := multipartBody(e.t, parts...)
	path := "/api/collections/docs/records"
	if id != "" {
		path += "/" + id
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	req.Header.Set("Content-Type", ct)
	if who != "" {
		req.Header.Set("Authorization", e.tokens[who])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, m, string(b)
}

// get fetches a URL path and returns the response with its body read.
func (e *fileEnv) get(path string, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func (e *fileEnv) fileURL(id, name string) string {
	return "/api/files/docs/" + id + "/" + name
}

// stored lists the keys in the storage (after queued deletions ran).
func (e *fileEnv) stored() []string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.files.WaitRemovals(ctx); err != nil {
		e.t.Fatal(err)
	}
	list, err := e.store.List(ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	var keys []string
	for _, i := range list {
		keys = append(keys, i.Key)
	}
	sort.Strings(keys)
	return keys
}

// staged lists what is left in the staging directory.
func (e *fileEnv) staged() []string {
	entries, _ := os.ReadDir(e.staging)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

func names(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		var out []string
		for _, s := range x {
			out = append(out, s.(string))
		}
		return out
	}
	return nil
}

func pngImage(t testing.TB, w, h int) []byte { return encodeImage(t, "png", w, h) }

func encodeImage(t testing.TB, format string, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), 90, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func webpImage(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../files/testdata/gopher.webp")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const htmlPage = "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"

func TestFilesUploadAndDownload(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		pdf := []byte("%PDF-1.4\n%âãÏÓ\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
		img := pngImage(t, 120, 80)
		status, rec, body := e.upload("POST", "", "alice",
			value("@jsonPayload", `{"title":"first","owner":"`+e.ids["alice"]+`"}`),
			file("attachments", "Quarterly Report.PDF", pdf),
			file("attachments", "notes.txt", []byte("plain notes\n")),
			file("image", "photo.png", img))
		if status != 200 {
			t.Fatalf("create with files = %d %s", status, body)
		}
		id := rec["id"].(string)
		att := names(rec["attachments"])
		imgName, _ := rec["image"].(string)
		if len(att) != 2 || !strings.HasPrefix(att[0], "quarterly_report_") || !strings.HasSuffix(att[0], ".pdf") ||
			!strings.HasPrefix(att[1], "notes_") || !strings.HasPrefix(imgName, "photo_") {
			t.Fatalf("stored names = %q, %q", att, imgName)
		}
		want := []string{e.coll + "/" + id + "/" + att[0], e.coll + "/" + id + "/" + att[1], e.coll + "/" + id + "/" + imgName}
		sort.Strings(want)
		if got := e.stored(); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("storage = %q, want %q", got, want)
		}

		tests := []struct {
			name, path  string
			wantType    string
			wantBody    []byte
			disposition string
		}{
			{"pdf", e.fileURL(id, att[0]), "application/pdf", pdf, "inline"},
			{"text", e.fileURL(id, att[1]), "text/plain; charset=utf-8", []byte("plain notes\n"), "inline"},
			{"image", e.fileURL(id, imgName), "image/png", img, "inline"},
			{"download", e.fileURL(id, imgName) + "?download=1", "image/png", img, "attachment"},
		}
		for _, tt := range tests {
			res, b := e.get(tt.path, nil)
			if res.StatusCode != 200 || !bytes.Equal(b, tt.wantBody) {
				t.Errorf("%s: GET = %d (%d bytes), want 200 with the uploaded bytes", tt.name, res.StatusCode, len(b))
				continue
			}
			h := res.Header
			if h.Get("Content-Type") != tt.wantType || !strings.HasPrefix(h.Get("Content-Disposition"), tt.disposition) ||
				!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("ETag") == "" || h.Get("Last-Modified") == "" {
				t.Errorf("%s: headers %v", tt.name, h)
			}
		}
	})
}

func TestFilesActiveContentIsInert(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		svg := `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`
		status, rec, body := e.upload("POST", "", "alice", value("title", "active"), value("owner", e.ids["alice"]),
			file("attachments", "page.html", []byte(htmlPage)), file("attachments", "logo.svg", []byte(svg)))
		if status != 200 {
			t.Fatalf("create = %d %s", status, body)
		}
		id := rec["id"].(string)
		for i, wantType := range []string{"text/html; charset=utf-8", "image/svg+xml"} {
			res, _ := e.get(e.fileURL(id, names(rec["attachments"])[i]), nil)
			h := res.Header
			if res.StatusCode != 200 || h.Get("Content-Type") != wantType || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
				!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: %d %v, want an attachment with CSP sandbox and nosniff", wantType, res.StatusCode, h)
			}
		}
	})
}

func TestFilesRangeAndConditionalRequests(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		content := bytes.Repeat([]byte("0123456789"), 5000)
		status, rec, body := e.upload("POST", "", "alice", value("title", "r"), value("owner", e.ids["alice"]),
			file("attachments", "digits.txt", content))
		if status != 200 {
			t.Fatalf("create = %d %s", status, body)
		}
		path := e.fileURL(rec["id"].(string), names(rec["attachments"])[0])
		full, _ := e.get(path, nil)
		etag, lastMod := full.Header.Get("ETag"), full.Header.Get("Last-Modified")
		tests := []struct {
			name     string
			header   http.Header
			wantCode int
			wantBody []byte
		}{
			{"range", http.Header{"Range": {"bytes=10-19"}}, 206, content[10:20]},
			{"open range", http.Header{"Range": {"bytes=49990-"}}, 206, content[49990:]},
			{"suffix range", http.Header{"Range": {"bytes=-3"}}, 206, content[len(content)-3:]},
			{"unsatisfiable", http.Header{"Range": {"bytes=99999-"}}, 416, nil},
			{"if-none-match", http.Header{"If-None-Match": {etag}}, 304, nil},
			{"if-none-match other", http.Header{"If-None-Match": {`"nope"`}}, 200, content},
			{"if-modified-since", http.Header{"If-Modified-Since": {lastMod}}, 304, nil},
			{"if-range current", http.Header{"Range": {"bytes=0-4"}, "If-Range": {etag}}, 206, content[:5]},
			{"if-range stale", http.Header{"Range": {"bytes=0-4"}, "If-Range": {`"old"`}}, 200, content},
		}
		for _, tt := range tests {
			res, b := e.get(path, tt.header)
			if res.StatusCode != tt.wantCode || (tt.wantBody != nil && !bytes.Equal(b, tt.wantBody)) {
				t.Errorf("%s: %d (%d bytes), want %d (%d bytes)", tt.name, res.StatusCode, len(b), tt.wantCode, len(tt.wantBody))
			}
		}
		req, _ := http.NewRequest("HEAD", e.srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.ContentLength != int64(len(content)) {
			t.Errorf("HEAD = %d, length %d", res.StatusCode, res.ContentLength)
		}
	})
}

func TestFilesThumbnails(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		tests := []struct {
			format string
			data   []byte
			// thumb size → wanted width×height
			sizes    map[string][2]int
			wantType string
		}{
			{"png", pngImage(t, 200, 100), map[string][2]int{"50x50": {50, 50}, "40x0": {40, 20}, "0x30": {60, 30}, "30x20t": {30, 20}, "30x20b": {30, 20}, "30x30f": {30, 15}, "100x100": {100, 100}}, "image/png"},
			{"jpeg", encodeImage(t, "jpeg", 90, 120), map[string][2]int{"50x50": {50, 50}, "30x30f": {23, 30}}, "image/jpeg"},
			{"gif", encodeImage(t, "gif", 64, 64), map[string][2]int{"40x0": {40, 40}}, "image/gif"},
			{"webp", webpImage(t), map[string][2]int{"50x50": {50, 50}, "0x30": {23, 30}}, "image/png"},
		}
		for _, tt := range tests {
			status, rec, body := e.upload("POST", "", "alice", value("title", tt.format), value("owner", e.ids["alice"]),
				file("image", "pic."+tt.format, tt.data))
			if status != 200 {
				t.Fatalf("%s: create = %d %s", tt.format, status, body)
			}
			id, name := rec["id"].(string), rec["image"].(string)
			for size, dims := range tt.sizes {
				res, b := e.get(e.fileURL(id, name)+"?thumb="+size, nil)
				cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
				if res.StatusCode != 200 || err != nil || cfg.Width != dims[0] || cfg.Height != dims[1] || res.Header.Get("Content-Type") != tt.wantType {
					t.Errorf("%s thumb %s = %d %s %dx%d (%v), want %s %dx%d", tt.format, size, res.StatusCode,
						res.Header.Get("Content-Type"), cfg.Width, cfg.Height, err, tt.wantType, dims[0], dims[1])
				}
			}
			// A size the field does not list gets the original.
			if res, b := e.get(e.fileURL(id, name)+"?thumb=77x77", nil); res.StatusCode != 200 || !bytes.Equal(b, tt.data) {
				t.Errorf("%s: unlisted thumb size = %d, want the original", tt.format, res.StatusCode)
			}
		}

		// A thumbnail is made once: a second request reads the stored one,
		// and concurrent first requests share one generation.
		status, rec, body := e.upload("POST", "", "alice", value("title", "once"), value("owner", e.ids["alice"]),
			file("image", "once.png", pngImage(t, 300, 300)))
		if status != 200 {
			t.Fatalf("create = %d %s", status, body)
		}
		path := e.fileURL(rec["id"].(string), rec["image"].(string)) + "?thumb=50x50"
		before := e.files.ThumbsMade()
		var wg sync.WaitGroup
		etags := make([]string, 20)
		for i := range etags {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := http.Get(e.srv.URL + path)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				etags[i] = res.Header.Get("ETag")
			}()
		}
		wg.Wait()
		res, _ := e.get(path, nil)
		if made := e.files.ThumbsMade() - before; made != 1 {
			t.Errorf("20 concurrent first requests and one more made %d thumbnails, want 1", made)
		}
		for _, et := range etags {
			if et != res.Header.Get("ETag") {
				t.Errorf("thumbnail ETags differ: %q vs %q", et, res.Header.Get("ETag"))
				break
			}
		}
		thumbKey := e.coll + "/" + rec["id"].(string) + "/thumbs_" + rec["image"].(string) + "/50x50_" + rec["image"].(string)
		if !contains(e.stored(), thumbKey) {
			t.Errorf("storage lacks the cached thumbnail %s", thumbKey)
		}

		// A file that is not an image is served as it is.
		status, rec, _ = e.upload("POST", "", "alice", value("title", "pdf"), value("owner", e.ids["alice"]),
			file("attachments", "doc.pdf", []byte("%PDF-1.4 not an image")))
		if status != 200 {
			t.Fatal(status)
		}
		if res, b := e.get(e.fileURL(rec["id"].(string), names(rec["attachments"])[0])+"?thumb=100x100", nil); res.StatusCode != 200 || string(b) != "%PDF-1.4 not an image" {
			t.Errorf("thumb of a PDF = %d %q, want the PDF", res.StatusCode, b)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestFilesModifiersReplaceAndDelete(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		status, rec, body := e.upload("POST", "", "alice", value("title", "m"), value("owner", e.ids["alice"]),
			file("attachments", "alpha.txt", []byte("a")), file("attachments", "beta.txt", []byte("b")),
			file("image", "one.png", pngImage(t, 10, 10)))
		if status != 200 {
			t.Fatalf("create = %d %s", status, body)
		}
		id := rec["id"].(string)
		a, b := names(rec["attachments"])[0], names(rec["attachments"])[1]
		oldImage := rec["image"].(string)
		dir := e.coll + "/" + id + "/"
		// A thumbnail of the old image, which must go with it.
		if res, _ := e.get(e.fileURL(id, oldImage)+"?thumb=50x50", nil); res.StatusCode != 200 {
			t.Fatal(res.StatusCode)
		}

		// docs+ appends, docs- removes by name, a new single file replaces
		// the old one: the dropped files leave the storage after the commit.
		status, rec, body = e.upload("PATCH", id, "alice",
			file("attachments+", "gamma.txt", []byte("c")), value("attachments-", a),
			file("image", "two.png", pngImage(t, 12, 12)))
		if status != 200 {
			t.Fatalf("update = %d %s", status, body)
		}
		att := names(rec["attachments"])
		newImage := rec["image"].(string)
		if len(att) != 2 || att[0] != b || !strings.HasPrefix(att[1], "gamma_") || newImage == oldImage {
			t.Fatalf("after update: attachments %q, image %q", att, newImage)
		}
		want := []string{dir + att[0], dir + att[1], dir + newImage}
		sort.Strings(want)
		if got := e.stored(); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("storage after update = %q, want %q", got, want)
		}
		if res, _ := e.get(e.fileURL(id, a), nil); res.StatusCode != 404 {
			t.Errorf("removed file = %d, want 404", res.StatusCode)
		}

		// +docs prepends; a JSON body may list kept names, not new ones.
		status, rec, _ = e.upload("PATCH", id, "alice", file("+attachments", "first.txt", []byte("f")))
		if status != 200 || !strings.HasPrefix(names(rec["attachments"])[0], "first_") {
			t.Errorf("prepend: %d %v", status, rec["attachments"])
		}
		if st, body := e.do("PATCH", "/api/collections/docs/records/"+id, "alice", map[string]any{"attachments": []string{b, "forged_abcdefghij.txt"}}); st != 400 || !strings.Contains(body, "validation_invalid_file") {
			t.Errorf("naming a file never uploaded = %d %s, want 400 validation_invalid_file", st, body)
		}
		if st, body := e.do("PATCH", "/api/collections/docs/records/"+id, "alice", map[string]any{"attachments": []string{b}, "image": nil}); st != 200 {
			t.Errorf("keep one by name, clear image = %d %s", st, body)
		}
		if got := e.stored(); strings.Join(got, " ") != dir+b {
			t.Errorf("storage after keeping one = %q, want %q", got, dir+b)
		}

		// Deleting the record deletes its files once the delete committed.
		if st, body := e.do("DELETE", "/api/collections/docs/records/"+id, "alice", nil); st != 204 {
			t.Fatalf("delete = %d %s", st, body)
		}
		if got := e.stored(); len(got) != 0 {
			t.Errorf("storage after delete = %q, want empty", got)
		}
	})
}

func TestFilesProtected(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		mk := func(public bool) (string, string, string) {
			status, rec, body := e.upload("POST", "", "alice", value("title", "p"), value("owner", e.ids["alice"]),
				value("public", fmt.Sprint(public)), file("secret", "secret.txt", []byte("top secret")),
				file("image", "open.png", pngImage(t, 8, 8)))
			if status != 200 {
				t.Fatalf("create = %d %s", status, body)
			}
			return rec["id"].(string), rec["secret"].(string), rec["image"].(string)
		}
		private, secret, open := mk(false)
		public, publicSecret, _ := mk(true)

		if st, _ := e.do("POST", "/api/files/token", "", nil); st != 401 {
			t.Errorf("guest file token = %d, want 401", st)
		}
		token := func(who string) string {
			st, body := e.do("POST", "/api/files/token", who, nil)
			if st != 200 {
				t.Fatalf("file token for %s = %d %s", who, st, body)
			}
			return jsonField(t, body, "token")
		}
		alice, bob, su := token("alice"), token("bob"), token("su")
		tests := []struct {
			name     string
			path     string
			wantCode int
		}{
			{"owner's token", e.fileURL(private, secret) + "?token=" + alice, 200},
			{"superuser's token", e.fileURL(private, secret) + "?token=" + su, 200},
			{"no token", e.fileURL(private, secret), 403},
			{"another user's token", e.fileURL(private, secret) + "?token=" + bob, 403},
			{"an auth token is not a file token", e.fileURL(private, secret) + "?token=" + e.tokens["alice"], 403},
			{"garbage token", e.fileURL(private, secret) + "?token=abc.def.ghi", 403},
			{"unprotected file of a private record, no token", e.fileURL(private, open), 200},
			// The view rule lets guests see the public record, but not in
			// the protectedFile context.
			{"protected file of a public record, guest", e.fileURL(public, publicSecret), 403},
			{"protected file of a public record, owner", e.fileURL(public, publicSecret) + "?token=" + alice, 200},
		}
		for _, tt := range tests {
			res, b := e.get(tt.path, nil)
			if res.StatusCode != tt.wantCode {
				t.Errorf("%s: %d %s, want %d", tt.name, res.StatusCode, b, tt.wantCode)
			}
			if tt.wantCode == 200 && strings.Contains(tt.path, "secret") && string(b) != "top secret" {
				t.Errorf("%s: body %q", tt.name, b)
			}
		}
		// A revoked account's file tokens stop working.
		if st, body := e.do("PATCH", "/api/collections/users/records/"+e.ids["alice"], "alice", map[string]any{
			"oldPassword": "secret-alice", "password": "another-pass-1", "passwordConfirm": "another-pass-1"}); st != 200 {
			t.Fatalf("change password = %d %s", st, body)
		}
		if res, _ := e.get(e.fileURL(private, secret)+"?token="+alice, nil); res.StatusCode != 403 {
			t.Errorf("file token after a password change = %d, want 403", res.StatusCode)
		}
	})
}

func TestFilesNotFound(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		status, rec, body := e.upload("POST", "", "alice", value("title", "n"), value("owner", e.ids["alice"]),
			file("attachments", "x.txt", []byte("x")))
		if status != 200 {
			t.Fatalf("create = %d %s", status, body)
		}
		id, name := rec["id"].(string), names(rec["attachments"])[0]
		_, other, _ := e.upload("POST", "", "bob", value("title", "o"), value("owner", e.ids["bob"]), file("attachments", "y.txt", []byte("y")))
		for _, path := range []string{
			"/api/files/docs/" + id + "/nope.txt",
			"/api/files/docs/nosuchrecord123/" + name,
			"/api/files/nosuchcoll/" + id + "/" + name,
			"/api/files/docs/" + id + "/" + names(other["attachments"])[0], // another record's file
			"/api/files/docs/" + id + "/..%2F..%2F" + name,
			"/api/files/docs/" + id + "/thumbs_" + name + "%2F100x100_" + name,
			"/api/files/users/" + e.ids["alice"] + "/" + name,
		} {
			if res, _ := e.get(path, nil); res.StatusCode != 404 {
				t.Errorf("GET %s = %d, want 404", path, res.StatusCode)
			}
		}
		if res, _ := e.get("/api/files/docs/"+id+"/"+name, nil); res.StatusCode != 200 {
			t.Errorf("the file itself = %d", res.StatusCode)
		}
	})
}

// TestFilesBadInput sends what a client should not: each is refused with
// 400 or 413 and leaves nothing in the storage or the staging directory.
func TestFilesBadInput(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		owner := value("owner", e.ids["alice"])
		title := value("title", "bad")
		thousand := []part{title, owner}
		for i := 0; i < 1000; i++ {
			thousand = append(thousand, file("attachments", fmt.Sprintf("f%d.txt", i), []byte("x")))
		}
		var spread []part
		spread = append(spread, title, owner)
		for i := 0; i < 5; i++ {
			spread = append(spread, file("attachments", "a.txt", []byte("a")), file("papers", "p.txt", []byte("p")))
		}
		tests := []struct {
			name     string
			parts    []part
			wantCode int
			want     string
		}{
			{"over the field's limit", []part{title, owner, file("attachments", "big.txt", bytes.Repeat([]byte("x"), 64<<10+1))}, 400, "validation_file_size_limit"},
			{"over the default 5 MiB", []part{title, owner, file("papers", "big.txt", bytes.Repeat([]byte("x"), 5<<20+1))}, 400, "validation_file_size_limit"},
			{"html named .png into an image field", []part{title, owner, file("image", "cat.png", []byte(htmlPage))}, 400, "validation_invalid_mime_type"},
			{"html named .png into an any-type field", []part{title, owner, file("attachments", "cat.png", []byte(htmlPage))}, 400, "validation_invalid_mime_type"},
			{"svg named .jpg", []part{title, owner, file("attachments", "x.jpg", []byte(`<svg onload="alert(1)"></svg>`))}, 400, "validation_invalid_mime_type"},
			{"pdf into an image field", []part{title, owner, file("image", "x.png", []byte("%PDF-1.4"))}, 400, "validation_invalid_mime_type"},
			{"path traversal name", []part{title, owner, file("attachments", "../../../etc/passwd", []byte("root:x:0:0"))}, 400, "validation_invalid_file_name"},
			{"windows traversal name", []part{title, owner, file("attachments", `..\..\boot.ini`, []byte("x"))}, 400, "validation_invalid_file_name"},
			{"1,000 files in one request", thousand, 400, "validation_too_many_values"},
			{"more files than one request may carry", spread, 400, "Too many files in one request"},
			{"two files for a single file field", []part{title, owner, file("image", "a.png", pngImage(t, 2, 2)), file("image", "b.png", pngImage(t, 2, 2))}, 400, "validation_too_many_values"},
			{"empty file", []part{title, owner, file("attachments", "empty.txt", nil)}, 400, "validation_invalid_file"},
			{"file for a text field", []part{title, owner, file("title", "t.txt", []byte("t"))}, 400, "validation_invalid_file"},
			{"file for the remove modifier", []part{title, owner, file("attachments-", "t.txt", []byte("t"))}, 400, "validation_invalid_file"},
			{"valid files, invalid record", []part{owner, file("attachments", "ok.txt", []byte("fine")), file("image", "ok.png", pngImage(t, 4, 4))}, 400, "validation_required"},
			{"valid files, create rule refuses", []part{title, value("owner", e.ids["bob"]), file("attachments", "ok.txt", []byte("fine"))}, 400, "Failed to create record"},
			{"invalid record id", []part{title, owner, value("id", "../../x"), file("attachments", "ok.txt", []byte("fine"))}, 400, "id"},
			{"broken json payload", []part{value("@jsonPayload", "{nope"), file("attachments", "ok.txt", []byte("fine"))}, 400, "invalid formatting"},
		}
		for _, tt := range tests {
			status, _, body := e.upload("POST", "", "alice", tt.parts...)
			if status != tt.wantCode || !strings.Contains(body, tt.want) {
				t.Errorf("%s: %d %.300s, want %d with %q", tt.name, status, body, tt.wantCode, tt.want)
			}
			if got := e.stored(); len(got) != 0 {
				t.Errorf("%s: left %q in the storage", tt.name, got)
			}
			if got := e.staged(); len(got) != 0 {
				t.Errorf("%s: left %q in the staging directory", tt.name, got)
			}
		}

		// An update the rule refuses stores nothing either.
		status, rec, _ := e.upload("POST", "", "alice", title, owner)
		if status != 200 {
			t.Fatal(status)
		}
		if status, _, body := e.upload("PATCH", rec["id"].(string), "bob", file("attachments", "x.txt", []byte("x"))); status != 404 {
			t.Errorf("update by a stranger = %d %s, want 404", status, body)
		}
		if got := e.stored(); len(got) != 0 {
			t.Errorf("refused update left %q", got)
		}
	})
}

// TestFilesOversizedBodyIsNotRead checks that a file over its limit is
// refused as soon as the limit is passed: the server answers without
// reading the rest of a large body.
func TestFilesOversizedBodyIsNotRead(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		const total = 24 << 20
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		var sent int64
		var mu sync.Mutex
		go func() {
			mw.WriteField("title", "big")
			mw.WriteField("owner", e.ids["alice"])
			w, _ := mw.CreateFormFile("attachments", "big.txt")
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for i := 0; i < total/len(chunk); i++ {
				if _, err := w.Write(chunk); err != nil {
					pw.CloseWithError(err)
					return
				}
				mu.Lock()
				sent += int64(len(chunk))
				mu.Unlock()
			}
			mw.Close()
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/collections/docs/records", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", e.tokens["alice"])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		pr.CloseWithError(io.ErrClosedPipe)
		mu.Lock()
		n := sent
		mu.Unlock()
		if res.StatusCode != 400 || !strings.Contains(string(b), "validation_file_size_limit") {
			t.Errorf("oversized upload = %d %s", res.StatusCode, b)
		}
		if n > total/2 {
			t.Errorf("the client had sent %d of %d bytes when the answer came; want the server to stop at the limit", n, total)
		}
		if got := e.stored(); len(got) != 0 {
			t.Errorf("left %q", got)
		}
	})
}

// TestFilesUploadCutOff sends half a multipart body and closes the
// connection's write side: the answer is 400 and nothing stays behind.
func TestFilesUploadCutOff(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		body, ct := multipartBody(t, value("title", "cut"), value("owner", e.ids["alice"]),
			file("attachments", "part.txt", bytes.Repeat([]byte("y"), 40<<10)))
		full := body.Bytes()
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/collections/docs/records HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			e.tokens["alice"], ct, len(full))
		conn.Write(full[:len(full)/2])
		conn.(*net.TCPConn).CloseWrite()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 400 || !strings.Contains(string(b), "invalid formatting") {
			t.Errorf("cut-off upload = %d %s, want 400", res.StatusCode, b)
		}
		if got := e.stored(); len(got) != 0 {
			t.Errorf("left %q in the storage", got)
		}
		if got := e.staged(); len(got) != 0 {
			t.Errorf("left %q in the staging directory", got)
		}
	})
}

func TestFilesCollectionDeleteAndSweep(t *testing.T) {
	eachFileBackend(t, files.Options{OrphanAge: time.Millisecond}, func(t *testing.T, e *fileEnv) {
		ctx := context.Background()
		status, rec, body := e.upload("POST", "", "alice", value("title", "kept"), value("owner", e.ids["alice"]),
			file("image", "keep.png", pngImage(t, 60, 60)))
		if status != 200 {
			t.Fatalf("create = %d %s", status, body)
		}
		id, name := rec["id"].(string), rec["image"].(string)
		if res, _ := e.get(e.fileURL(id, name)+"?thumb=50x50", nil); res.StatusCode != 200 {
			t.Fatal(res.StatusCode)
		}
		// Orphans as a crash would leave them: a file the record does not
		// name, a file of a record that does not exist, and a collection
		// that does not exist.
		for _, key := range []string{e.coll + "/" + id + "/orphan_abcdefghij.png", e.coll + "/" + id + "/thumbs_gone.png/50x50_gone.png",
			e.coll + "/norecord1234567/f.png", "pbc_nocollection/r/f.png"} {
			if err := e.store.Put(ctx, key, strings.NewReader("o"), 1, ""); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
		n, err := e.files.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{e.coll + "/" + id + "/" + name, e.coll + "/" + id + "/thumbs_" + name + "/50x50_" + name}
		if got := e.stored(); n != 4 || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("after the sweep (%d removed): %q, want %q", n, got, want)
		}

		// Truncating and deleting the collection remove its files.
		if st, body := e.do("DELETE", "/api/collections/docs/truncate", "su", nil); st != 204 {
			t.Fatalf("truncate = %d %s", st, body)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(e.stored()) > 0 && time.Now().Before(deadline) {
			// Files stored in the second of the truncate are left to the sweep.
			time.Sleep(100 * time.Millisecond)
			e.files.Sweep(ctx)
		}
		if got := e.stored(); len(got) != 0 {
			t.Errorf("after truncate: %q", got)
		}
		status, _, _ = e.upload("POST", "", "alice", value("title", "again"), value("owner", e.ids["alice"]),
			file("attachments", "z.txt", []byte("z")))
		if status != 200 {
			t.Fatal(status)
		}
		time.Sleep(1100 * time.Millisecond) // past the second of the upload
		if st, body := e.do("DELETE", "/api/collections/docs", "su", nil); st != 204 {
			t.Fatalf("delete collection = %d %s", st, body)
		}
		if got := e.stored(); len(got) != 0 {
			t.Errorf("after deleting the collection: %q", got)
		}
	})
}

func TestFilesSDKStyleJSONPayload(t *testing.T) {
	eachFileBackend(t, files.Options{}, func(t *testing.T, e *fileEnv) {
		// The SDK sends non-file values as one @jsonPayload part after the files.
		status, rec, body := e.upload("POST", "", "alice",
			file("attachments", "one.txt", []byte("1")), file("attachments", "two.txt", []byte("2")),
			value("@jsonPayload", `{"title":"sdk","public":true,"owner":"`+e.ids["alice"]+`"}`))
		if status != 200 || rec["title"] != "sdk" || rec["public"] != true || len(names(rec["attachments"])) != 2 {
			t.Fatalf("create = %d %s", status, body)
		}
		if got := len(e.stored()); got != 2 {
			t.Errorf("stored %d files, want 2", got)
		}
	})
}

package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/server"
)

// notFound is the server's 404 body.
const notFound = `{"status":404,"message":"The requested resource wasn't found.","data":{}}`

// secret is the content of a file outside the site's folder, which no
// request may ever read.
const secret = "outside-secret"

// newSite writes a website into a temporary folder, with a secret file
// next to it (outside it), and returns the folder.
func newSite(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	site := filepath.Join(base, "public")
	files := map[string]string{
		"index.html":               "<h1>home</h1>",
		"docs/index.html":          "<h1>docs</h1>",
		"empty/.keep":              "",
		"style.css":                "body{}",
		"app.js":                   "console.log('plain')",
		"app.js.br":                "BROTLI-BODY",
		"app.js.gz":                "GZIP-BODY",
		"only-gz.css":              "p{}",
		"only-gz.css.gz":           "GZIP-CSS",
		"module.mjs":               "export {}",
		"data.json":                `{"a":1}`,
		"logo.svg":                 "<svg/>",
		"mod.wasm":                 "\x00asm",
		"font.woff2":               "wOF2",
		"pic.png":                  "\x89PNG",
		"blob.unknownext":          "???",
		"app.3f9a1c2b.js":          "hashed",
		"index-BwL2kQ9x.css":       "hashed",
		"main.3f9a1c2b.chunk.js":   "hashed",
		"a1b2c3d4e5f60718293a.svg": "hashed",
		"page.3f9a1c2b.html":       "html is never immutable",
		"jquery-datepicker.js":     "word",
		"logo-20240101.png":        "date",
		"bundle2024.js":            "version",
		"jquery-3.7.1.min.js":      "version",
		".env":                     "SECRET=1",
		".git/config":              "[core]",
		"sub/.hidden":              "hidden",
		"back\\slash.txt":          "backslash",
		"api/health":               "a file shadowing the API",
		"API/health":               "a file shadowing the API in another case",
		"_/index.html":             "a file shadowing the dashboard",
	}
	for name, body := range files {
		p := filepath.Join(site, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"leak.txt":   filepath.Join(outside, "secret.txt"), // absolute, outside
		"leak2.txt":  "../outside/secret.txt",              // relative, outside
		"leakdir":    "../outside",                         // a directory outside
		"inside.css": "style.css",                          // stays inside: served
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(site, name)); err != nil {
			t.Skipf("symlinks unsupported here: %v", err)
		}
	}
	return site
}

// staticServer is the whole server with the site of newSite, and a
// client that neither follows redirects nor decompresses, so that tests
// see exactly what the server sent.
type staticServer struct {
	*testServer
	client *http.Client
}

func newStaticServer(t *testing.T, site string, opts server.StaticOptions) *staticServer {
	t.Helper()
	st, err := server.NewStatic(site, opts)
	if err != nil {
		t.Fatalf("NewStatic(%s) = %v", site, err)
	}
	ts := newServer(t, server.Deps{Static: st})
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &staticServer{testServer: ts, client: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (s *staticServer) get(t *testing.T, method, path string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res, string(b)
}

func TestStatic(t *testing.T) {
	site := newSite(t)
	type want struct {
		status  int
		body    string            // exact, except after a 301 or 416
		headers map[string]string // exact values; "" means absent
	}
	tests := []struct {
		name         string
		method, path string
		headers      map[string]string
		want         want
	}{
		// Content types by extension.
		{"root is index.html", "GET", "/", nil, want{200, "<h1>home</h1>", map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}}},
		{"css", "GET", "/style.css", nil, want{200, "body{}", map[string]string{"Content-Type": "text/css; charset=utf-8"}}},
		{"js", "GET", "/app.js", nil, want{200, "console.log('plain')", map[string]string{"Content-Type": "text/javascript; charset=utf-8", "Content-Encoding": ""}}},
		{"mjs", "GET", "/module.mjs", nil, want{200, "export {}", map[string]string{"Content-Type": "text/javascript; charset=utf-8"}}},
		{"json", "GET", "/data.json", nil, want{200, `{"a":1}`, map[string]string{"Content-Type": "application/json"}}},
		{"svg", "GET", "/logo.svg", nil, want{200, "<svg/>", map[string]string{"Content-Type": "image/svg+xml"}}},
		{"wasm", "GET", "/mod.wasm", nil, want{200, "\x00asm", map[string]string{"Content-Type": "application/wasm"}}},
		{"font", "GET", "/font.woff2", nil, want{200, "wOF2", map[string]string{"Content-Type": "font/woff2"}}},
		{"image", "GET", "/pic.png", nil, want{200, "\x89PNG", map[string]string{"Content-Type": "image/png"}}},
		{"unknown extension downloads", "GET", "/blob.unknownext", nil, want{200, "???", map[string]string{"Content-Type": "application/octet-stream"}}},
		{"security headers stay", "GET", "/style.css", nil, want{200, "body{}", map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN"}}},

		// Directories: their index.html, never a listing.
		{"directory with slash", "GET", "/docs/", nil, want{200, "<h1>docs</h1>", nil}},
		{"directory without slash redirects", "GET", "/docs?x=1", nil, want{301, "", map[string]string{"Location": "/docs/?x=1"}}},
		{"directory without index", "GET", "/empty/", nil, want{404, notFound, nil}},
		{"directory without index nor slash", "GET", "/empty", nil, want{404, notFound, nil}},
		{"unknown path", "GET", "/nope", nil, want{404, notFound, nil}},

		// Caching: immutable for fingerprinted names only.
		{"dot hash", "GET", "/app.3f9a1c2b.js", nil, want{200, "hashed", map[string]string{"Cache-Control": "public, max-age=31536000, immutable"}}},
		{"dash hash", "GET", "/index-BwL2kQ9x.css", nil, want{200, "hashed", map[string]string{"Cache-Control": "public, max-age=31536000, immutable"}}},
		{"hash before suffix", "GET", "/main.3f9a1c2b.chunk.js", nil, want{200, "hashed", map[string]string{"Cache-Control": "public, max-age=31536000, immutable"}}},
		{"hash as name", "GET", "/a1b2c3d4e5f60718293a.svg", nil, want{200, "hashed", map[string]string{"Cache-Control": "public, max-age=31536000, immutable"}}},
		{"hashed html revalidates", "GET", "/page.3f9a1c2b.html", nil, want{200, "html is never immutable", map[string]string{"Cache-Control": "no-cache"}}},
		{"word revalidates", "GET", "/jquery-datepicker.js", nil, want{200, "word", map[string]string{"Cache-Control": "no-cache"}}},
		{"date revalidates", "GET", "/logo-20240101.png", nil, want{200, "date", map[string]string{"Cache-Control": "no-cache"}}},
		{"word and year revalidates", "GET", "/bundle2024.js", nil, want{200, "version", map[string]string{"Cache-Control": "no-cache"}}},
		{"version revalidates", "GET", "/jquery-3.7.1.min.js", nil, want{200, "version", map[string]string{"Cache-Control": "no-cache"}}},

		// Precompressed variants.
		{"br preferred", "GET", "/app.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"}, want{200, "BROTLI-BODY", map[string]string{"Content-Encoding": "br", "Content-Type": "text/javascript; charset=utf-8", "Vary": "Accept-Encoding"}}},
		{"gzip only", "GET", "/app.js", map[string]string{"Accept-Encoding": "gzip"}, want{200, "GZIP-BODY", map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/javascript; charset=utf-8"}}},
		{"br refused by q=0", "GET", "/app.js", map[string]string{"Accept-Encoding": "br;q=0, gzip;q=0.5"}, want{200, "GZIP-BODY", map[string]string{"Content-Encoding": "gzip"}}},
		{"star", "GET", "/app.js", map[string]string{"Accept-Encoding": "*"}, want{200, "BROTLI-BODY", map[string]string{"Content-Encoding": "br"}}},
		{"identity only", "GET", "/app.js", map[string]string{"Accept-Encoding": "identity"}, want{200, "console.log('plain')", map[string]string{"Content-Encoding": "", "Vary": "Accept-Encoding"}}},
		{"br accepted but only gz exists", "GET", "/only-gz.css", map[string]string{"Accept-Encoding": "br, gzip"}, want{200, "GZIP-CSS", map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/css; charset=utf-8"}}},
		{"no variant", "GET", "/style.css", map[string]string{"Accept-Encoding": "br, gzip"}, want{200, "body{}", map[string]string{"Content-Encoding": ""}}},

		// Range requests.
		{"range", "GET", "/app.js", map[string]string{"Range": "bytes=0-6"}, want{206, "console", map[string]string{"Content-Range": "bytes 0-6/20"}}},
		{"range of a variant", "GET", "/app.js", map[string]string{"Range": "bytes=0-5", "Accept-Encoding": "br"}, want{206, "BROTLI", map[string]string{"Content-Range": "bytes 0-5/11", "Content-Encoding": "br"}}},
		{"unsatisfiable range", "GET", "/app.js", map[string]string{"Range": "bytes=100-200"}, want{416, "", nil}},

		// Hidden files and traversal.
		{"dotfile", "GET", "/.env", nil, want{404, notFound, nil}},
		{"dot directory", "GET", "/.git/config", nil, want{404, notFound, nil}},
		{"nested dotfile", "GET", "/sub/.hidden", nil, want{404, notFound, nil}},
		{"encoded dotfile", "GET", "/%2eenv", nil, want{404, notFound, nil}},
		{"backslash", "GET", "/back%5Cslash.txt", nil, want{404, notFound, nil}},
		{"symlink to a file outside", "GET", "/leak.txt", nil, want{404, notFound, nil}},
		{"relative symlink outside", "GET", "/leak2.txt", nil, want{404, notFound, nil}},
		{"through a symlinked directory outside", "GET", "/leakdir/secret.txt", nil, want{404, notFound, nil}},
		{"symlink inside", "GET", "/inside.css", nil, want{200, "body{}", map[string]string{"Content-Type": "text/css; charset=utf-8"}}},

		// The API and the dashboard are never shadowed.
		{"api answers", "GET", "/api/health", nil, want{200, "GET /api/health as guest", nil}},
		{"api post answers", "POST", "/api/health", nil, want{200, "POST /api/health as guest", nil}},
		{"api folder in another case", "GET", "/API/health", nil, want{404, notFound, nil}},
		{"dashboard path is not a file", "GET", "/_/", nil, want{404, notFound, nil}},
		{"dashboard file is not served", "GET", "/_/index.html", nil, want{404, notFound, nil}},

		// Methods.
		{"head", "HEAD", "/style.css", nil, want{200, "", map[string]string{"Content-Type": "text/css; charset=utf-8", "Content-Length": "6"}}},
		{"post", "POST", "/style.css", nil, want{405, `{"status":405,"message":"Method not allowed.","data":{}}`, map[string]string{"Allow": "GET, HEAD"}}},
		{"put on unknown path", "PUT", "/nope", nil, want{405, `{"status":405,"message":"Method not allowed.","data":{}}`, map[string]string{"Allow": "GET, HEAD"}}},
		{"delete", "DELETE", "/", nil, want{405, `{"status":405,"message":"Method not allowed.","data":{}}`, nil}},
	}
	s := newStaticServer(t, site, server.StaticOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := s.get(t, tt.method, tt.path, tt.headers)
			// The bodies of a redirect and a refused range are
			// net/http's; only their status and headers matter.
			bodyMatters := tt.want.status != 301 && tt.want.status != 416
			if res.StatusCode != tt.want.status || bodyMatters && body != tt.want.body {
				t.Fatalf("%s %s = %d %q, want %d %q", tt.method, tt.path, res.StatusCode, body, tt.want.status, tt.want.body)
			}
			for k, v := range tt.want.headers {
				got := res.Header.Get(k)
				if k == "Vary" {
					// CORS adds its own Vary values.
					got = strings.Join(res.Header.Values(k), ", ")
					if strings.Contains(got, v) {
						continue
					}
				}
				if got != v {
					t.Errorf("%s %s header %s = %q, want %q", tt.method, tt.path, k, got, v)
				}
			}
		})
	}
}

func TestStaticConditional(t *testing.T) {
	site := newSite(t)
	s := newStaticServer(t, site, server.StaticOptions{})
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(site, "style.css"), mtime, mtime); err != nil {
		t.Fatal(err)
	}

	res, _ := s.get(t, "GET", "/style.css", nil)
	etag := res.Header.Get("ETag")
	if etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("GET /style.css ETag = %q, want a strong validator", etag)
	}
	if got, want := res.Header.Get("Last-Modified"), "Fri, 02 Jan 2026 03:04:05 GMT"; got != want {
		t.Errorf("GET /style.css Last-Modified = %q, want %q", got, want)
	}
	brRes, _ := s.get(t, "GET", "/app.js", map[string]string{"Accept-Encoding": "br"})
	plainRes, _ := s.get(t, "GET", "/app.js", nil)
	if brRes.Header.Get("ETag") == plainRes.Header.Get("ETag") {
		t.Errorf("br and plain /app.js share ETag %q; a cache would mix the bodies", brRes.Header.Get("ETag"))
	}

	tests := []struct {
		name    string
		headers map[string]string
		status  int
		body    string
	}{
		{"matching etag", map[string]string{"If-None-Match": etag}, 304, ""},
		{"other etag", map[string]string{"If-None-Match": `"other"`}, 200, "body{}"},
		{"not modified since", map[string]string{"If-Modified-Since": "Fri, 02 Jan 2026 03:04:05 GMT"}, 304, ""},
		{"modified since", map[string]string{"If-Modified-Since": "Thu, 01 Jan 2026 00:00:00 GMT"}, 200, "body{}"},
		{"if-range current", map[string]string{"Range": "bytes=0-3", "If-Range": etag}, 206, "body"},
		{"if-range stale", map[string]string{"Range": "bytes=0-3", "If-Range": `"old"`}, 200, "body{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := s.get(t, "GET", "/style.css", tt.headers)
			if res.StatusCode != tt.status || body != tt.body {
				t.Errorf("GET /style.css with %v = %d %q, want %d %q", tt.headers, res.StatusCode, body, tt.status, tt.body)
			}
		})
	}

	// A changed file gets a new ETag: the old one no longer matches.
	if err := os.WriteFile(filepath.Join(site, "style.css"), []byte("body{color:red}"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, body := s.get(t, "GET", "/style.css", map[string]string{"If-None-Match": etag})
	if res.StatusCode != 200 || body != "body{color:red}" {
		t.Errorf("GET /style.css after a change with the old ETag = %d %q, want 200 with the new content", res.StatusCode, body)
	}
}

func TestStaticIndexFallback(t *testing.T) {
	site := newSite(t)
	navigation := map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
	script := map[string]string{"Accept": "*/*"}
	tests := []struct {
		name     string
		fallback bool
		path     string
		headers  map[string]string
		status   int
		body     string
	}{
		{"route without flag", false, "/users/42", navigation, 404, notFound},
		{"route", true, "/users/42", navigation, 200, "<h1>home</h1>"},
		{"route fetched by a script", true, "/users/42", script, 200, "<h1>home</h1>"},
		{"dotted route navigated to", true, "/users/jane.doe", navigation, 200, "<h1>home</h1>"},
		{"missing asset", true, "/assets/app.0a1b2c3d.js", script, 404, notFound},
		{"missing image", true, "/missing.png", map[string]string{"Accept": "image/avif,image/webp,*/*;q=0.8"}, 404, notFound},
		{"directory without index", true, "/empty/", navigation, 200, "<h1>home</h1>"},
		{"existing file wins", true, "/style.css", navigation, 200, "body{}"},
		{"existing directory wins", true, "/docs/", navigation, 200, "<h1>docs</h1>"},
		{"dotfile stays hidden", true, "/.env", navigation, 404, notFound},
		{"outside symlink stays hidden", true, "/leak.txt", script, 404, notFound},
		{"dashboard stays reserved", true, "/_/collections", navigation, 404, notFound},
	}
	// The unknown paths with an extension, whose answer depends on Accept.
	dependsOnAccept := map[string]bool{"/users/jane.doe": true, "/assets/app.0a1b2c3d.js": true, "/missing.png": true, "/leak.txt": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStaticServer(t, site, server.StaticOptions{IndexFallback: tt.fallback})
			res, body := s.get(t, "GET", tt.path, tt.headers)
			if res.StatusCode != tt.status || body != tt.body {
				t.Errorf("GET %s (fallback %v) = %d %q, want %d %q", tt.path, tt.fallback, res.StatusCode, body, tt.status, tt.body)
			}
			// Whether a dotted path gets the index depends on Accept, so
			// a cache must key those answers by it.
			varyAccept := slices.ContainsFunc(res.Header.Values("Vary"), func(v string) bool {
				return slices.Contains(strings.Split(strings.ReplaceAll(v, " ", ""), ","), "Accept")
			})
			if want := tt.fallback && dependsOnAccept[tt.path]; varyAccept != want {
				t.Errorf("GET %s Vary = %q, want Accept listed: %v", tt.path, res.Header.Values("Vary"), want)
			}
			if res.StatusCode == 200 && tt.path != "/style.css" && res.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("GET %s Cache-Control = %q, want no-cache for HTML", tt.path, res.Header.Get("Cache-Control"))
			}
		})
	}
}

// TestStaticTraversal sends paths that try to leave the folder, both
// through the whole server (which may redirect a path it cleans, but
// must never answer with the secret) and straight to the handler, which
// must refuse them itself.
func TestStaticTraversal(t *testing.T) {
	site := newSite(t)
	paths := []string{
		"/../outside/secret.txt",
		"/%2e%2e/outside/secret.txt",
		"/%2E%2E/outside/secret.txt",
		"/docs/../../outside/secret.txt",
		"/docs/%2e%2e/%2e%2e/outside/secret.txt",
		"/..%2foutside%2fsecret.txt",
		"/..%5coutside%5csecret.txt",
		"/docs%5c..%5c..%5coutside%5csecret.txt",
		"/leakdir/secret.txt",
		"/./leak.txt",
		"//outside/secret.txt",
	}
	for _, fallback := range []bool{false, true} {
		s := newStaticServer(t, site, server.StaticOptions{IndexFallback: fallback})
		st, err := server.NewStatic(site, server.StaticOptions{IndexFallback: fallback})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			res, body := s.get(t, "GET", p, nil)
			if strings.Contains(body, secret) || res.StatusCode == 200 && body != "<h1>home</h1>" {
				t.Errorf("GET %s (fallback %v) = %d %q, want no file outside the folder", p, fallback, res.StatusCode, body)
			}

			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path = mustUnescape(t, p)
			rec := httptest.NewRecorder()
			st.ServeHTTP(rec, req)
			if rec.Code != 404 || strings.Contains(rec.Body.String(), secret) {
				t.Errorf("Static.ServeHTTP(%q) (fallback %v) = %d %q, want 404", req.URL.Path, fallback, rec.Code, rec.Body.String())
			}
		}
	}
}

func mustUnescape(t *testing.T, p string) string {
	t.Helper()
	req := httptest.NewRequest("GET", p, nil)
	return req.URL.Path
}

func TestNewStaticRefusesWhatIsNotAFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing"), file} {
		if _, err := server.NewStatic(p, server.StaticOptions{}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("NewStatic(%s) = %v, want an error naming the path", p, err)
		}
	}
}

// TestWithoutStaticUnknownPathsAre404 keeps the server's behaviour when no
// site is configured.
func TestWithoutStaticUnknownPathsAre404(t *testing.T) {
	ts := newServer(t, server.Deps{})
	for _, method := range []string{"GET", "POST"} {
		res, body := ts.do(t, method, "/index.html", nil, nil)
		if res.StatusCode != 404 || body != notFound {
			t.Errorf("%s /index.html without a site = %d %s, want 404 %s", method, res.StatusCode, body, notFound)
		}
	}
}

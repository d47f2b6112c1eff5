package server

import (
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Cache-Control values of static files (docs/static.md).
const (
	// cacheImmutable is for fingerprinted assets: their name changes
	// whenever their content does, so a copy never goes stale.
	cacheImmutable = "public, max-age=31536000, immutable"
	// cacheRevalidate is for everything else: the browser keeps a copy
	// but asks each time, and the ETag makes the answer a cheap 304.
	cacheRevalidate = "no-cache"
)

// StaticOptions tune a Static handler.
type StaticOptions struct {
	// IndexFallback answers unknown paths with the root index.html, for
	// single-page apps that route in the browser (see Static).
	IndexFallback bool
	// Log receives the error when the folder cannot be opened; nil is
	// slog.Default.
	Log *slog.Logger
}

// Static serves a website from a folder of the local file system at /.
//
// Every file is opened through an os.Root of the folder, so no path,
// symlink included, reaches a file outside it. Names with a segment that
// starts with a dot (.env, .git/, ..) are never served, nor are paths
// under /api/ and /_/, which belong to the server. A directory is served
// as its index.html, never listed.
//
// With IndexFallback, a GET or HEAD of a path that names no file answers
// with the root index.html, unless its last segment has an extension
// (a dot) and the request is not a browser navigation (its Accept does
// not list text/html): a missing script or image then stays a 404 rather
// than HTML the browser cannot use.
type Static struct {
	dir      string
	fallback bool
	log      *slog.Logger
}

// NewStatic returns the handler of the website in dir. It checks that dir
// is a directory now; the folder is reopened for every request, so that
// replacing it while the server runs takes effect at once.
func NewStatic(dir string, opts StaticOptions) (*Static, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("static site %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("static site: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("static site %s: not a directory", abs)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Static{dir: abs, fallback: opts.IndexFallback, log: opts.Log}, nil
}

// Dir is the absolute path of the folder served.
func (s *Static) Dir() string { return s.dir }

// IndexFallback reports whether unknown paths get the root index.html.
func (s *Static) IndexFallback() bool { return s.fallback }

func (s *Static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if reservedPath(r.URL.Path) {
		handleNotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	name, ok := staticName(r.URL.Path)
	if !ok {
		handleNotFound(w, r)
		return
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		// The folder was removed or made unreadable while the server
		// runs: the operator needs to know, the client does not.
		s.log.ErrorContext(r.Context(), "open static site", "dir", s.dir,
			"request_id", requestIDFrom(r.Context()), "err", err)
		writeError(w, http.StatusInternalServerError, "Something went wrong while processing your request.")
		return
	}
	defer root.Close()

	fi, err := root.Stat(name)
	switch {
	case err == nil && fi.Mode().IsRegular():
		serveStaticFile(w, r, root, name, fi)
		return
	case err == nil && fi.IsDir():
		// A directory named without its trailing slash: redirect, so
		// that the relative links of its index.html resolve inside it.
		if _, err := root.Stat(path.Join(name, "index.html")); err == nil {
			target := r.URL.EscapedPath() + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
	}
	if !s.fallback {
		handleNotFound(w, r)
		return
	}
	if path.Ext(r.URL.Path) != "" {
		// Whether the fallback applies depends on Accept; a cache must
		// not give the index to a script that asks for the same URL.
		w.Header().Add("Vary", "Accept")
		if !acceptsHTML(r) {
			handleNotFound(w, r)
			return
		}
	}
	fi, err = root.Stat("index.html")
	if err != nil || !fi.Mode().IsRegular() {
		handleNotFound(w, r)
		return
	}
	serveStaticFile(w, r, root, "index.html", fi)
}

// reservedPath reports whether p belongs to the server rather than the
// website: the API and the dashboard are never shadowed by a file. Case
// is ignored, because on a case-insensitive file system /API/health
// would otherwise reach the file api/health.
func reservedPath(p string) bool {
	for _, prefix := range []string{"/api", "/_"} {
		if strings.EqualFold(p, prefix) || len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)+1], prefix+"/") {
			return true
		}
	}
	return false
}

// staticName turns a URL path into a slash-separated name relative to the
// site's folder, with index.html appended to a directory. It refuses
// names that are never served: a segment that is empty or starts with a
// dot (hidden files, "." and ".."), a backslash (a separator on Windows)
// or a NUL byte. os.Root would stop an escape anyway; refusing here keeps
// hidden files hidden and makes the answer a plain 404.
func staticName(urlPath string) (string, bool) {
	name, ok := strings.CutPrefix(urlPath, "/")
	if !ok || strings.ContainsAny(name, "\\\x00") {
		return "", false
	}
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg[0] == '.' {
			return "", false
		}
	}
	return name, true
}

// acceptsHTML reports whether r is a browser navigation, which lists
// text/html in Accept; scripts, styles and images do not.
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/html") {
			return true
		}
	}
	return false
}

// serveStaticFile writes the file name of root, whose information is fi,
// or its precompressed variant, with caching headers; http.ServeContent
// answers conditional and range requests.
func serveStaticFile(w http.ResponseWriter, r *http.Request, root *os.Root, name string, fi fs.FileInfo) {
	h := w.Header()
	h.Set("Content-Type", staticContentType(name))
	if fingerprinted(path.Base(name)) {
		h.Set("Cache-Control", cacheImmutable)
	} else {
		h.Set("Cache-Control", cacheRevalidate)
	}
	// Every file may have a precompressed variant, so a cache must key
	// every answer by Accept-Encoding.
	h.Add("Vary", "Accept-Encoding")

	served, encoding := name, ""
	for _, enc := range []struct{ coding, suffix string }{{"br", ".br"}, {"gzip", ".gz"}} {
		if !acceptsEncoding(r, enc.coding) {
			continue
		}
		vfi, err := root.Stat(name + enc.suffix)
		if err == nil && vfi.Mode().IsRegular() {
			served, encoding, fi = name+enc.suffix, enc.coding, vfi
			break
		}
	}
	f, err := root.Open(served)
	if err != nil {
		// Removed since the Stat: as if it had never been there.
		handleNotFound(w, r)
		return
	}
	defer f.Close()
	if encoding != "" {
		h.Set("Content-Encoding", encoding)
	}
	// A strong validator from size and modification time, as most file
	// servers use: hashing every file on every request costs too much,
	// and a deploy changes the time. The encoding is part of it, since
	// each variant is a different body.
	etag := `"` + strconv.FormatInt(fi.Size(), 36) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 36)
	if encoding != "" {
		etag += "-" + encoding
	}
	h.Set("ETag", etag+`"`)
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// acceptsEncoding reports whether the Accept-Encoding of r admits coding:
// named, or covered by "*", with a q-value above zero.
func acceptsEncoding(r *http.Request, coding string) bool {
	star := false
	for _, v := range r.Header.Values("Accept-Encoding") {
		for item := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			ok := qAboveZero(params)
			switch {
			case strings.EqualFold(name, coding):
				return ok
			case name == "*":
				star = ok
			}
		}
	}
	return star
}

// qAboveZero reports whether the parameters of an Accept-Encoding item
// leave it acceptable: no q, or a q greater than zero.
func qAboveZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
	}
	return true
}

// staticTypes are the content types of the files websites are made of.
// They are fixed here rather than read from the system's mime.types,
// which differs between machines (and has served .js as text/plain).
var staticTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".cjs":         "text/javascript; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".xml":         "application/xml",
	".txt":         "text/plain; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".wasm":        "application/wasm",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ttf":         "font/ttf",
	".otf":         "font/otf",
	".pdf":         "application/pdf",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
	".mp3":         "audio/mpeg",
	".ogg":         "audio/ogg",
	".wav":         "audio/wav",
}

// staticContentType is the content type of the file name by its
// extension: staticTypes, then the mime package, then a download.
func staticContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := staticTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// fingerprinted reports whether the file name carries a hash of its
// content, so that a new version always has a new name (docs/static.md):
// the name without its extension has, after a "." or "-", a hash
// segment: 8 to 64 letters, digits or underscores in which letters and
// digits alternate at least twice ("app.3f9a1c2b.js",
// "index-BwL2kQ9x.css", "main.3f9a1c2b.chunk.js"); or the whole name
// without its extension is 16 to 64 hexadecimal digits of the same mix
// (webpack's default asset names). HTML is never fingerprinted: it is the
// entry point that names the other files.
//
// Words, dates and versions ("jquery-datepicker.js", "logo-20240101.png",
// "bundle2024.js") are not hashes. A real hash that looks like one of
// them is only revalidated, which costs a 304; a plain name taken for a
// hash would keep a stale file in browsers for a year.
func fingerprinted(name string) bool {
	ext := path.Ext(name)
	if ext == ".html" || ext == ".htm" {
		return false
	}
	stem := strings.TrimSuffix(name, ext)
	if stem == "" {
		return false
	}
	if len(stem) >= 16 && len(stem) <= 64 && strings.Trim(stem, "0123456789abcdefABCDEF") == "" && hashLike(stem) {
		return true
	}
	segs := strings.FieldsFunc(stem, func(c rune) bool { return c == '.' || c == '-' })
	if len(segs) < 2 {
		return false
	}
	for _, seg := range segs[1:] {
		if len(seg) >= 8 && len(seg) <= 64 && hashLike(seg) {
			return true
		}
	}
	return false
}

// hashLike reports whether s has only letters, digits and underscores,
// and changes from letter to digit or back at least twice: "3f9a" does,
// "bundle2024" only once.
func hashLike(s string) bool {
	const none, letter, digit = 0, 1, 2
	last, changes := none, 0
	for _, c := range s {
		class := none
		switch {
		case c >= '0' && c <= '9':
			class = digit
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			class = letter
		case c == '_':
			continue
		default:
			return false
		}
		if last != none && class != last {
			changes++
		}
		last = class
	}
	return changes >= 2
}

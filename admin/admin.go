// Package admin owns the dashboard: the web interface at /_/ that a
// superuser opens in a browser. Its files (plain ES modules, HTML and CSS
// under ui/) are embedded in the binary and served as they are: there is
// no build step, and nothing is loaded from another host. The dashboard
// speaks only the public REST API, as any script could.
package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where the server mounts the dashboard.
const Prefix = "/_/"

// ui holds the dashboard's files.
//
//go:embed ui
var ui embed.FS

// contentSecurityPolicy allows only the dashboard's own files: no inline
// script or style, no other host, never framed.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'"

// file is one embedded file, read once.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the dashboard under Prefix.
type Handler struct {
	files map[string]file // by path relative to ui/, "index.html" included
}

// New reads the embedded files and returns the dashboard's handler.
func New() (*Handler, error) {
	h := &Handler{files: map[string]file{}}
	err := fs.WalkDir(ui, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := ui.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.files[strings.TrimPrefix(p, "ui/")] = file{
			body:        body,
			contentType: contentTypeOf(p),
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard files: %w", err)
	}
	if _, ok := h.files["index.html"]; !ok {
		return nil, fmt.Errorf("dashboard files: no index.html")
	}
	return h, nil
}

// contentTypeOf names the types of the dashboard's files itself, so that
// they do not depend on the machine's MIME tables (a JavaScript module
// served as text/plain does not run).
func contentTypeOf(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// ServeHTTP answers GET and HEAD with the file the path names, or with
// index.html for any other path under Prefix: the dashboard routes on the
// client side.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, Prefix)), "/")
	f, ok := h.files[name]
	if !ok {
		f = h.files["index.html"]
	}
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	// The files change with the binary, not with time: the browser asks
	// again every time and gets a 304 while the ETag matches.
	hdr.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDashboardFiles(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantType           string
		wantBody           string // a substring
	}{
		{"the dashboard", "GET", "/_/", 200, "text/html; charset=utf-8", `<script type="module" src="/_/app.js">`},
		{"a module", "GET", "/_/app.js", 200, "text/javascript; charset=utf-8", "import "},
		{"a view module", "GET", "/_/views/signin.js", 200, "text/javascript; charset=utf-8", "export function signInPage"},
		{"the style sheet", "GET", "/_/app.css", 200, "text/css; charset=utf-8", "prefers-color-scheme: dark"},
		{"the icon", "GET", "/_/icon.svg", 200, "image/svg+xml", "<svg"},
		{"an unknown page", "GET", "/_/collections/posts", 200, "text/html; charset=utf-8", `<div id="app"`},
		{"a path that climbs out", "GET", "/_/../admin.go", 200, "text/html; charset=utf-8", `<div id="app"`},
		{"the embedded folder's name", "GET", "/_/ui/app.js", 200, "text/html; charset=utf-8", `<div id="app"`},
		{"HEAD", "HEAD", "/_/app.css", 200, "text/css; charset=utf-8", ""},
		{"POST", "POST", "/_/", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			res := w.Result()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("Content-Type"); tt.wantType != "" && got != tt.wantType {
				t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, got, tt.wantType)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("%s %s: body does not contain %q", tt.method, tt.path, tt.wantBody)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
				"X-Content-Type-Options":  "nosniff",
			} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s %s: %s %q, want %q", tt.method, tt.path, k, got, want)
				}
			}
		})
	}
}

// A browser that has the file gets a 304 without the body.
func TestDashboardRevalidates(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/_/app.js", nil))
	etag := w.Result().Header.Get("ETag")
	if etag == "" || w.Result().Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /_/app.js headers %v, want an ETag and Cache-Control: no-cache", w.Result().Header)
	}
	r := httptest.NewRequest("GET", "/_/app.js", nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("GET /_/app.js with its ETag = %d with %d bytes, want 304 without a body", w.Code, w.Body.Len())
	}
}

// No file of the dashboard holds inline script or style, which its
// Content-Security-Policy would block.
func TestDashboardHasNoInlineCode(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range h.files {
		body := string(f.body)
		for _, bad := range []string{"<style", "style=", "javascript:", "onclick=", "onload=", "innerHTML", "eval("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
		if strings.Contains(body, "<script") && !strings.Contains(body, `<script type="module" src="/_/`) {
			t.Errorf("%s has a script that is not one of the dashboard's modules", name)
		}
		for _, external := range []string{"http://", "https://", "//fonts.", "//cdn"} {
			if strings.Contains(body, external) && !strings.Contains(body, `xmlns="http://www.w3.org/2000/svg"`) {
				t.Errorf("%s refers to another host (%q): everything must be embedded", name, external)
			}
		}
	}
}

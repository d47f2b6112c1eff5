package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// get fetches url as a browser navigation and returns the status, the
// Cache-Control header and the body.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return res.StatusCode, res.Header.Get("Cache-Control"), string(b)
}

// TestServePublic: serve publishes ./uh_public when it exists, or the
// folder --public names, and says so when it starts.
func TestServePublic(t *testing.T) {
	work := t.TempDir()
	writeSite := func(dir, title string) {
		t.Helper()
		for name, body := range map[string]string{
			"index.html":             "<title>" + title + "</title>",
			"assets/app.3f9a1c2b.js": "console.log(1)",
			"api/health":             "must not shadow the API",
		} {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeSite(filepath.Join(work, "uh_public"), "default")
	other := filepath.Join(work, "other")
	writeSite(other, "other")
	t.Chdir(work)

	t.Run("default folder", func(t *testing.T) {
		srv := startRun(t, t.TempDir(), noEnv)
		wantBanner := "├─ Static:    " + srv.base + "/ from " + filepath.Join(work, "uh_public") + "\n"
		if !strings.Contains(srv.stdout.String(), wantBanner) {
			t.Errorf("banner = %q, want it to contain %q", srv.stdout.String(), wantBanner)
		}
		if status, cache, body := get(t, srv.base+"/"); status != 200 || body != "<title>default</title>" || cache != "no-cache" {
			t.Errorf("GET / = %d %q %q, want 200 no-cache <title>default</title>", status, cache, body)
		}
		if status, cache, _ := get(t, srv.base+"/assets/app.3f9a1c2b.js"); status != 200 || cache != "public, max-age=31536000, immutable" {
			t.Errorf("GET /assets/app.3f9a1c2b.js = %d %q, want 200 and immutable", status, cache)
		}
		if status, _, body := get(t, srv.base+"/pricing"); status != 404 {
			t.Errorf("GET /pricing without --index-fallback = %d %q, want 404", status, body)
		}
		if status, _, body := get(t, srv.base+"/api/health"); status != 200 || strings.Contains(body, "shadow") {
			t.Errorf("GET /api/health = %d %q, want the API's answer", status, body)
		}
	})

	t.Run("flag with fallback", func(t *testing.T) {
		srv := startRun(t, t.TempDir(), noEnv, "--public", other, "--index-fallback")
		wantBanner := "├─ Static:    " + srv.base + "/ from " + other + " (unknown paths: index.html)\n"
		if !strings.Contains(srv.stdout.String(), wantBanner) {
			t.Errorf("banner = %q, want it to contain %q", srv.stdout.String(), wantBanner)
		}
		if status, _, body := get(t, srv.base+"/pricing"); status != 200 || body != "<title>other</title>" {
			t.Errorf("GET /pricing with --index-fallback = %d %q, want 200 <title>other</title>", status, body)
		}
	})

	t.Run("environment", func(t *testing.T) {
		env := map[string]string{"UH_PUBLIC": other, "UH_INDEX_FALLBACK": "1"}
		srv := startRun(t, t.TempDir(), func(k string) string { return env[k] })
		if status, _, body := get(t, srv.base+"/pricing"); status != 200 || body != "<title>other</title>" {
			t.Errorf("GET /pricing with UH_PUBLIC and UH_INDEX_FALLBACK = %d %q, want 200 <title>other</title>", status, body)
		}
	})

	t.Run("none", func(t *testing.T) {
		srv := startRun(t, t.TempDir(), noEnv, "--public=")
		if strings.Contains(srv.stdout.String(), "Static:") {
			t.Errorf("banner with --public= = %q, want no static site", srv.stdout.String())
		}
		if status, _, _ := get(t, srv.base+"/"); status != 404 {
			t.Errorf("GET / with --public= = %d, want 404", status)
		}
	})

	errs := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"missing folder", []string{"--public", filepath.Join(work, "nope")}, nil, filepath.Join(work, "nope")},
		{"fallback without a site", []string{"--public=", "--index-fallback"}, nil, "--index-fallback needs a website folder"},
		{"bad UH_INDEX_FALLBACK", nil, map[string]string{"UH_INDEX_FALLBACK": "sometimes"}, `UH_INDEX_FALLBACK: "sometimes"`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"underhood", "serve", "--http", "127.0.0.1:0", "--dir", t.TempDir()}, tt.args...)
			err := run(context.Background(), args, func(k string) string { return tt.env[k] }, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run(%q) = %v, want an error containing %q", args, err, tt.wantErr)
			}
		})
	}
}

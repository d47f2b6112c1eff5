package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// serveWithStdout runs "serve" in-process on a free port and returns its
// base URL and its stdout so far, once it is healthy.
func serveWithStdout(t *testing.T, dir string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"underhood", "serve", "--http", "127.0.0.1:0", "--dir", dir}, noEnv, nil, stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down within 15s")
		}
	})
	started := regexp.MustCompile(`Server started at (http://\S+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := started.FindStringSubmatch(stdout.String()); m != nil {
			waitHealthy(t, m[1])
			return m[1], stdout
		}
	}
	t.Fatalf("serve did not start; stdout %q stderr %q", stdout.String(), stderr.String())
	return "", nil
}

// installLink matches the link to the dashboard's install form; m[1] is
// the server's base URL, m[2] the token.
var installLink = regexp.MustCompile(`(http://\S+)/_/#/install\?token=(\S+)`)

func TestInstallLink(t *testing.T) {
	dir := t.TempDir()
	base, stdout := serveWithStdout(t, dir)
	m := installLink.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("stdout of a first start = %q, want an install link", stdout.String())
	}
	if m[1] != base {
		t.Errorf("install link on %s, want it on %s", m[1], base)
	}
	token, err := url.QueryUnescape(m[2])
	if err != nil || len(token) < 40 {
		t.Fatalf("install token %q: want at least 32 random bytes, encoded", m[2])
	}
	if n := strings.Count(stdout.String(), "install?token="); n != 1 {
		t.Errorf("install link printed %d times, want once", n)
	}

	// The dashboard's form posts to /api/install; the API also serves a
	// form of its own there for browsers without JavaScript, without
	// leaking the token through Referer or caches; a wrong token opens
	// nothing.
	res, err := http.Get(base + "/api/install?token=" + m[2])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), `<form method="post" action="/api/install">`) ||
		res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("GET install link = %d %v\n%s, want the form with no-referrer, no-store and a strict CSP", res.StatusCode, res.Header, page)
	}
	if res, err := http.Get(base + "/api/install?token=wrong"); err != nil || res.StatusCode != 403 {
		t.Errorf("GET install with a wrong token = %v %v, want 403", res.StatusCode, err)
	}

	install := func(body map[string]any) (int, map[string]any) {
		t.Helper()
		return call(t, "POST", base+"/api/install", "", body)
	}
	good := map[string]any{"token": token, "email": "first@example.com", "password": "first-password-1", "passwordConfirm": "first-password-1"}
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for kk, vv := range good {
			b[kk] = vv
		}
		b[k] = v
		return b
	}
	tests := []struct {
		name       string
		body       map[string]any
		wantStatus int
	}{
		{"wrong token", with("token", strings.Repeat("A", len(token))), 403},
		{"no token", with("token", ""), 403},
		{"short password", with("password", "short"), 400},
		{"mismatched confirmation", with("passwordConfirm", "other-password-1"), 400},
		{"bad email", with("email", "not-an-email"), 400},
		{"right token", good, 200}, // failed attempts did not use the token up
		{"the same token again", with("email", "second@example.com"), 403},
	}
	for _, tt := range tests {
		status, body := install(tt.body)
		if status != tt.wantStatus {
			t.Errorf("%s: POST /api/install = %d %v, want %d", tt.name, status, body, tt.wantStatus)
		}
		if status == 200 && (body["email"] != "first@example.com" || body["password"] != nil || body["tokenKey"] != nil) {
			t.Errorf("%s: POST /api/install answered %v, want the superuser without secrets", tt.name, body)
		}
	}
	if status, body := call(t, "POST", base+"/api/collections/_superusers/auth-with-password", "", map[string]any{"identity": "first@example.com", "password": "first-password-1"}); status != 200 {
		t.Errorf("login as the installed superuser = %d %v, want 200", status, body)
	}
	if status, _ := call(t, "POST", base+"/api/collections/_superusers/auth-with-password", "", map[string]any{"identity": "second@example.com", "password": "first-password-1"}); status != 400 {
		t.Errorf("login as a superuser the used-up link tried to create = %d, want 400", status)
	}
}

func TestInstallLinkNotOfferedOnceASuperuserExists(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("superuser upsert: %v", err)
	}
	base, stdout := serveWithStdout(t, dir)
	if strings.Contains(stdout.String(), "install?token=") {
		t.Errorf("stdout = %q, want no install link when a superuser exists", stdout.String())
	}
	if status, body := call(t, "POST", base+"/api/install", "", map[string]any{"token": "anything", "email": "x@example.com", "password": "xxxxxxxxxx", "passwordConfirm": "xxxxxxxxxx"}); status != 403 {
		t.Errorf("POST /api/install = %d %v, want 403", status, body)
	}
}

// A superuser created with the CLI while the link is open closes it.
func TestInstallLinkClosedByTheCLI(t *testing.T) {
	dir := t.TempDir()
	base, stdout := serveWithStdout(t, dir)
	m := installLink.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("stdout = %q, want an install link", stdout.String())
	}
	token, _ := url.QueryUnescape(m[2])
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("superuser upsert: %v", err)
	}
	if status, body := call(t, "POST", base+"/api/install", "", map[string]any{"token": token, "email": "x@example.com", "password": "xxxxxxxxxx", "passwordConfirm": "xxxxxxxxxx"}); status != 403 {
		t.Errorf("POST /api/install after the CLI made a superuser = %d %v, want 403", status, body)
	}
}

// The form the link opens works without JavaScript: a browser posts it
// form-encoded and gets a page back.
func TestInstallForm(t *testing.T) {
	base, stdout := serveWithStdout(t, t.TempDir())
	m := installLink.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("stdout = %q, want an install link", stdout.String())
	}
	token, _ := url.QueryUnescape(m[2])
	post := func(password string) (int, string) {
		t.Helper()
		res, err := http.PostForm(base+"/api/install", url.Values{"token": {token}, "email": {"form@example.com"}, "password": {password}, "passwordConfirm": {password}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("form post answered %s, want a page", ct)
		}
		return res.StatusCode, string(b)
	}
	if st, page := post("short"); st != 400 || !strings.Contains(page, "password:") || !strings.Contains(page, `value="form@example.com"`) {
		t.Errorf("form post with a short password = %d\n%s\nwant 400, the error and the form again", st, page)
	}
	if st, page := post("form-password-1"); st != 200 || !strings.Contains(page, "form@example.com was created") {
		t.Errorf("form post = %d\n%s\nwant 200 and a confirmation", st, page)
	}
	if st, page := post("form-password-1"); st != 403 || strings.Contains(page, "<form") {
		t.Errorf("form post with a used link = %d\n%s\nwant 403 without a form", st, page)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// syncBuffer collects output written from run's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// noEnv is an empty environment, so a developer's UH_DIR never leaks in.
func noEnv(string) string { return "" }

func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantDir string
		wantN   int
	}{
		{[]string{"upsert", "a@b.c", "pw", "--dir", "/d"}, []string{"upsert", "a@b.c", "pw"}, "/d", 0},
		{[]string{"--dir", "/d", "upsert", "a@b.c", "pw"}, []string{"upsert", "a@b.c", "pw"}, "/d", 0},
		{[]string{"upsert", "--dir=/d", "a@b.c", "-n", "3", "pw"}, []string{"upsert", "a@b.c", "pw"}, "/d", 3},
		{[]string{"x", "--", "--dir", "y"}, []string{"x", "--dir", "y"}, "def", 0},
		{nil, nil, "def", 0},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		dir := fs.String("dir", "def", "")
		n := fs.Int("n", 0, "")
		pos, err := parseInterleaved(fs, tt.args)
		if err != nil {
			t.Errorf("parseInterleaved(%q) error = %v", tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.wantPos, pos); diff != "" || *dir != tt.wantDir || *n != tt.wantN {
			t.Errorf("parseInterleaved(%q) = %q dir=%q n=%d, want %q dir=%q n=%d", tt.args, pos, *dir, *n, tt.wantPos, tt.wantDir, tt.wantN)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterleaved(fs, []string{"a", "--nope"}); err == nil {
		t.Errorf("parseInterleaved with an unknown flag = nil error, want one")
	}
}

func TestRunCommands(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = success
		stdout  string // substring of stdout
	}{
		{"help", []string{"help"}, "", "Usage:"},
		{"-h", []string{"-h"}, "", "Usage:"},
		{"version", []string{"version"}, "", "underhood dev"},
		{"no command", nil, "no command given", ""},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, ""},
		{"unknown flag", []string{"serve", "--nope"}, "flag provided but not defined", ""},
		{"serve with stray argument", []string{"serve", "extra"}, `unexpected argument "extra"`, ""},
		{"superuser without action", []string{"superuser"}, "missing action", ""},
		{"superuser unknown action", []string{"superuser", "promote", "a@b.c"}, `unknown action "promote"`, ""},
		{"superuser without email", []string{"superuser", "upsert"}, "missing email", ""},
		{"upsert without password", []string{"superuser", "upsert", "a@b.c"}, "missing password", ""},
		{"delete with extra argument", []string{"superuser", "delete", "a@b.c", "pw"}, `unexpected argument "pw"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			args := append([]string{"underhood"}, tt.args...)
			args = append(args, "--dir", t.TempDir())
			if len(tt.args) == 0 || tt.args[0] == "help" || tt.args[0] == "-h" || tt.args[0] == "version" {
				args = append([]string{"underhood"}, tt.args...)
			}
			err := run(context.Background(), args, noEnv, nil, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run(%q) = %v, want nil", args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run(%q) = %v, want error containing %q", args, err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", args, stdout.String(), tt.stdout)
			}
		})
	}
}

func TestSuperuserCommands(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		args    []string
		wantErr string
		stdout  string
	}{
		{[]string{"update", "root@example.com", "1234567890"}, `superuser "root@example.com" doesn't exist`, ""},
		{[]string{"delete", "root@example.com"}, `superuser "root@example.com" doesn't exist`, ""},
		{[]string{"create", "root@example.com", "1234567890"}, "", `Successfully created new superuser "root@example.com"!`},
		{[]string{"create", "root@example.com", "1234567890"}, `superuser "root@example.com" already exists`, ""},
		{[]string{"upsert", "root@example.com", "0987654321"}, "", `Successfully saved superuser "root@example.com"!`},
		{[]string{"update", "ROOT@example.com", "1111111111"}, "", `Successfully changed superuser "ROOT@example.com" password!`},
		{[]string{"upsert", "other@example.com", "2222222222"}, "", `Successfully saved superuser "other@example.com"!`},
		{[]string{"create", "not-an-email", "1234567890"}, "email: ", ""},
		{[]string{"delete", "root@example.com"}, "", `Successfully deleted superuser "root@example.com"!`},
		{[]string{"delete", "root@example.com"}, `superuser "root@example.com" doesn't exist`, ""},
	}
	for _, st := range steps {
		var stdout, stderr syncBuffer
		// --dir after the positionals, as an operator would type it.
		args := append(append([]string{"underhood", "superuser"}, st.args...), "--dir", dir)
		err := run(context.Background(), args, noEnv, nil, &stdout, &stderr)
		switch {
		case st.wantErr == "" && err != nil:
			t.Fatalf("run(%q) = %v, want nil", args, err)
		case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
			t.Fatalf("run(%q) = %v, want error containing %q", args, err, st.wantErr)
		}
		if !strings.Contains(stdout.String(), st.stdout) {
			t.Errorf("run(%q) stdout = %q, want it to contain %q", args, stdout.String(), st.stdout)
		}
	}
}

// running is a "serve" started in-process by startRun.
type running struct {
	base     string
	stop     context.CancelFunc
	finished chan struct{} // closed when run has returned
	err      error         // run's result, once finished is closed
	stdout   *syncBuffer
}

// wait returns run's result, or fails the test if it takes over 15s.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.finished:
		return r.err
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down within 15s")
		return nil
	}
}

// startRun runs "serve" in-process on a free port, with the extra
// arguments given, and waits until it is healthy.
func startRun(t *testing.T, dir string, env func(string) string, extra ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	r := &running{stop: cancel, finished: make(chan struct{}), stdout: &stdout}
	args := append([]string{"underhood", "serve", "--http", "127.0.0.1:0", "--dir", dir}, extra...)
	go func() {
		defer close(r.finished)
		r.err = run(ctx, args, env, nil, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		r.wait(t)
	})
	started := regexp.MustCompile(`Server started at (http://\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := started.FindStringSubmatch(stdout.String()); m != nil {
			waitHealthy(t, m[1])
			for _, want := range []string{"├─ REST API:  " + m[1] + "/api/", "├─ Dashboard: " + m[1] + "/_/"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("banner = %q, want %q", stdout.String(), want)
				}
			}
			r.base = m[1]
			return r
		}
		select {
		case <-r.finished:
			t.Fatalf("serve exited early: %v\nstderr:\n%s", r.err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start; stdout %q stderr %q", stdout.String(), stderr.String())
	return nil
}

// waitHealthy polls the health endpoint until it answers 200.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(base + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/api/health never answered 200", base)
}

// call sends a JSON request and decodes the JSON answer.
func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, res.StatusCode, b, err)
		}
	}
	return res.StatusCode, out
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	srv := startRun(t, dir, noEnv)
	base := srv.base

	// A superuser created by the CLI while the server runs can log in at once.
	var stdout syncBuffer
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir}, noEnv, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("superuser upsert: %v", err)
	}
	if want := `Successfully saved superuser "root@example.com"!`; !strings.Contains(stdout.String(), want) {
		t.Errorf("superuser upsert printed %q, want %q", stdout.String(), want)
	}

	status, body := call(t, "POST", base+"/api/collections/_superusers/auth-with-password", "", map[string]any{"identity": "root@example.com", "password": "1234567890"})
	token, _ := body["token"].(string)
	if status != 200 || token == "" {
		t.Fatalf("auth-with-password = %d %v, want 200 with a token", status, body)
	}
	if rec, _ := body["record"].(map[string]any); rec["email"] != "root@example.com" || rec["password"] != nil || rec["tokenKey"] != nil {
		t.Errorf("auth-with-password record = %v, want the email and no password or tokenKey", rec)
	}
	if status, body := call(t, "POST", base+"/api/collections/_superusers/auth-with-password", "", map[string]any{"identity": "root@example.com", "password": "wrong-password"}); status != 400 || body["message"] != "Failed to authenticate." {
		t.Errorf("auth-with-password with a wrong password = %d %v, want 400 Failed to authenticate.", status, body)
	}
	if status, _ := call(t, "GET", base+"/api/collections", "Bearer "+token, nil); status != 200 {
		t.Errorf("GET /api/collections as superuser = %d, want 200", status)
	}
	if status, _ := call(t, "GET", base+"/api/collections", "", nil); status != 401 {
		t.Errorf("GET /api/collections as guest = %d, want 401", status)
	}
	if status, body := call(t, "POST", base+"/api/collections/_superusers/auth-refresh", token, nil); status != 200 || body["token"] == "" {
		t.Errorf("auth-refresh = %d %v, want 200 with a token", status, body)
	}

	srv.stop()
	if err := srv.wait(t); err != nil {
		t.Errorf("run(serve) after cancel = %v, want nil", err)
	}
	if _, err := http.Get(base + "/api/health"); err == nil {
		t.Errorf("server still answers after shutdown")
	}
}

func TestServeEnv(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string {
		return map[string]string{"UH_DIR": dir, "UH_HTTP": "127.0.0.1:0"}[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"underhood", "serve"}, env, nil, &stdout, io.Discard) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "Server started at http://127.0.0.1:") {
		if time.Now().After(deadline) {
			t.Fatalf("serve with UH_HTTP did not start on 127.0.0.1; stdout %q", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stdout.String(), dir) {
		t.Errorf("banner %q does not name UH_DIR %s", stdout.String(), dir)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run(serve) = %v, want nil", err)
	}
}

func TestServeShutdownWaitsForInFlightRequests(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	srv := startRun(t, dir, noEnv)

	// A login whose body is still arriving when shutdown begins.
	body, send := io.Pipe()
	type result struct {
		status int
		err    error
	}
	answered := make(chan result, 1)
	go func() {
		res, err := http.Post(srv.base+"/api/collections/_superusers/auth-with-password", "application/json", body)
		if err != nil {
			answered <- result{err: err}
			return
		}
		res.Body.Close()
		answered <- result{status: res.StatusCode}
	}()
	if _, err := send.Write([]byte(`{"identity":"root@example.com",`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server start on the request

	srv.stop()
	select {
	case <-srv.finished:
		t.Fatalf("serve returned (%v) while a request was in flight", srv.err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := send.Write([]byte(`"password":"1234567890"}`)); err != nil {
		t.Fatal(err)
	}
	send.Close()
	if r := <-answered; r.err != nil || r.status != 200 {
		t.Errorf("in-flight login during shutdown = %d, %v, want 200", r.status, r.err)
	}
	if err := srv.wait(t); err != nil {
		t.Errorf("run(serve) = %v, want nil", err)
	}
}

// TestDefaultDBEnv: $UH_DB sets the database, like every UH_ variable;
// UNDERHOOD_DB, its first name, still works and yields to UH_DB.
func TestDefaultDBEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"UH_DB": "postgres://a/x"}, "postgres://a/x"},
		{map[string]string{"UNDERHOOD_DB": "postgres://b/x"}, "postgres://b/x"},
		{map[string]string{"UH_DB": "postgres://a/x", "UNDERHOOD_DB": "postgres://b/x"}, "postgres://a/x"},
	}
	for _, tt := range tests {
		if got := defaultDB(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("defaultDB(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

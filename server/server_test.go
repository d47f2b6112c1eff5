package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/server"
)

// fakeAuth identifies the tokens it knows; "broken" fails like a database.
type fakeAuth struct {
	mu    sync.Mutex
	calls int
	users map[string]*underhood.Record
}

func (f *fakeAuth) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeAuth) Identify(ctx context.Context, token string) (*underhood.Record, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	token = strings.TrimPrefix(token, "Bearer ")
	if token == "broken" {
		return nil, errors.New("database is on fire")
	}
	if token == "unreachable" {
		return nil, underhood.Errorf(underhood.EUnavailable, "The database is unavailable. Please try again later.")
	}
	if rec, ok := f.users[token]; ok {
		return rec, nil
	}
	return nil, underhood.Errorf(underhood.EUnauthorized, "The request requires valid record authorization token.")
}

// syncBuffer is a log destination safe for the server's goroutines.
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

// api is a stand-in for the REST adapter: it reports what it saw.
func api(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/panic":
		panic("boom")
	case "/api/panic-late":
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("partial"))
		panic("late boom")
	case "/api/body", "/api/batch":
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		w.Write([]byte("read " + strconv.Itoa(len(b))))
		return
	case "/api/stream":
		// An event stream of ten events, 100 ms apart.
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 10 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	who := "guest"
	if rec := underhood.Identity(r.Context()); rec != nil {
		who = rec.ID()
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(r.Method + " " + r.URL.Path + " as " + who))
}

type testServer struct {
	*httptest.Server
	auth    *fakeAuth
	log     *syncBuffer
	handler http.Handler
}

func newServer(t *testing.T, d server.Deps) *testServer {
	t.Helper()
	fa := &fakeAuth{users: map[string]*underhood.Record{
		"alice-token": {Collection: &underhood.Collection{ID: "_pb_users_auth_", Name: "users", Type: underhood.TypeAuth}, Data: map[string]any{"id": "alice"}},
		"root-token":  {Collection: &underhood.Collection{ID: underhood.SuperusersID, Name: underhood.SuperusersName, Type: underhood.TypeAuth}, Data: map[string]any{"id": "root"}},
	}}
	logs := &syncBuffer{}
	d.API = http.HandlerFunc(api)
	d.Auth = fa
	d.Log = slog.New(slog.NewJSONHandler(logs, nil))
	h := server.New(d)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &testServer{Server: ts, auth: fa, log: logs, handler: h}
}

func (ts *testServer) do(t *testing.T, method, path string, headers map[string]string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := ts.Client().Do(req)
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

func TestRoutes(t *testing.T) {
	ts := newServer(t, server.Deps{})
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/api/health", 200, "GET /api/health as guest"},
		{"DELETE", "/api/collections/x", 200, "DELETE /api/collections/x as guest"},
		{"GET", "/", 404, `{"status":404,"message":"The requested resource wasn't found.","data":{}}`},
		{"GET", "/apix", 404, `{"status":404,"message":"The requested resource wasn't found.","data":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res, body := ts.do(t, tt.method, tt.path, nil, nil)
			if res.StatusCode != tt.status || body != tt.body {
				t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, res.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

func TestRecoverPanics(t *testing.T) {
	ts := newServer(t, server.Deps{})
	res, body := ts.do(t, "GET", "/api/panic", nil, nil)
	want := `{"status":500,"message":"Something went wrong while processing your request.","data":{}}`
	if res.StatusCode != 500 || body != want {
		t.Errorf("GET /api/panic = %d %s, want 500 %s", res.StatusCode, body, want)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	logs := ts.log.String()
	if !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "boom") || !strings.Contains(logs, `"status":500`) {
		t.Errorf("log does not record the panic and the 500:\n%s", logs)
	}

	// The server keeps serving after a panic.
	if res, _ := ts.do(t, "GET", "/api/ok", nil, nil); res.StatusCode != 200 {
		t.Errorf("GET /api/ok after a panic = %d, want 200", res.StatusCode)
	}
}

func TestRecoverPanicAfterResponseBegan(t *testing.T) {
	ts := newServer(t, server.Deps{})
	// The status line is already out; the response must be cut short
	// rather than completed with a 500 body appended to it.
	res, err := ts.Client().Get(ts.URL + "/api/panic-late")
	if err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil && strings.Contains(string(b), "Something went wrong") {
			t.Errorf("GET /api/panic-late = %d %q, want an aborted response", res.StatusCode, b)
		}
	}
	if !strings.Contains(ts.log.String(), "late boom") {
		t.Errorf("log does not record the panic:\n%s", ts.log.String())
	}
}

func TestRequestID(t *testing.T) {
	ts := newServer(t, server.Deps{})
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"generated", "", false},
		{"kept when well formed", "edge-proxy-123.abc_def", true},
		{"replaced when malformed", "bad id\twith spaces", false},
		{"replaced when too long", strings.Repeat("a", 65), false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.sent != "" {
				h["X-Request-Id"] = tt.sent
			}
			res, _ := ts.do(t, "GET", "/api/x", h, nil)
			got := res.Header.Get("X-Request-Id")
			switch {
			case tt.keep && got != tt.sent:
				t.Errorf("X-Request-Id = %q, want %q", got, tt.sent)
			case !tt.keep && (got == "" || got == tt.sent || seen[got]):
				t.Errorf("X-Request-Id = %q, want a fresh id", got)
			}
			seen[got] = true
			if !strings.Contains(ts.log.String(), `"request_id":"`+got+`"`) {
				t.Errorf("access log lacks request_id %q:\n%s", got, ts.log.String())
			}
		})
	}
}

func TestAccessLogKeepsSecretsOut(t *testing.T) {
	ts := newServer(t, server.Deps{})
	ts.do(t, "GET", "/api/files/c/r/f.png?token=QUERYSECRET&thumb=10x10", map[string]string{"Authorization": "alice-token", "Cookie": "COOKIESECRET"}, nil)
	logs := ts.log.String()
	for _, want := range []string{`"method":"GET"`, `"path":"/api/files/c/r/f.png"`, `"status":200`, `"duration":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"QUERYSECRET", "alice-token", "COOKIESECRET", "thumb"} {
		if strings.Contains(logs, secret) {
			t.Errorf("access log contains %q:\n%s", secret, logs)
		}
	}
}

// The dashboard, when given, owns everything under /_/ and nothing else;
// its own headers (a stricter frame policy) win over the defaults.
func TestDashboardRoute(t *testing.T) {
	dashboard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		io.WriteString(w, "dashboard "+r.URL.Path)
	})
	ts := newServer(t, server.Deps{Dashboard: dashboard})
	tests := []struct {
		path      string
		status    int
		body      string
		frameOpts string
	}{
		{"/_/", 200, "dashboard /_/", "DENY"},
		{"/_/collections/posts", 200, "dashboard /_/collections/posts", "DENY"},
		{"/_", 200, "dashboard /_/", "DENY"}, // redirected
		{"/_x", 404, `{"status":404,"message":"The requested resource wasn't found.","data":{}}`, "SAMEORIGIN"},
		{"/api/health", 200, "GET /api/health as guest", "SAMEORIGIN"},
	}
	for _, tt := range tests {
		res, body := ts.do(t, "GET", tt.path, nil, nil)
		if res.StatusCode != tt.status || body != tt.body || res.Header.Get("X-Frame-Options") != tt.frameOpts {
			t.Errorf("GET %s = %d %q X-Frame-Options %q, want %d %q %q", tt.path, res.StatusCode, body, res.Header.Get("X-Frame-Options"), tt.status, tt.body, tt.frameOpts)
		}
	}
	// Without a dashboard, /_/ is an unknown path like any other.
	res, _ := newServer(t, server.Deps{}).do(t, "GET", "/_/", nil, nil)
	if res.StatusCode != 404 {
		t.Errorf("GET /_/ without a dashboard = %d, want 404", res.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	ts := newServer(t, server.Deps{})
	for _, path := range []string{"/api/x", "/nowhere", "/api/panic"} {
		res, _ := ts.do(t, "GET", path, nil, nil)
		got := map[string]string{
			"X-Content-Type-Options": res.Header.Get("X-Content-Type-Options"),
			"X-Frame-Options":        res.Header.Get("X-Frame-Options"),
			"Referrer-Policy":        res.Header.Get("Referrer-Policy"),
		}
		want := map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "SAMEORIGIN",
			"Referrer-Policy":        "strict-origin-when-cross-origin",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s headers (-want +got):\n%s", path, diff)
		}
	}
}

func TestCORS(t *testing.T) {
	anyOrigin := newServer(t, server.Deps{})
	restricted := newServer(t, server.Deps{AllowedOrigins: []string{"https://app.example.com"}})
	tests := []struct {
		name         string
		ts           *testServer
		method       string
		headers      map[string]string
		status       int
		allowOrigin  string
		allowHeaders string
		reachesAPI   bool
	}{
		{"simple request, any origin", anyOrigin, "GET", map[string]string{"Origin": "https://site.test"}, 200, "https://site.test", "", true},
		{"no origin", anyOrigin, "GET", nil, 200, "", "", true},
		{"preflight", anyOrigin, "OPTIONS", map[string]string{
			"Origin": "https://site.test", "Access-Control-Request-Method": "PATCH",
			"Access-Control-Request-Headers": "authorization,content-type"}, 204, "https://site.test", "authorization,content-type", false},
		{"preflight without requested headers", anyOrigin, "OPTIONS", map[string]string{
			"Origin": "https://site.test", "Access-Control-Request-Method": "POST"}, 204, "https://site.test",
			"Authorization, Content-Type, Accept, X-Requested-With, X-Request-Id", false},
		{"plain OPTIONS is not a preflight", anyOrigin, "OPTIONS", map[string]string{"Origin": "https://site.test"}, 200, "https://site.test", "", true},
		{"allowed origin", restricted, "GET", map[string]string{"Origin": "https://app.example.com"}, 200, "https://app.example.com", "", true},
		{"other origin gets no grant", restricted, "GET", map[string]string{"Origin": "https://evil.test"}, 200, "", "", true},
		{"other origin preflight gets no grant", restricted, "OPTIONS", map[string]string{
			"Origin": "https://evil.test", "Access-Control-Request-Method": "DELETE"}, 204, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := tt.ts.do(t, tt.method, "/api/x", tt.headers, nil)
			if res.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.allowOrigin)
			}
			if got := res.Header.Get("Access-Control-Allow-Headers"); got != tt.allowHeaders {
				t.Errorf("Access-Control-Allow-Headers = %q, want %q", got, tt.allowHeaders)
			}
			if tt.allowHeaders != "" && !strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PATCH") {
				t.Errorf("Access-Control-Allow-Methods = %q, want PATCH among them", res.Header.Get("Access-Control-Allow-Methods"))
			}
			if reached := strings.HasPrefix(body, tt.method+" /api/x"); reached != tt.reachesAPI {
				t.Errorf("request reached the API = %v, want %v (body %q)", reached, tt.reachesAPI, body)
			}
			if !slicesContain(res.Header.Values("Vary"), "Origin") {
				t.Errorf("Vary = %q, want Origin among them", res.Header.Values("Vary"))
			}
		})
	}
}

func slicesContain(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unreadable fails the test if the server reads it.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("body was read, want it refused unread")
	return 0, io.EOF
}

func TestBodyLimit(t *testing.T) {
	const limit = 1 << 10
	ts := newServer(t, server.Deps{JSONBodyLimit: limit})
	tooLarge := `{"status":413,"message":"Request entity too large: the limit for this body is 1024 bytes.","data":{}}`

	t.Run("announced too large is refused unread", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/api/body", unreadable{t})
		req.ContentLength = limit + 1
		w := httptest.NewRecorder()
		ts.handler.ServeHTTP(w, req)
		if w.Code != 413 || w.Body.String() != tooLarge {
			t.Errorf("POST /api/body (Content-Length %d) = %d %s, want 413 %s", limit+1, w.Code, w.Body, tooLarge)
		}
	})
	tests := []struct {
		name   string
		size   int
		chunk  bool // hide the length so the limit is met while reading
		status int
		body   string
	}{
		{"at the limit", limit, false, 200, "read 1024"},
		{"over the limit over the wire", limit + 1, false, 413, tooLarge},
		{"chunked at the limit", limit, true, 200, "read 1024"},
		{"chunked over the limit", 4 * limit, true, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(strings.Repeat("x", tt.size))
			if tt.chunk {
				body = io.MultiReader(body) // no Len method: sent chunked
			}
			res, got := ts.do(t, "POST", "/api/body", nil, body)
			if res.StatusCode != tt.status || got != tt.body {
				t.Errorf("POST /api/body (%d bytes) = %d %q, want %d %q", tt.size, res.StatusCode, got, tt.status, tt.body)
			}
		})
	}
}

func TestBodyLimitDefault(t *testing.T) {
	ts := newServer(t, server.Deps{})
	req := httptest.NewRequest("POST", "/api/body", unreadable{t})
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	req.ContentLength = server.DefaultBodyLimit + 1
	w := httptest.NewRecorder()
	ts.handler.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Errorf("multipart POST of DefaultBodyLimit+1 bytes = %d, want 413", w.Code)
	}
	if server.DefaultBodyLimit != 32<<20 {
		t.Errorf("DefaultBodyLimit = %d, want 32 MiB", server.DefaultBodyLimit)
	}
}

func TestIdentity(t *testing.T) {
	ts := newServer(t, server.Deps{})
	tests := []struct {
		name      string
		authz     string
		status    int
		want      string
		logsError bool
	}{
		{"no header is a guest", "", 200, "GET /api/me as guest", false},
		{"valid token", "alice-token", 200, "GET /api/me as alice", false},
		{"bearer token", "Bearer alice-token", 200, "GET /api/me as alice", false},
		{"invalid token is a guest", "forged", 200, "GET /api/me as guest", false},
		// A lookup that failed is no verdict on the token: the signed-in
		// client is told to try again, never served as a guest.
		{"unreachable database is a 503", "unreachable", 503, `{"status":503,"message":"The database is unavailable. Please try again later.","data":{}}`, false},
		{"failing lookup is a 500, logged", "broken", 500, `{"status":500,"message":"Something went wrong while processing your request.","data":{}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.auth.callCount()
			h := map[string]string{}
			if tt.authz != "" {
				h["Authorization"] = tt.authz
			}
			res, body := ts.do(t, "GET", "/api/me", h, nil)
			if res.StatusCode != tt.status || body != tt.want {
				t.Errorf("GET /api/me with %q = %d %q, want %d %q", tt.authz, res.StatusCode, body, tt.status, tt.want)
			}
			if called := ts.auth.callCount() > before; called != (tt.authz != "") {
				t.Errorf("Identify called = %v, want %v", called, tt.authz != "")
			}
			if logged := strings.Contains(ts.log.String(), "database is on fire"); logged != tt.logsError {
				t.Errorf("lookup failure logged = %v, want %v", logged, tt.logsError)
			}
		})
	}
}

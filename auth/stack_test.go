package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// stack is the whole HTTP surface (server middleware, REST adapter, auth
// and record services) over a fresh SQLite database, with a superuser, the
// users alice and bob, and a "notes" collection whose records only their
// owner may list and view. Its log is kept for inspection.
type stack struct {
	t       *testing.T
	srv     *httptest.Server
	records *record.Service
	auth    *auth.Service
	store   *sqlstore.Store
	dir     string
	log     *logBuffer
	ids     map[string]string // "su", "alice", "bob", "alice-note"
}

// Passwords of the stack's accounts.
const (
	suPassword    = "superuser-password-1"
	alicePassword = "alice-password-1"
	bobPassword   = "bob-password-1"
)

// logBuffer collects log output from the server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	records, store := recordtest.OpenStore(t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: dir}, log)
	authSvc := auth.New(records, log)
	api := rest.NewHandler(rest.Deps{Records: records, Auth: authSvc, Log: log})
	srv := httptest.NewServer(server.New(server.Deps{API: api, Auth: authSvc, Log: log, RateLimits: records}))
	t.Cleanup(srv.Close)
	s := &stack{t: t, srv: srv, records: records, auth: authSvc, store: store, dir: dir, log: logs, ids: map[string]string{}}

	for _, name := range []string{underhood.SuperusersName, "users"} {
		s.updateCollection(name, func(c *underhood.Collection) { c.Field("password").Cost = bcrypt.MinCost })
	}
	sys := records.SystemRequest()
	for _, u := range []struct{ key, coll, email, password string }{
		{"su", underhood.SuperusersName, "root@example.com", suPassword},
		{"alice", "users", "alice@example.com", alicePassword},
		{"bob", "users", "bob@example.com", bobPassword},
	} {
		rec, err := records.Create(ctx, sys, u.coll, map[string]any{"email": u.email, "password": u.password, "passwordConfirm": u.password}, "")
		if err != nil {
			t.Fatalf("create %s: %v", u.key, err)
		}
		s.ids[u.key] = rec.ID()
	}
	owner := underhood.RuleOf("@request.auth.id != '' && owner = @request.auth.id")
	if _, err := records.SaveCollection(ctx, sys.Auth, "", &underhood.Collection{
		Name: "notes", Type: underhood.TypeBase, ListRule: owner, ViewRule: owner,
		Fields: []*underhood.Field{
			{Name: "text", Type: underhood.FieldText},
			{Name: "owner", Type: underhood.FieldRelation, CollectionID: "_pb_users_auth_", MaxSelect: 1},
		},
	}); err != nil {
		t.Fatalf("create notes: %v", err)
	}
	note, err := records.Create(ctx, sys, "notes", map[string]any{"text": "alice's secret", "owner": s.ids["alice"]}, "")
	if err != nil {
		t.Fatal(err)
	}
	s.ids["alice-note"] = note.ID()
	return s
}

func (s *stack) updateCollection(name string, change func(c *underhood.Collection)) {
	s.t.Helper()
	c, err := s.records.Collection(name)
	if err != nil {
		s.t.Fatal(err)
	}
	c = c.Clone()
	change(c)
	if _, err := s.records.SaveCollection(context.Background(), s.records.SystemRequest().Auth, c.ID, c); err != nil {
		s.t.Fatalf("save collection %s: %v", name, err)
	}
}

// do sends a JSON request with token in Authorization ("" for none) and
// returns the status, the body and the response headers.
func (s *stack) do(method, path, token string, body any) (int, string, http.Header) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

// login returns the token of a password login, failing the test otherwise.
func (s *stack) login(coll, identity, password string) string {
	s.t.Helper()
	st, body, _ := s.do("POST", "/api/collections/"+coll+"/auth-with-password", "", map[string]any{"identity": identity, "password": password})
	if st != http.StatusOK {
		s.t.Fatalf("login %s: %d %s", identity, st, body)
	}
	return field(s.t, body, "token")
}

// record returns the stored record id of coll, secrets included.
func (s *stack) record(coll, id string) *underhood.Record {
	s.t.Helper()
	c, err := s.records.Collection(coll)
	if err != nil {
		s.t.Fatal(err)
	}
	r, err := s.records.FindRecord(context.Background(), c, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// field returns a top-level string of a JSON object body, or of its
// "record" object when the top level lacks it.
func field(t *testing.T, body, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	if v, ok := m[key].(string); ok {
		return v
	}
	if rec, ok := m["record"].(map[string]any); ok {
		if v, ok := rec[key].(string); ok {
			return v
		}
	}
	t.Fatalf("no %q in %s", key, body)
	return ""
}

// patchSettings applies a settings patch as a superuser would.
func (s *stack) patchSettings(patch string) {
	s.t.Helper()
	if _, err := s.records.UpdateSettings(context.Background(), s.records.SystemRequest().Auth, []byte(patch)); err != nil {
		s.t.Fatalf("UpdateSettings(%s) = %v", patch, err)
	}
}

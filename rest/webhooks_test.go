package rest_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/events"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// newWebhookEnv is an API with webhooks (loopback allowed), a superuser
// and a user "alice".
func newWebhookEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records, store := recordtest.OpenStore(t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir()}, log)
	client := outbound.New(outbound.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxRedirects: -1})
	hooks, err := events.NewWebhooks(ctx, store, records, log, events.WebhookOptions{Client: client, RetryBase: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := events.NewRelay(ctx, store, records, log, events.RelayOptions{Poll: 50 * time.Millisecond}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close(); hooks.Close() })
	authSvc := auth.New(records, log)
	api := rest.NewHandler(rest.Deps{Records: records, Auth: authSvc, Log: log, Webhooks: hooks})
	srv := httptest.NewServer(server.New(server.Deps{API: api, Auth: authSvc, Log: log, BodyLimit: 1 << 20}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, records: records, tokens: map[string]string{}, ids: map[string]string{}}
	if _, err := records.Create(ctx, records.SystemRequest(), "_superusers", map[string]any{
		"email": "admin@example.com", "password": "1234567890", "passwordConfirm": "1234567890"}, ""); err != nil {
		t.Fatal(err)
	}
	e.tokens["su"] = e.login("_superusers", "admin@example.com", "1234567890")
	st, body := e.do("POST", "/api/collections/users/records", "", map[string]any{
		"email": "alice@example.com", "password": "secret-alice", "passwordConfirm": "secret-alice", "name": "alice"})
	if st != 200 {
		t.Fatalf("create alice: %d %s", st, body)
	}
	e.tokens["alice"] = e.login("users", "alice@example.com", "secret-alice")
	return e
}

// hookReceiver collects verified deliveries.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	got    []map[string]any
	ids    []string
	bad    []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	id := r.Header.Get("webhook-id")
	if err := events.Verify(h.secret, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), time.Minute); err != nil {
		h.bad = append(h.bad, id+": "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var p map[string]any
	json.Unmarshal(body, &p)
	h.got = append(h.got, p)
	h.ids = append(h.ids, id)
}

func (h *hookReceiver) waitFor(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		got, bad := append([]map[string]any(nil), h.got...), append([]string(nil), h.bad...)
		h.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("receiver refused signatures: %v", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d deliveries within 10s, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWebhooksAPI(t *testing.T) {
	e := newWebhookEnv(t)
	rc := &hookReceiver{}
	target := httptest.NewServer(rc)
	defer target.Close()

	for _, tt := range []struct {
		who    string
		status int
	}{{"", 401}, {"alice", 403}} {
		if st, body := e.do("GET", "/api/webhooks", tt.who, nil); st != tt.status {
			t.Errorf("GET /api/webhooks as %q = %d %s, want %d", tt.who, st, body, tt.status)
		}
		if st, _ := e.do("POST", "/api/webhooks", tt.who, map[string]any{"url": target.URL}); st != tt.status {
			t.Errorf("POST /api/webhooks as %q = %d, want %d", tt.who, st, tt.status)
		}
	}
	if st, body := e.do("POST", "/api/webhooks", "su", map[string]any{"url": "ftp://x"}); st != 400 || !strings.Contains(body, `"url"`) {
		t.Errorf("create with an ftp url = %d %s, want 400 on url", st, body)
	}
	if st, body := e.do("POST", "/api/webhooks", "su", map[string]any{"url": target.URL, "colections": []string{"users"}}); st != 400 {
		t.Errorf("create with a misspelt key = %d %s, want 400", st, body)
	}

	st, body := e.do("POST", "/api/webhooks", "su", map[string]any{"name": "users", "url": target.URL + "/in", "collections": []string{"users"}, "actions": []string{"create", "update"}})
	if st != 200 {
		t.Fatalf("create webhook = %d %s", st, body)
	}
	var hook events.Webhook
	json.Unmarshal([]byte(body), &hook)
	if len(hook.Secrets) != 1 || !strings.HasPrefix(hook.Secrets[0], "whsec_") || hook.ID == "" {
		t.Fatalf("created webhook = %s, want an id and a whsec_ secret", body)
	}
	rc.mu.Lock()
	rc.secret = hook.Secrets[0]
	rc.mu.Unlock()

	st, body = e.do("POST", "/api/collections/users/records", "", map[string]any{
		"email": "bob@example.com", "password": "secret-bob", "passwordConfirm": "secret-bob", "name": "bob"})
	if st != 200 {
		t.Fatalf("create bob = %d %s", st, body)
	}
	got := rc.waitFor(t, 1)[0]
	rec, _ := got["record"].(map[string]any)
	if got["action"] != "create" || got["collection"] != "users" || rec["email"] != "bob@example.com" || rec["name"] != "bob" {
		t.Errorf("payload = %v, want bob's create with his email", got)
	}
	for _, k := range []string{"password", "tokenKey"} {
		if _, ok := rec[k]; ok {
			t.Errorf("payload record has %q", k)
		}
	}

	// The delivery and its attempt are in the log.
	var deliveries events.Page[events.Delivery]
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, body = e.do("GET", "/api/webhooks/"+hook.ID+"/deliveries?state=delivered", "su", nil)
		json.Unmarshal([]byte(body), &deliveries)
		if st != 200 || deliveries.TotalItems == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st != 200 || deliveries.TotalItems != 1 {
		t.Fatalf("deliveries = %d %s, want one delivered", st, body)
	}
	st, body = e.do("GET", "/api/webhooks/"+hook.ID+"/deliveries/"+deliveries.Items[0].ID, "su", nil)
	var d events.Delivery
	json.Unmarshal([]byte(body), &d)
	if st != 200 || len(d.Log) != 1 || d.Log[0].Status != 200 || len(d.Payload) == 0 {
		t.Errorf("delivery view = %d %s, want its payload and one attempt with 200", st, body)
	}
	st, body = e.do("GET", "/api/webhooks/"+hook.ID+"/attempts", "su", nil)
	if st != 200 || !strings.Contains(body, `"totalItems":1`) || !strings.Contains(body, `"latencyMs"`) {
		t.Errorf("attempts = %d %s", st, body)
	}

	// Pause: nothing is sent; resume: it is.
	if st, body = e.do("POST", "/api/webhooks/"+hook.ID+"/pause", "su", nil); st != 200 || !strings.Contains(body, `"paused":true`) {
		t.Fatalf("pause = %d %s", st, body)
	}
	st, body = e.do("POST", "/api/collections/users/records", "", map[string]any{
		"email": "carol@example.com", "password": "secret-carol", "passwordConfirm": "secret-carol"})
	if st != 200 {
		t.Fatalf("create carol = %d %s", st, body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.waitFor(t, 1)); n != 1 {
		t.Errorf("a paused webhook delivered: %d deliveries", n)
	}
	if st, body = e.do("POST", "/api/webhooks/"+hook.ID+"/resume", "su", nil); st != 200 || !strings.Contains(body, `"paused":false`) {
		t.Fatalf("resume = %d %s", st, body)
	}
	rc.waitFor(t, 2)

	// Rotation: the new secret signs, the old one too.
	st, body = e.do("POST", "/api/webhooks/"+hook.ID+"/rotate-secret", "su", nil)
	var rotated events.Webhook
	json.Unmarshal([]byte(body), &rotated)
	if st != 200 || len(rotated.Secrets) != 2 || rotated.Secrets[1] != hook.Secrets[0] {
		t.Fatalf("rotate = %d %s", st, body)
	}
	rc.mu.Lock()
	rc.secret = rotated.Secrets[0]
	firstID := rc.ids[0]
	rc.mu.Unlock()

	// Replay of one event: same webhook-id.
	st, body = e.do("POST", "/api/webhooks/"+hook.ID+"/replay", "su", map[string]any{"eventId": firstID})
	if st != 200 || body != `{"replayed":1}` {
		t.Fatalf("replay = %d %s", st, body)
	}
	rc.waitFor(t, 3)
	rc.mu.Lock()
	if rc.ids[2] != firstID {
		t.Errorf("replayed webhook-id = %s, want %s", rc.ids[2], firstID)
	}
	rc.mu.Unlock()
	if st, body = e.do("POST", "/api/webhooks/"+hook.ID+"/replay", "su", map[string]any{"from": "yesterday"}); st != 400 {
		t.Errorf("replay with a bad range = %d %s, want 400", st, body)
	}

	st, body = e.do("PATCH", "/api/webhooks/"+hook.ID, "su", map[string]any{"name": "renamed", "actions": []string{}})
	if st != 200 || !strings.Contains(body, `"name":"renamed"`) || !strings.Contains(body, `"actions":[]`) {
		t.Errorf("patch = %d %s", st, body)
	}
	if st, body = e.do("GET", "/api/webhooks", "su", nil); st != 200 || !strings.Contains(body, hook.ID) {
		t.Errorf("list = %d %s", st, body)
	}
	if st, _ = e.do("DELETE", "/api/webhooks/"+hook.ID, "su", nil); st != 204 {
		t.Errorf("delete = %d, want 204", st)
	}
	if st, _ = e.do("GET", "/api/webhooks/"+hook.ID, "su", nil); st != 404 {
		t.Errorf("view after delete = %d, want 404", st)
	}
}

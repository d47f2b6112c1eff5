package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood/events"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// These tests run the real commands on PostgreSQL ($DATABASE_URL; each in
// a schema of its own) and are skipped without it.

// startServe runs "serve" with args in-process and waits until it is
// healthy; it returns the base URL and what serve printed.
func startServe(t *testing.T, env func(string) string, args ...string) (*running, *syncBuffer) {
	t.Helper()
	if !slices.Contains(args, "--dir") {
		// The files of a node on PostgreSQL still go to DIR/storage:
		// never the package's own directory.
		args = append([]string{"--dir", t.TempDir()}, args...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stop: cancel, finished: make(chan struct{})}
	var stdout, stderr syncBuffer
	go func() {
		defer close(r.finished)
		r.err = run(ctx, append([]string{"underhood", "serve", "--http", "127.0.0.1:0"}, args...), env, nil, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		r.wait(t)
		if t.Failed() {
			t.Logf("log of serve %v:\n%s", args, stderr.String())
		}
	})
	started := regexp.MustCompile(`Server started at (http://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := started.FindStringSubmatch(stdout.String()); m != nil {
			waitHealthy(t, m[1])
			r.base = m[1]
			return r, &stdout
		}
		select {
		case <-r.finished:
			t.Fatalf("serve exited early: %v\nstderr:\n%s", r.err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start; stdout %q stderr %q", stdout.String(), stderr.String())
	return nil, nil
}

// superuserToken logs the superuser in on base.
func superuserToken(t *testing.T, base string) string {
	t.Helper()
	status, body := call(t, "POST", base+"/api/collections/_superusers/auth-with-password", "", map[string]any{"identity": "root@example.com", "password": "1234567890"})
	token, _ := body["token"].(string)
	if status != 200 || token == "" {
		t.Fatalf("auth-with-password on %s = %d %v, want 200 with a token", base, status, body)
	}
	return token
}

func TestServeOnPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	withPassword := strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:s3cret-pw@", 1)
	// UH_DB for the CLI, --db (after the positionals) for another
	// command, and for serve.
	env := func(k string) string { return map[string]string{"UH_DB": dsn}[k] }
	var stdout syncBuffer
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "0000000000"}, env, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("superuser upsert with UH_DB: %v", err)
	}
	if err := run(context.Background(), []string{"underhood", "superuser", "update", "root@example.com", "1234567890", "--db", dsn}, noEnv, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("superuser update --db: %v", err)
	}
	srv, banner := startServe(t, noEnv, "--db", withPassword)
	if strings.Contains(banner.String(), "s3cret-pw") || !strings.Contains(banner.String(), "127.0.0.1:5432/test") {
		t.Errorf("banner = %q, want the database without its password", banner.String())
	}
	token := superuserToken(t, srv.base)
	status, body := call(t, "POST", srv.base+"/api/collections", token, map[string]any{
		"name": "notes", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
		"fields":  []map[string]any{{"name": "title", "type": "text"}, {"name": "tags", "type": "select", "maxSelect": 2, "values": []string{"a", "b"}}},
		"indexes": []string{"CREATE UNIQUE INDEX idx_notes_title ON notes (title)"},
	})
	if status != 200 {
		t.Fatalf("create collection = %d %v", status, body)
	}
	for _, title := range []string{"Hello", "hello", "Other"} {
		if status, body := call(t, "POST", srv.base+"/api/collections/notes/records", "", map[string]any{"title": title, "tags": []string{"a"}}); status != 200 {
			t.Fatalf("create %s = %d %v", title, status, body)
		}
	}
	status, body = call(t, "POST", srv.base+"/api/collections/notes/records", "", map[string]any{"title": "Hello"})
	if data, _ := body["data"].(map[string]any); status != 400 || data["title"] == nil {
		t.Errorf("duplicate title = %d %v, want 400 on title", status, body)
	}
	status, body = call(t, "GET", srv.base+"/api/collections/notes/records?filter="+urlQuery("title ~ 'HEL' && tags:each ?= 'a'")+"&sort=-title", "", nil)
	if items, _ := body["items"].([]any); status != 200 || len(items) != 2 || items[0].(map[string]any)["title"] != "hello" {
		t.Errorf("list with filter = %d %v, want hello and Hello (case-insensitive ~, binary sort)", status, body)
	}
}

// urlQuery escapes a filter for a query string.
func urlQuery(s string) string {
	r := strings.NewReplacer(" ", "%20", "'", "%27", "&", "%26", "?", "%3F", "=", "%3D", "~", "%7E", ":", "%3A")
	return r.Replace(s)
}

// TestTwoNodesOnePostgres runs two servers on one database: schema and
// settings changes made through one are used by the other within a
// second, and concurrent writes through both keep unique indexes.
func TestTwoNodesOnePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--db", dsn}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	a, _ := startServe(t, noEnv, "--db", dsn)
	b, _ := startServe(t, noEnv, "--db", dsn)
	ta, tb := superuserToken(t, a.base), superuserToken(t, b.base)

	status, body := call(t, "POST", a.base+"/api/collections", ta, map[string]any{
		"name": "items", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
		"fields":  []map[string]any{{"name": "slug", "type": "text"}},
		"indexes": []string{"CREATE UNIQUE INDEX idx_items_slug ON items (slug)"},
	})
	if status != 200 {
		t.Fatalf("create collection on A = %d %v", status, body)
	}
	within(t, "a collection created on A", func() bool {
		status, _ := call(t, "GET", b.base+"/api/collections/items/records", "", nil)
		return status == 200
	})
	status, body = call(t, "PATCH", a.base+"/api/collections/items", ta, map[string]any{
		"fields": []map[string]any{{"name": "slug", "type": "text"}, {"name": "color", "type": "text"}},
	})
	if status != 200 {
		t.Fatalf("add a field on A = %d %v", status, body)
	}
	within(t, "a field added on A", func() bool {
		_, body := call(t, "GET", b.base+"/api/collections/items", tb, nil)
		fields, _ := body["fields"].([]any)
		return len(fields) == 3
	})
	if status, body := call(t, "POST", b.base+"/api/collections/items/records", "", map[string]any{"slug": "first", "color": "red"}); status != 200 || body["color"] != "red" {
		t.Fatalf("create with the new field on B = %d %v", status, body)
	}
	status, body = call(t, "PATCH", a.base+"/api/settings", ta, map[string]any{"meta": map[string]any{"appName": "Shared app"}})
	if status != 200 {
		t.Fatalf("settings on A = %d %v", status, body)
	}
	within(t, "settings changed on A", func() bool {
		_, body := call(t, "GET", b.base+"/api/settings", tb, nil)
		meta, _ := body["meta"].(map[string]any)
		return meta["appName"] == "Shared app"
	})

	// Reads are cached until any node writes: a read through B right
	// after a write through A sees it.
	for i := range 5 {
		_, before := call(t, "GET", b.base+"/api/collections/items/records", "", nil)
		status, created := call(t, "POST", a.base+"/api/collections/items/records", "", map[string]any{"slug": fmt.Sprint("seen", i), "color": "blue"})
		if status != 200 {
			t.Fatalf("create on A = %d %v", status, created)
		}
		_, after := call(t, "GET", b.base+"/api/collections/items/records", "", nil)
		if after["totalItems"] != before["totalItems"].(float64)+1 {
			t.Fatalf("list on B right after a create on A: %v items, before it %v", after["totalItems"], before["totalItems"])
		}
		id := created["id"].(string)
		call(t, "GET", b.base+"/api/collections/items/records/"+id, "", nil) // cached on B
		if status, body := call(t, "PATCH", a.base+"/api/collections/items/records/"+id, ta, map[string]any{"color": "green"}); status != 200 {
			t.Fatalf("update on A = %d %v", status, body)
		}
		if _, body := call(t, "GET", b.base+"/api/collections/items/records/"+id, "", nil); body["color"] != "green" {
			t.Fatalf("view on B right after an update on A = %v, want color green", body)
		}
	}

	// Every slug is created through both nodes at once: exactly one of
	// each pair succeeds, the other is refused as not unique.
	const slugs = 40
	var mu sync.Mutex
	codes := map[int]int{}
	perSlug := map[string]int{}
	var wg sync.WaitGroup
	for _, base := range []string{a.base, b.base} {
		for i := range slugs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slug := fmt.Sprint("s", i)
				status, _ := call(t, "POST", base+"/api/collections/items/records", "", map[string]any{"slug": slug})
				mu.Lock()
				defer mu.Unlock()
				codes[status]++
				if status == 200 {
					perSlug[slug]++
				}
			}()
		}
	}
	wg.Wait()
	if codes[200] != slugs || codes[400] != slugs || len(codes) != 2 {
		t.Errorf("statuses of %d concurrent creates = %v, want %d×200 and %d×400", 2*slugs, codes, slugs, slugs)
	}
	for slug, n := range perSlug {
		if n != 1 {
			t.Errorf("slug %s created %d times", slug, n)
		}
	}
	_, body = call(t, "GET", b.base+"/api/collections/items/records?perPage=1", "", nil)
	if body["totalItems"] != float64(slugs+6) {
		t.Errorf("totalItems on B = %v, want %d", body["totalItems"], slugs+6)
	}

	status, _ = call(t, "DELETE", b.base+"/api/collections/items", tb, nil)
	if status != 204 {
		t.Fatalf("delete collection on B = %d", status)
	}
	within(t, "a collection deleted on B", func() bool {
		status, _ := call(t, "GET", a.base+"/api/collections/items/records", "", nil)
		return status == 404
	})
}

// TestTwoNodesShareLimits runs two servers on one database and one Redis
// (--redis): the failed logins of an account count once, whichever node
// they reach, so spreading guesses over nodes buys no more of them.
func TestTwoNodesShareLimits(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	redis := os.Getenv("REDIS_URL")
	if redis == "" {
		t.Skip("REDIS_URL is not set: skipping the shared rate-limit test (.ci/run sets it to the local server)")
	}
	// An account and a client address of this run's own: Redis keeps
	// counts between runs.
	email := fmt.Sprintf("limits-%d@example.com", rand.Int64())
	clientIP := fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), 1+rand.IntN(254))
	for _, args := range [][]string{
		{"superuser", "upsert", "root@example.com", "1234567890"},
		{"superuser", "upsert", email, "right-password-1"},
	} {
		if err := run(context.Background(), append(append([]string{"underhood"}, args...), "--db", dsn), noEnv, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := startServe(t, noEnv, "--db", dsn, "--redis", redis)
	b, _ := startServe(t, noEnv, "--db", dsn, "--redis", redis)
	ta, tb := superuserToken(t, a.base), superuserToken(t, b.base)

	// Both nodes take the client address from X-Real-IP.
	if status, body := call(t, "PATCH", a.base+"/api/settings", ta, map[string]any{"trustedProxy": map[string]any{"headers": []string{"X-Real-IP"}}}); status != 200 {
		t.Fatalf("PATCH settings = %d %v", status, body)
	}
	within(t, "the trusted proxy setting on node B", func() bool {
		_, body := call(t, "GET", b.base+"/api/settings", tb, nil)
		tp, _ := body["trustedProxy"].(map[string]any)
		return fmt.Sprint(tp["headers"]) == "[X-Real-IP]"
	})

	login := func(base string) int {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"identity": email, "password": "wrong-password"})
		req, _ := http.NewRequest("POST", base+"/api/collections/_superusers/auth-with-password", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Real-IP", clientIP)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// The default limit is 5 failed logins a minute per account and address.
	var got []int
	for i := range 7 {
		base := a.base
		if i%2 == 1 {
			base = b.base
		}
		got = append(got, login(base))
	}
	want := []int{400, 400, 400, 400, 400, 429, 429}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("7 failed logins alternating between two nodes answered %v, want %v", got, want)
	}
}

// TestTwoNodesDeliverWebhooksOnce runs two servers on one database (and
// NATS when NATS_URL is set) with one webhook whose receiver fails the
// first attempt of every event: writes through both nodes are each
// delivered exactly twice, one request per attempt, never by both nodes,
// every one signed.
func TestTwoNodesDeliverWebhooksOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a retry (5 s); skipped with -short")
	}
	dsn := storetest.PostgresDSN(t)
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--db", dsn}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	args := []string{"--db", dsn, "--outbound-allow", "127.0.0.1/32"}
	if u := os.Getenv("NATS_URL"); u != "" {
		args = append(args, "--nats", u)
	}
	a, _ := startServe(t, noEnv, args...)
	b, _ := startServe(t, noEnv, args...)
	ta := superuserToken(t, a.base)

	var (
		mu       sync.Mutex
		attempts = map[string][]int{} // event id -> statuses answered
		secret   string
		badSig   int
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		mu.Lock()
		defer mu.Unlock()
		if err := events.Verify(secret, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute); err != nil {
			badSig++
		}
		status := http.StatusOK
		if len(attempts[id]) == 0 {
			status = http.StatusServiceUnavailable
		}
		attempts[id] = append(attempts[id], status)
		w.WriteHeader(status)
	}))
	defer receiver.Close()

	if status, body := call(t, "POST", a.base+"/api/collections", ta, map[string]any{
		"name": "items", "type": "base", "createRule": "",
		"fields": []map[string]any{{"name": "n", "type": "number"}},
	}); status != 200 {
		t.Fatalf("create collection = %d %v", status, body)
	}
	status, hook := call(t, "POST", a.base+"/api/webhooks", ta, map[string]any{"name": "both", "url": receiver.URL, "collections": []string{"items"}})
	secrets, _ := hook["secrets"].([]any)
	if status != 200 || len(secrets) == 0 {
		t.Fatalf("create webhook = %d %v", status, hook)
	}
	mu.Lock()
	secret, _ = secrets[0].(string)
	mu.Unlock()

	const writes = 20
	var wg sync.WaitGroup
	for i := range writes {
		base := a.base
		if i%2 == 1 {
			base = b.base
		}
		wg.Go(func() {
			if status, body := call(t, "POST", base+"/api/collections/items/records", "", map[string]any{"n": i}); status != 200 {
				t.Errorf("create through %s = %d %v", base, status, body)
			}
		})
	}
	wg.Wait()

	// The retries come after 5 s ±25%.
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, st := range attempts {
			if st[len(st)-1] == http.StatusOK {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); delivered() < writes && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate would come now
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != writes {
		t.Errorf("the receiver heard of %d events, want %d", len(attempts), writes)
	}
	for id, st := range attempts {
		if fmt.Sprint(st) != "[503 200]" {
			t.Errorf("event %s was sent %d times, answered %v; want one request per attempt: [503 200]", id, len(st), st)
		}
	}
	if badSig > 0 {
		t.Errorf("%d requests with a bad signature", badSig)
	}
}

// within retries fn until it holds. The bound only ends a test that would
// otherwise hang: the time it took is logged, not asserted.
func within(t *testing.T, what string, fn func() bool) {
	t.Helper()
	start := time.Now()
	for !fn() {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("%s: not seen within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s: seen after %v", what, time.Since(start).Round(time.Millisecond))
}

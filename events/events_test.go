package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/events"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// env is a record service on a fresh database with a "posts" collection.
type env struct {
	t       *testing.T
	dir     string
	store   *sqlstore.Store
	records *record.Service
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.open()
	anyone := underhood.RuleOf("")
	if _, err := e.records.SaveCollection(context.Background(), e.records.SystemRequest().Auth, "", &underhood.Collection{
		Name: "posts", Type: underhood.TypeBase, ListRule: anyone, ViewRule: anyone, CreateRule: anyone, UpdateRule: anyone, DeleteRule: anyone,
		Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}, {Name: "views", Type: underhood.FieldNumber},
			{Name: "secret", Type: underhood.FieldText, Hidden: true}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.records.SaveCollection(context.Background(), e.records.SystemRequest().Auth, "", &underhood.Collection{
		Name: "notes", Type: underhood.TypeBase, Fields: []*underhood.Field{{Name: "text", Type: underhood.FieldText}},
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// open opens the store and service on e.dir (again, after close).
func (e *env) open() {
	e.t.Helper()
	e.records, e.store = recordtest.OpenStore(e.t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: e.dir}, quiet)
}

func (e *env) create(coll string, data map[string]any) *underhood.Record {
	e.t.Helper()
	r, err := e.records.Create(context.Background(), e.records.SystemRequest(), coll, data, "")
	if err != nil {
		e.t.Fatalf("Create(%s) = %v", coll, err)
	}
	return r
}

// fast are delivery options for tests: quick retries, loopback allowed.
func fast() events.WebhookOptions {
	return events.WebhookOptions{
		Client:    outbound.New(outbound.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxRedirects: -1, Timeout: 5 * time.Second}),
		Timeout:   5 * time.Second,
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}
}

// start runs webhooks and a relay feeding them.
func (e *env) start(opts events.WebhookOptions) *events.Webhooks {
	e.t.Helper()
	ctx := context.Background()
	hooks, err := events.NewWebhooks(ctx, e.store, e.records, quiet, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	relay, err := events.NewRelay(ctx, e.store, e.records, quiet, events.RelayOptions{Poll: 50 * time.Millisecond}, hooks)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { relay.Close(); hooks.Close() })
	return hooks
}

// receiver is a webhook endpoint that verifies every signature.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string // any one must verify
	got     []received
	bad     []string
	// fail answers 500 to the first fail requests.
	fail   int
	status int // answer with this status (0 = 204)
	seen   chan struct{}
}

type received struct {
	id      string
	payload map[string]any
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, seen: make(chan struct{}, 1000)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	t.Cleanup(func() {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, b := range rc.bad {
			t.Errorf("receiver: %s", b)
		}
	})
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id, ts, sig := r.Header.Get(events.HeaderID), r.Header.Get(events.HeaderTimestamp), r.Header.Get(events.HeaderSignature)
	verified := false
	for _, s := range rc.secrets {
		if events.Verify(s, id, ts, sig, body, time.Now(), 5*time.Minute) == nil {
			verified = true
		}
	}
	if !verified {
		rc.bad = append(rc.bad, "signature of "+id+" does not verify: "+sig)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rc.fail > 0 {
		rc.fail--
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, strings.Repeat("x", 3000)) // longer than the log keeps
		return
	}
	if rc.status != 0 {
		w.WriteHeader(rc.status)
		return
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		rc.bad = append(rc.bad, "payload is not JSON: "+string(body))
	}
	if p["id"] != id {
		rc.bad = append(rc.bad, "payload id "+str(p["id"])+" is not the webhook-id "+id)
	}
	rc.got = append(rc.got, received{id, p})
	w.WriteHeader(http.StatusNoContent)
	rc.seen <- struct{}{}
}

func str(v any) string { s, _ := v.(string); return s }

// wait waits until n payloads arrived in all and returns them.
func (rc *receiver) wait(n int) []received {
	rc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		rc.mu.Lock()
		got := append([]received(nil), rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-rc.seen:
		case <-deadline:
			rc.t.Fatalf("receiver got %d payloads within 10s, want %d", len(got), n)
		}
	}
}

// quiet checks that nothing more arrives for a while.
func (rc *receiver) none(after int) {
	rc.t.Helper()
	time.Sleep(300 * time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != after {
		rc.t.Errorf("receiver got %d payloads, want %d", len(rc.got), after)
	}
}

func summary(list []received) []string {
	var out []string
	for _, r := range list {
		rec, _ := r.payload["record"].(map[string]any)
		out = append(out, str(r.payload["collection"])+" "+str(r.payload["action"])+" "+str(rec["title"])+str(rec["text"]))
	}
	sort.Strings(out)
	return out
}

func ptr[T any](v T) *T { return &v }

// superuser is a caller of the webhooks API that may use it: a record of
// the superusers collection, as the REST API passes it.
func superuser() *underhood.Record {
	return &underhood.Record{Collection: &underhood.Collection{Name: underhood.SuperusersName, Type: underhood.TypeAuth}, Data: map[string]any{"id": "su"}}
}

func mustHook(t *testing.T, hooks *events.Webhooks, in events.WebhookInput) *events.Webhook {
	t.Helper()
	h, err := hooks.Create(context.Background(), superuser(), in)
	if err != nil {
		t.Fatalf("Create webhook = %v", err)
	}
	return h
}

func TestWebhooksDeliverMatchingEventsSigned(t *testing.T) {
	e := newEnv(t)
	hooks := e.start(fast())
	ctx := context.Background()
	all := newReceiver(t)
	creates := newReceiver(t)
	filtered := newReceiver(t)
	before := e.create("posts", map[string]any{"title": "before any webhook"})
	hAll := mustHook(t, hooks, events.WebhookInput{Name: ptr("all"), URL: ptr(all.srv.URL + "/hook")})
	all.secrets = hAll.Secrets
	hCreates := mustHook(t, hooks, events.WebhookInput{URL: ptr(creates.srv.URL), Collections: ptr([]string{"posts"}), Actions: ptr([]string{"create"})})
	creates.secrets = hCreates.Secrets
	hFiltered := mustHook(t, hooks, events.WebhookInput{URL: ptr(filtered.srv.URL), Collections: ptr([]string{"posts"}), Filter: ptr("views > 10")})
	filtered.secrets = hFiltered.Secrets

	p := e.create("posts", map[string]any{"title": "a", "views": 5.0, "secret": "s3"})
	if _, err := e.records.Update(ctx, e.records.SystemRequest(), "posts", p.ID(), map[string]any{"title": "b", "views": 50.0}, ""); err != nil {
		t.Fatal(err)
	}
	e.create("notes", map[string]any{"text": "n"})
	if err := e.records.Delete(ctx, e.records.SystemRequest(), "posts", before.ID()); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		rc   *receiver
		want []string
	}{
		{"every collection and action", all, []string{"notes create n", "posts create a", "posts delete before any webhook", "posts update b"}},
		{"creates of posts", creates, []string{"posts create a"}},
		{"filter views > 10", filtered, []string{"posts update b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(tt.rc.wait(len(tt.want)))
			tt.rc.none(len(tt.want))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("received %q, want %q", got, tt.want)
			}
		})
	}
	// The payload is the event: ids, sequence, the record as a superuser
	// sees it (hidden fields included).
	got := filtered.wait(1)[0].payload
	rec, _ := got["record"].(map[string]any)
	if rec["secret"] != "s3" || rec["id"] != p.ID() || got["collection"] != "posts" || got["sequence"] == nil || got["position"] == nil {
		t.Errorf("payload = %v", got)
	}
	// Each delivery is logged with its attempt.
	page := waitDeliveries(t, hooks, hAll.ID, events.StateDelivered, 4)
	if page.TotalItems != 4 {
		t.Errorf("deliveries of the all webhook = %d, want 4", page.TotalItems)
	}
	for _, d := range page.Items {
		if d.State != events.StateDelivered || d.Attempts != 1 || d.LastStatus != 204 {
			t.Errorf("delivery %+v, want delivered at the first attempt with 204", d)
		}
	}
}

func TestWebhookRetriesThenDeadLetters(t *testing.T) {
	e := newEnv(t)
	opts := fast()
	opts.GiveUpAfter = 2 * time.Second
	hooks := e.start(opts)
	ctx := context.Background()

	flaky := newReceiver(t)
	flaky.fail = 2
	hFlaky := mustHook(t, hooks, events.WebhookInput{URL: ptr(flaky.srv.URL), Collections: ptr([]string{"notes"})})
	flaky.secrets = hFlaky.Secrets
	down := newReceiver(t)
	down.status = http.StatusServiceUnavailable
	hDown := mustHook(t, hooks, events.WebhookInput{URL: ptr(down.srv.URL), Collections: ptr([]string{"notes"})})
	down.secrets = hDown.Secrets

	note := e.create("notes", map[string]any{"text": "retry me"})
	flaky.wait(1)
	list := waitDeliveries(t, hooks, hFlaky.ID, events.StateDelivered, 1)
	d, err := hooks.Delivery(ctx, superuser(), hFlaky.ID, list.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != events.StateDelivered || d.Attempts != 3 || len(d.Log) != 3 {
		t.Fatalf("delivery = %+v, want delivered at the third attempt", d)
	}
	for i, a := range d.Log { // newest first
		wantStatus := 500
		if i == 0 {
			wantStatus = 204
		}
		if a.Status != wantStatus || a.Attempt != 3-i || len(a.Response) > 1024 || a.LatencyMs < 0 {
			t.Errorf("attempt %d = status %d #%d response %d bytes, want %d #%d at most 1024 bytes", i, a.Status, a.Attempt, len(a.Response), wantStatus, 3-i)
		}
	}
	if !strings.Contains(string(d.Payload), note.ID()) {
		t.Errorf("payload %s does not hold the note", d.Payload)
	}

	// The endpoint that is down is tried until GiveUpAfter, then given up.
	dead := waitDeliveries(t, hooks, hDown.ID, events.StateDead, 1)
	if dead.Items[0].Attempts < 2 || dead.Items[0].LastStatus != 503 {
		t.Errorf("dead delivery = %+v, want several attempts ending in 503", dead.Items[0])
	}
	attempts, err := hooks.Attempts(ctx, superuser(), hDown.ID, events.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if attempts.TotalItems < 2 {
		t.Errorf("attempts logged = %d, want every retry", attempts.TotalItems)
	}
	// A dead delivery can be sent again by replaying its event.
	down.mu.Lock()
	down.status = 0
	down.mu.Unlock()
	if n, err := hooks.Replay(ctx, superuser(), hDown.ID, events.Replay{EventID: attempts.Items[0].EventID}); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if got := down.wait(1); got[0].id != attempts.Items[0].EventID {
		t.Errorf("replayed webhook-id = %s, want the event's id %s", got[0].id, attempts.Items[0].EventID)
	}
}

// waitDeliveries waits until webhook id has n deliveries in state.
func waitDeliveries(t *testing.T, hooks *events.Webhooks, id, state string, n int) *events.Page[events.Delivery] {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := hooks.Deliveries(context.Background(), superuser(), id, events.ListOptions{State: state})
		if err != nil {
			t.Fatal(err)
		}
		if page.TotalItems >= n {
			return page
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s has %d deliveries %s after 10s, want %d", id, page.TotalItems, state, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWebhookPauseResumeRotateReplay(t *testing.T) {
	e := newEnv(t)
	hooks := e.start(fast())
	ctx := context.Background()
	rc := newReceiver(t)
	h := mustHook(t, hooks, events.WebhookInput{URL: ptr(rc.srv.URL), Collections: ptr([]string{"notes"})})
	rc.secrets = h.Secrets

	if _, err := hooks.Update(ctx, superuser(), h.ID, events.WebhookInput{Paused: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.create("notes", map[string]any{"text": "while paused"})
	rc.none(0)
	if _, err := hooks.Update(ctx, superuser(), h.ID, events.WebhookInput{Paused: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	first := rc.wait(1)[0]

	// After a rotation both secrets sign; a receiver that only knows the
	// new one, or only the old one, verifies.
	old := h.Secrets[0]
	h, err := hooks.RotateSecret(ctx, superuser(), h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Secrets) != 2 || h.Secrets[1] != old || h.Secrets[0] == old {
		t.Fatalf("secrets after rotation = %v, want [new, %s]", h.Secrets, old)
	}
	for _, only := range []string{h.Secrets[0], old} {
		rc.mu.Lock()
		rc.secrets = []string{only}
		n := len(rc.got)
		rc.mu.Unlock()
		e.create("notes", map[string]any{"text": "after rotation"})
		rc.wait(n + 1)
	}

	// Replaying the time range sends the three notes again with their ids.
	n, err := hooks.Replay(ctx, superuser(), h.ID, events.Replay{From: start.Add(-time.Second), To: time.Now().Add(time.Second)})
	if err != nil || n != 3 {
		t.Fatalf("Replay(range) = %d, %v; want 3", n, err)
	}
	got := rc.wait(6)
	ids := map[string]int{}
	for _, r := range got {
		ids[r.id]++
	}
	if len(ids) != 3 || ids[first.id] != 2 {
		t.Errorf("webhook-ids received = %v, want each of 3 events twice", ids)
	}
	if _, err := hooks.Replay(ctx, superuser(), h.ID, events.Replay{EventID: "missing"}); underhood.ErrorCode(err) != underhood.ENotFound {
		t.Errorf("Replay(missing event) = %v, want ENotFound", err)
	}
}

func TestWebhookValidation(t *testing.T) {
	e := newEnv(t)
	hooks := e.start(fast())
	ctx := context.Background()
	tests := []struct {
		name  string
		in    events.WebhookInput
		field string
	}{
		{"no url", events.WebhookInput{}, "url"},
		{"ftp url", events.WebhookInput{URL: ptr("ftp://example.com/x")}, "url"},
		{"credentials in url", events.WebhookInput{URL: ptr("https://u:p@example.com/x")}, "url"},
		{"unknown collection", events.WebhookInput{URL: ptr("https://example.com"), Collections: ptr([]string{"nope"})}, "collections"},
		{"unknown action", events.WebhookInput{URL: ptr("https://example.com"), Actions: ptr([]string{"upsert"})}, "actions"},
		{"filter without collections", events.WebhookInput{URL: ptr("https://example.com"), Filter: ptr("title = 'x'")}, "filter"},
		{"filter on a missing field", events.WebhookInput{URL: ptr("https://example.com"), Collections: ptr([]string{"posts"}), Filter: ptr("nope = 1")}, "filter"},
		{"three secrets", events.WebhookInput{URL: ptr("https://example.com"), Secrets: ptr([]string{events.NewSecret(), events.NewSecret(), events.NewSecret()})}, "secrets"},
		{"secret without prefix", events.WebhookInput{URL: ptr("https://example.com"), Secrets: ptr([]string{"abc"})}, "secrets"},
		{"short secret", events.WebhookInput{URL: ptr("https://example.com"), Secrets: ptr([]string{"whsec_YWJj"})}, "secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hooks.Create(ctx, superuser(), tt.in)
			var ue *underhood.Error
			if !errors.As(err, &ue) || ue.Code != underhood.EInvalid || ue.Data[tt.field] == nil {
				t.Errorf("Create(%s) = %v, want a validation error on %s", tt.name, err, tt.field)
			}
		})
	}
	list, err := hooks.List(ctx, superuser())
	if err != nil || len(list) != 0 {
		t.Errorf("List after refused creates = %v, %v; want none", list, err)
	}
}

func TestWebhookRefusesLoopbackWithoutAllowlist(t *testing.T) {
	e := newEnv(t)
	opts := fast()
	opts.Client = nil // the default outbound client
	hooks := e.start(opts)
	ctx := context.Background()
	rc := newReceiver(t)
	h := mustHook(t, hooks, events.WebhookInput{URL: ptr(rc.srv.URL)})
	rc.secrets = h.Secrets
	e.create("notes", map[string]any{"text": "x"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := hooks.Attempts(ctx, superuser(), h.ID, events.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if page.TotalItems > 0 {
			if a := page.Items[0]; a.Status != 0 || !strings.Contains(a.Error, "refused") {
				t.Errorf("attempt = %+v, want a refused connection", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.none(0)
}

// The relay's position survives a restart: events committed while it was
// stopped arrive after it starts again, and the ones delivered before do
// not arrive twice.
func TestRelayResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rc := newReceiver(t)
	hooks, err := events.NewWebhooks(ctx, e.store, e.records, quiet, fast())
	if err != nil {
		t.Fatal(err)
	}
	relay, err := events.NewRelay(ctx, e.store, e.records, quiet, events.RelayOptions{Poll: 50 * time.Millisecond}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	h := mustHook(t, hooks, events.WebhookInput{URL: ptr(rc.srv.URL)})
	rc.secrets = h.Secrets
	e.create("notes", map[string]any{"text": "1"})
	rc.wait(1)
	relay.Close()
	hooks.Close()
	e.create("notes", map[string]any{"text": "2"})
	e.create("notes", map[string]any{"text": "3"})
	e.store.Close()

	e.open()
	e.start(fast())
	got := summary(rc.wait(3))
	rc.none(3)
	if want := "notes create 1|notes create 2|notes create 3"; strings.Join(got, "|") != want {
		t.Errorf("received %q, want %q", got, want)
	}
}

func TestSignVerify(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the Standard Webhooks example secret
	id, ts := "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	sig := events.Sign([]string{secret}, id, ts, body)
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; sig != want {
		t.Errorf("Sign = %q, want the specification's %q", sig, want)
	}
	tests := []struct {
		name string
		id   string
		ts   string
		sig  string
		body string
		want error
	}{
		{"valid", id, "1614265330", sig, string(body), nil},
		{"one of two", id, "1614265330", "v1,bm90IGl0 " + sig, string(body), nil},
		{"body changed", id, "1614265330", sig, `{"test": 1}`, events.ErrNoSignature},
		{"id changed", "msg_other", "1614265330", sig, string(body), events.ErrNoSignature},
		{"old timestamp", id, "1614264000", sig, string(body), events.ErrTimestamp},
		{"other version", id, "1614265330", strings.Replace(sig, "v1,", "v2,", 1), string(body), events.ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := events.Verify(secret, tt.id, tt.ts, tt.sig, []byte(tt.body), ts, 5*time.Minute)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestIdleWebhooksKeepTheCache: with a webhook and nothing to deliver, the
// deliverer's polls write nothing, so cached read results stay valid (a
// write transaction, even an empty one, ends them all).
func TestIdleWebhooksKeepTheCache(t *testing.T) {
	e := newEnv(t)
	rec := newReceiver(t)
	hooks := e.start(fast())
	if _, err := hooks.Create(context.Background(), superuser(), events.WebhookInput{URL: ptr(rec.srv.URL)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the webhook's creation settles
	before := e.store.Version()
	time.Sleep(2500 * time.Millisecond) // two polls or more
	if after := e.store.Version(); after != before {
		t.Errorf("the store's version went from %d to %d with nothing to deliver; want no write", before, after)
	}
}

// TestWebhooksRefuseAllButSuperusers: the webhooks service itself refuses
// every caller but a superuser, with the API's 401 for a guest and 403
// for anyone else, whichever adapter calls it; and nothing a refused
// caller asked for happens.
func TestWebhooksRefuseAllButSuperusers(t *testing.T) {
	e := newEnv(t)
	hooks := e.start(fast())
	ctx := context.Background()
	h := mustHook(t, hooks, events.WebhookInput{Name: ptr("kept"), URL: ptr("https://example.com/hook")})
	user, err := e.records.Create(ctx, e.records.SystemRequest(), "users", map[string]any{
		"email": "alice@example.com", "password": "secret-alice", "passwordConfirm": "secret-alice"}, "")
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(caller *underhood.Record) error
	}{
		{"List", func(c *underhood.Record) error { _, err := hooks.List(ctx, c); return err }},
		{"Get", func(c *underhood.Record) error { _, err := hooks.Get(ctx, c, h.ID); return err }},
		{"Create", func(c *underhood.Record) error {
			_, err := hooks.Create(ctx, c, events.WebhookInput{URL: ptr("https://example.com/other")})
			return err
		}},
		{"Update", func(c *underhood.Record) error {
			_, err := hooks.Update(ctx, c, h.ID, events.WebhookInput{Name: ptr("changed"), Paused: ptr(true)})
			return err
		}},
		{"RotateSecret", func(c *underhood.Record) error { _, err := hooks.RotateSecret(ctx, c, h.ID); return err }},
		{"Delete", func(c *underhood.Record) error { return hooks.Delete(ctx, c, h.ID) }},
		{"Deliveries", func(c *underhood.Record) error {
			_, err := hooks.Deliveries(ctx, c, h.ID, events.ListOptions{})
			return err
		}},
		{"Delivery", func(c *underhood.Record) error { _, err := hooks.Delivery(ctx, c, h.ID, "any"); return err }},
		{"Attempts", func(c *underhood.Record) error {
			_, err := hooks.Attempts(ctx, c, h.ID, events.ListOptions{})
			return err
		}},
		{"Replay", func(c *underhood.Record) error {
			_, err := hooks.Replay(ctx, c, h.ID, events.Replay{EventID: "any"})
			return err
		}},
	}
	callers := []struct {
		name   string
		caller *underhood.Record
		want   string
	}{
		{"a guest", nil, underhood.EUnauthorized},
		{"a user", user, underhood.EForbidden},
	}
	for _, c := range calls {
		for _, who := range callers {
			t.Run(c.name+" by "+who.name, func(t *testing.T) {
				if err := c.call(who.caller); underhood.ErrorCode(err) != who.want {
					t.Errorf("%s by %s = %v, want %s", c.name, who.name, err, who.want)
				}
			})
		}
	}
	list, err := hooks.List(ctx, superuser())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "kept" || list[0].Paused || strings.Join(list[0].Secrets, " ") != strings.Join(h.Secrets, " ") {
		var got []events.Webhook
		for _, w := range list {
			got = append(got, *w)
		}
		t.Errorf("webhooks after the refused calls = %+v, want only %+v unchanged", got, *h)
	}
}

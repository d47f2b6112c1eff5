package rest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// redirect sends the provider's redirect to /api/oauth2-redirect as a
// browser would: the parameters in the query of a GET or HEAD, in a form
// body for a POST (response_mode=form_post). A string body is posted raw.
func (e *env) redirect(method string, params url.Values, rawBody ...string) (*http.Response, string) {
	e.t.Helper()
	target := e.srv.URL + "/api/oauth2-redirect"
	var body io.Reader
	switch {
	case len(rawBody) > 0:
		body = strings.NewReader(rawBody[0])
	case method == "POST":
		body = strings.NewReader(params.Encode())
	default:
		target += "?" + params.Encode()
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// oauth2Message is the data of an @oauth2 event, as the SDK reads it.
func oauth2Message(state, code, errCode string) map[string]any {
	m := map[string]any{"state": state, "code": code}
	if errCode != "" {
		m["error"] = errCode
	}
	return m
}

func TestOAuth2Redirect(t *testing.T) {
	e := newEnv(t)
	// alice and a guest wait for an OAuth2 answer; bob's stream follows
	// posts only. Each stream's events are checked at the end: exactly
	// the messages of the scenarios below, in order, and nothing else.
	ids := map[string]string{}
	streams := map[string]<-chan sseEvent{}
	ids["alice"], streams["alice"] = e.stream("alice", "@oauth2")
	ids["guest"], streams["guest"] = e.stream("", "@oauth2")
	ids["bob"], streams["bob"] = e.stream("bob", "posts/*")
	want := map[string][]map[string]any{}
	waitForOAuth2 := func() {
		t.Helper()
		e.resubscribe(ids["alice"], "alice", "@oauth2")
		e.resubscribe(ids["guest"], "", "@oauth2")
	}
	long := strings.Repeat("c", 9000)

	tests := []struct {
		name        string
		resubscribe bool // the clients subscribe to @oauth2 again first
		method      string
		params      url.Values
		rawBody     string // posted instead of params when set
		wantStatus  int
		to          string         // the client that gets a message
		message     map[string]any // the message it gets
		page        []string       // in the HTML
		notPage     []string
	}{
		{"a code goes to the client named by the state", true, "GET",
			url.Values{"state": {ids["alice"]}, "code": {"code-1"}}, "", 200,
			"alice", oauth2Message(ids["alice"], "code-1", ""),
			[]string{"Signed in", "<script>window.close()</script>"}, []string{"code-1", ids["alice"]}},
		{"a state is used once", false, "GET",
			url.Values{"state": {ids["alice"]}, "code": {"code-2"}}, "", 400,
			"", nil, []string{"Sign-in expired"}, []string{"window.close", "code-2"}},
		{"an unknown state sends nothing", true, "GET",
			url.Values{"state": {"unknown-state-0123456789"}, "code": {"code-3"}}, "", 400,
			"", nil, []string{"Sign-in expired"}, []string{"window.close", "code-3"}},
		{"no state sends nothing", true, "GET",
			url.Values{"code": {"code-4"}}, "", 400,
			"", nil, []string{"Sign-in expired"}, []string{"window.close"}},
		{"a client that does not wait for OAuth2 gets nothing", true, "GET",
			url.Values{"state": {ids["bob"]}, "code": {"code-5"}}, "", 400,
			"", nil, []string{"Sign-in expired"}, []string{"window.close"}},
		{"a provider error is delivered as an error", true, "GET",
			url.Values{"state": {ids["guest"]}, "error": {"access_denied"}}, "", 200,
			"guest", oauth2Message(ids["guest"], "", "access_denied"),
			[]string{"Sign-in failed", "<code>access_denied</code>"}, []string{"window.close"}},
		{"form_post delivers the code", true, "POST",
			url.Values{"state": {ids["alice"]}, "code": {"code-6"}, "user": {`{"name":{"firstName":"A"}}`}}, "", 200,
			"alice", oauth2Message(ids["alice"], "code-6", ""),
			[]string{"Signed in", "window.close()"}, nil},
		{"a malformed form body sends nothing", true, "POST",
			nil, "state=" + ids["guest"] + "&code=%zz", 400,
			"", nil, []string{"Sign-in failed"}, []string{"window.close"}},
		{"an oversized code sends nothing", true, "GET",
			url.Values{"state": {ids["alice"]}, "code": {long}}, "", 400,
			"", nil, []string{"Sign-in failed"}, []string{"window.close", long}},
		{"HEAD does not use up the subscription", true, "HEAD",
			url.Values{"state": {ids["alice"]}, "code": {"code-7"}}, "", 405,
			"", nil, nil, nil},
		{"the GET after a HEAD still finds the client", false, "GET",
			url.Values{"state": {ids["alice"]}, "code": {"code-8"}}, "", 200,
			"alice", oauth2Message(ids["alice"], "code-8", ""), []string{"Signed in"}, nil},
		{"the error of an unknown state is escaped", true, "GET",
			url.Values{"state": {"nope"}, "error": {"<script>alert(1)</script>"}}, "", 400,
			"", nil, []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script>alert"}},
		{"a delivered error is escaped in the page and in the message", true, "GET",
			url.Values{"state": {ids["guest"]}, "error": {`"><img src=x onerror=alert(1)>`}}, "", 200,
			"guest", oauth2Message(ids["guest"], "", `"><img src=x onerror=alert(1)>`),
			[]string{"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"}, []string{"<img"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.resubscribe {
				waitForOAuth2()
			}
			var res *http.Response
			var page string
			if tt.rawBody != "" {
				res, page = e.redirect(tt.method, nil, tt.rawBody)
			} else {
				res, page = e.redirect(tt.method, tt.params)
			}
			if res.StatusCode != tt.wantStatus {
				t.Errorf("%s /api/oauth2-redirect = %d, want %d\n%s", tt.method, res.StatusCode, tt.wantStatus, page)
			}
			checkRedirectHeaders(t, res, tt.method != "HEAD")
			for _, s := range tt.page {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q:\n%s", s, page)
				}
			}
			for _, s := range tt.notPage {
				if strings.Contains(page, s) {
					t.Errorf("page has %.40q:\n%.600s", s, page)
				}
			}
			if tt.to != "" {
				want[tt.to] = append(want[tt.to], tt.message)
			}
		})
	}

	// Record changes never reach a stream through @oauth2.
	if st, body := e.do("POST", "/api/collections/posts/records", "alice", map[string]any{
		"title": "public", "public": true, "owner": e.ids["alice"]}); st != 200 {
		t.Fatalf("create post: %d %s", st, body)
	}
	want["bob"] = append(want["bob"], map[string]any{"event": "posts/*"})

	// A last message to each stream marks the end of what it got.
	e.resubscribe(ids["bob"], "bob", "posts/*", "@oauth2")
	waitForOAuth2()
	for _, name := range []string{"alice", "guest", "bob"} {
		if res, page := e.redirect("GET", url.Values{"state": {ids[name]}, "code": {"end"}}); res.StatusCode != 200 {
			t.Fatalf("end marker to %s = %d\n%s", name, res.StatusCode, page)
		}
		var got []map[string]any
		for {
			ev := next(t, streams[name])
			if ev.name != "@oauth2" {
				got = append(got, map[string]any{"event": ev.name})
				continue
			}
			if ev.data["code"] == "end" {
				break
			}
			got = append(got, ev.data)
		}
		if diff := cmp.Diff(want[name], got); diff != "" {
			t.Errorf("messages of %s's stream (-want +got):\n%s", name, diff)
		}
	}
}

// checkRedirectHeaders checks that the page is HTML that is never cached,
// cannot be framed, and may run only its own script and style.
func checkRedirectHeaders(t *testing.T, res *http.Response, html bool) {
	t.Helper()
	h := res.Header
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", got)
	}
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q, want no-referrer", got)
	}
	csp := h.Get("Content-Security-Policy")
	for _, s := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, s) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, s)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q allows any inline script", csp)
	}
	if html {
		if got := h.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("Content-Type = %q", got)
		}
	}
}

// The page's inline script and style must match the hashes the policy
// allows, or a browser would refuse them (and the window stay open).
func TestOAuth2RedirectPolicyAllowsThePage(t *testing.T) {
	e := newEnv(t)
	id, _ := e.stream("", "@oauth2")
	res, page := e.redirect("GET", url.Values{"state": {id}, "code": {"c"}})
	if res.StatusCode != 200 {
		t.Fatalf("redirect = %d\n%s", res.StatusCode, page)
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, tag := range []string{"script", "style"} {
		m := regexp.MustCompile(`<` + tag + `>([^<]*)</` + tag + `>`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("page has no <%s>:\n%s", tag, page)
		}
		sum := sha256.Sum256([]byte(m[1]))
		hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, tag+"-src "+hash) {
			t.Errorf("Content-Security-Policy %q does not allow the page's %s (%s)", csp, tag, hash)
		}
	}
}

func TestOAuth2SubscriptionTopics(t *testing.T) {
	e := newEnv(t)
	id, _ := e.stream("", "posts/*")
	tests := []struct {
		name   string
		who    string
		topics []string
		want   int
	}{
		{"guest", "", []string{"@oauth2"}, 204},
		{"with record topics", "", []string{"@oauth2", "posts/*"}, 204},
		{"another special topic", "", []string{"@other"}, 400},
		{"@oauth2 with options", "", []string{"@oauth2?options=%7B%7D"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"clientId": id, "subscriptions": tt.topics}
			if st, res := e.do("POST", "/api/realtime", tt.who, body); st != tt.want {
				t.Errorf("POST /api/realtime %v = %d %s, want %d", tt.topics, st, res, tt.want)
			}
		})
	}
	// A signed-in subscriber needs no rule either.
	e.stream("alice", "@oauth2")
}

func TestOAuth2RedirectOverWebSocket(t *testing.T) {
	e := newWSEnv(t)
	c := e.dialWS(nil)
	c.send(map[string]any{"type": "subscribe", "topics": []string{"@oauth2"}})
	if m := c.next(); m["type"] != "subscribed" {
		t.Fatalf("subscribe answered %v", m)
	}
	res, err := http.Get(e.ws.URL + "/api/oauth2-redirect?" + url.Values{"state": {c.id}, "code": {"ws-code"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("redirect = %d", res.StatusCode)
	}
	want := map[string]any{"type": "message", "topic": "@oauth2", "data": oauth2Message(c.id, "ws-code", "")}
	if diff := cmp.Diff(want, c.next()); diff != "" {
		t.Errorf("WebSocket message (-want +got):\n%s", diff)
	}
}

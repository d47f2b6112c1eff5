package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	data map[string]any
	raw  string // the data line as sent
}

// subscribe opens a realtime stream as who, subscribes it to topics and
// returns its events.
func (e *env) subscribe(who string, topics ...string) <-chan sseEvent {
	e.t.Helper()
	_, events := e.stream(who, topics...)
	return events
}

// stream opens a realtime stream as who, subscribes it to topics and
// returns its client id and events.
func (e *env) stream(who string, topics ...string) (string, <-chan sseEvent) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/realtime", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("GET /api/realtime Content-Type = %q", ct)
	}
	events := make(chan sseEvent, 64)
	go func() {
		defer res.Body.Close()
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event:"):
				ev.name = strings.TrimPrefix(line, "event:")
			case strings.HasPrefix(line, "data:"):
				ev.raw = strings.TrimPrefix(line, "data:")
				json.Unmarshal([]byte(ev.raw), &ev.data)
			case line == "" && ev.name != "":
				events <- ev
				ev = sseEvent{}
			}
		}
	}()
	first := next(e.t, events)
	if first.name != "PB_CONNECT" {
		e.t.Fatalf("first event = %q, want PB_CONNECT", first.name)
	}
	id, _ := first.data["clientId"].(string)
	e.resubscribe(id, who, topics...)
	return id, events
}

// resubscribe sets the subscriptions of client id, as who.
func (e *env) resubscribe(id, who string, topics ...string) {
	e.t.Helper()
	if st, body := e.do("POST", "/api/realtime", who, map[string]any{"clientId": id, "subscriptions": topics}); st != 204 {
		e.t.Fatalf("subscribe %v = %d %s", topics, st, body)
	}
}

func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("realtime stream closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no realtime event within 5s")
	}
	return sseEvent{}
}

func recordOf(ev sseEvent) map[string]any {
	r, _ := ev.data["record"].(map[string]any)
	return r
}

func TestRealtime(t *testing.T) {
	e := newEnv(t)
	alice := e.ids["alice"]
	bob := e.subscribe("bob", "posts/*")
	guest := e.subscribe("", "posts/*")
	su := e.subscribe("su", "posts/*")
	opts, _ := json.Marshal(map[string]any{"query": map[string]any{"filter": "views > 5", "fields": "id,title"}})
	filtered := e.subscribe("alice", "posts/*?options="+url.QueryEscape(string(opts)))

	create := func(title string, views int, public bool) string {
		t.Helper()
		st, body := e.do("POST", "/api/collections/posts/records", "alice", map[string]any{
			"title": title, "views": views, "public": public, "owner": alice, "secret": "s-" + title})
		if st != 200 {
			t.Fatalf("create %s = %d %s", title, st, body)
		}
		return jsonField(t, body, "id")
	}
	create("private", 10, false)
	publicID := create("public", 1, true)

	// Events arrive in commit order: the first one bob and the guest see
	// must be the public post.
	for name, ch := range map[string]<-chan sseEvent{"bob": bob, "guest": guest} {
		ev := next(t, ch)
		if ev.name != "posts/*" || ev.data["action"] != "create" || recordOf(ev)["id"] != publicID {
			t.Fatalf("%s got %v, want the create of the public post only", name, ev)
		}
		if _, leaked := recordOf(ev)["secret"]; leaked {
			t.Fatalf("%s got the hidden field: %v", name, ev.data)
		}
	}
	if ev := next(t, su); recordOf(ev)["title"] != "private" || recordOf(ev)["secret"] != "s-private" {
		t.Fatalf("superuser got %v, want the private post with its hidden field", ev.data)
	}
	if ev := next(t, su); recordOf(ev)["id"] != publicID {
		t.Fatalf("superuser got %v, want the public post", ev.data)
	}
	ev := next(t, filtered)
	if r := recordOf(ev); r["title"] != "private" || len(r) != 2 {
		t.Fatalf("filtered subscription got %v, want only the post with views > 5, projected to id,title", ev.data)
	}

	// A rule change applies to open subscriptions at once.
	if st, body := e.do("PATCH", "/api/collections/posts", "su", map[string]any{"listRule": "owner = @request.auth.id"}); st != 200 {
		t.Fatalf("change list rule: %d %s", st, body)
	}
	create("after rule change", 1, true)
	if st, _ := e.do("DELETE", "/api/collections/posts/records/"+publicID, "alice", nil); st != 204 {
		t.Fatalf("delete = %d", st)
	}
	if ev := next(t, su); recordOf(ev)["title"] != "after rule change" {
		t.Fatalf("superuser got %v", ev.data)
	}
	if ev := next(t, su); ev.data["action"] != "delete" || recordOf(ev)["id"] != publicID {
		t.Fatalf("superuser got %v, want the delete", ev.data)
	}
	select {
	case ev := <-bob:
		t.Fatalf("bob got %v after the list rule stopped letting him see alice's posts", ev.data)
	case <-time.After(300 * time.Millisecond):
	}

	tests := []struct {
		name string
		body map[string]any
		who  string
		want int
	}{
		{"unknown client", map[string]any{"clientId": "nope", "subscriptions": []string{"posts/*"}}, "", 404},
		{"bad topic", map[string]any{"clientId": "nope", "subscriptions": []string{"posts"}}, "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if st, body := e.do("POST", "/api/realtime", tt.who, tt.body); st != tt.want {
				t.Fatalf("POST /api/realtime %v = %d %s, want %d", tt.body, st, body, tt.want)
			}
		})
	}
}

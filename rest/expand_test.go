package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// nodeGraph creates the public collection "nodes" whose multi relation
// kids points back at nodes, and n records whose kids are all n records:
// each expand level multiplies the references by n.
func (e *env) nodeGraph(n int) []string {
	e.t.Helper()
	st, body := e.do("POST", "/api/collections", "su", map[string]any{
		"name": "nodes", "type": "base", "listRule": "", "viewRule": "", "updateRule": "",
		"fields": []map[string]any{{"name": "label", "type": "text"}},
	})
	if st != 200 {
		e.t.Fatalf("create nodes: %d %s", st, body)
	}
	nodesID := jsonField(e.t, body, "id")
	st, body = e.do("PATCH", "/api/collections/nodes", "su", map[string]any{
		"fields": []map[string]any{{"name": "label", "type": "text"}, {"name": "kids", "type": "relation", "collectionId": nodesID, "maxSelect": n}},
	})
	if st != 200 {
		e.t.Fatalf("add kids to nodes: %d %s", st, body)
	}
	ctx := context.Background()
	sys := e.records.SystemRequest()
	ids := make([]string, n)
	for i := range ids {
		r, err := e.records.Create(ctx, sys, "nodes", map[string]any{"label": fmt.Sprint("node ", i)}, "")
		if err != nil {
			e.t.Fatal(err)
		}
		ids[i] = r.ID()
	}
	for _, id := range ids {
		if _, err := e.records.Update(ctx, sys, "nodes", id, map[string]any{"kids": ids}, ""); err != nil {
			e.t.Fatal(err)
		}
	}
	return ids
}

// errorJSON decodes an error body.
func errorJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return m
}

func TestExpandTooLarge(t *testing.T) {
	e := newEnv(t)
	ids := e.nodeGraph(10)
	msg := "The expand would return more than 5000 related records (limit --max-expand-records); expand fewer relations or request fewer records."
	want := map[string]any{"status": 400.0, "message": msg, "data": map[string]any{
		"expand": map[string]any{"code": "validation_expand_too_large", "message": msg, "params": map[string]any{"limit": 5000.0}},
	}}
	tests := []struct {
		name, method, path string
		body               any
	}{
		// 100 + 1,000 + 10,000 + 100,000 expanded records: 37 MB of JSON.
		{"list", "GET", "/api/collections/nodes/records?expand=kids.kids.kids.kids", nil},
		{"view", "GET", "/api/collections/nodes/records/" + ids[0] + "?expand=kids.kids.kids.kids", nil},
		{"update", "PATCH", "/api/collections/nodes/records/" + ids[0] + "?expand=kids.kids.kids.kids", map[string]any{"label": "changed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := e.do(tt.method, tt.path, "", tt.body)
			if st != 400 {
				t.Fatalf("%s %s = %d with %d bytes, want 400", tt.method, tt.path, st, len(body))
			}
			if diff := cmp.Diff(want, errorJSON(t, body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	if st, body := e.do("GET", "/api/collections/nodes/records/"+ids[0], "", nil); st != 200 || jsonField(t, body, "label") != "node 0" {
		t.Errorf("after the refused update: %d with label %q, want node 0", st, jsonField(t, body, "label"))
	}
	// A small expand is served.
	st, body := e.do("GET", "/api/collections/nodes/records/"+ids[0]+"?expand=kids.kids", "", nil)
	var rec struct {
		Expand struct {
			Kids []struct {
				Expand struct{ Kids []map[string]any }
			}
		}
	}
	json.Unmarshal([]byte(body), &rec)
	if st != 200 || len(rec.Expand.Kids) != 10 || len(rec.Expand.Kids[9].Expand.Kids) != 10 {
		t.Errorf("expand=kids.kids = %d with %d bytes, want 10 kids of 10 kids each", st, len(body))
	}
}

// TestExpandTooLargeMemory: the refused expand costs the server little
// memory; it had answered 37 MB after allocating far more.
func TestExpandTooLargeMemory(t *testing.T) {
	e := newEnv(t)
	e.nodeGraph(10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := http.Get(e.srv.URL + "/api/collections/nodes/records?expand=kids.kids.kids.kids")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	runtime.ReadMemStats(&after)
	if res.StatusCode != 400 || n > 4<<10 {
		t.Errorf("expand of 111,100 records = %d with %d bytes, want a 400 of under 4 KiB", res.StatusCode, n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("the request allocated %d MiB, want under 16 MiB", alloc>>20)
	}
}

func TestExpandTooDeep(t *testing.T) {
	e := newEnv(t)
	ids := e.nodeGraph(2)
	st, body := e.do("GET", "/api/collections/nodes/records/"+ids[0]+"?expand=kids.kids.kids.kids.kids.kids.kids", "", nil)
	msg := `Expand path "kids.kids.kids.kids.kids.kids.kids" follows 7 relations; at most 6 are allowed.`
	want := map[string]any{"status": 400.0, "message": msg, "data": map[string]any{
		"expand": map[string]any{"code": "validation_expand_too_deep", "message": msg, "params": map[string]any{"max": 6.0}},
	}}
	if st != 400 {
		t.Fatalf("seven levels = %d %s, want 400", st, body)
	}
	if diff := cmp.Diff(want, errorJSON(t, body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if st, _ := e.do("GET", "/api/collections/nodes/records/"+ids[0]+"?expand=kids.kids.kids.kids.kids.kids", "", nil); st != 200 {
		t.Errorf("six levels = %d, want 200", st)
	}
}

// TestExpandHiddenRelation: a hidden relation field, and a back-relation
// through one, is expanded for a superuser only; anyone else's expand of
// it is ignored.
func TestExpandHiddenRelation(t *testing.T) {
	e := newEnv(t)
	st, body := e.do("POST", "/api/collections", "su", map[string]any{
		"name": "notes", "type": "base", "listRule": "", "viewRule": "",
		"fields": []map[string]any{
			{"name": "text", "type": "text"},
			{"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
			{"name": "reviewer", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1, "hidden": true},
		},
	})
	if st != 200 {
		t.Fatalf("create notes: %d %s", st, body)
	}
	// users may be viewed by anyone here, so that only hidden decides.
	if st, body := e.do("PATCH", "/api/collections/users", "su", map[string]any{"viewRule": ""}); st != 200 {
		t.Fatalf("open users: %d %s", st, body)
	}
	st, body = e.do("POST", "/api/collections/notes/records", "su", map[string]any{"text": "n", "author": e.ids["alice"], "reviewer": e.ids["bob"]})
	if st != 200 {
		t.Fatalf("create note: %d %s", st, body)
	}
	note := jsonField(t, body, "id")

	tests := []struct {
		name, who, path string
		want            []string // expand keys
	}{
		{"guest", "", "/api/collections/notes/records/" + note + "?expand=author,reviewer", []string{"author"}},
		{"user", "bob", "/api/collections/notes/records/" + note + "?expand=author,reviewer", []string{"author"}},
		{"superuser", "su", "/api/collections/notes/records/" + note + "?expand=author,reviewer", []string{"author", "reviewer"}},
		{"user, back-relation", "bob", "/api/collections/users/records/" + e.ids["bob"] + "?expand=notes_via_reviewer", nil},
		{"superuser, back-relation", "su", "/api/collections/users/records/" + e.ids["bob"] + "?expand=notes_via_reviewer", []string{"notes_via_reviewer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := e.do("GET", tt.path, tt.who, nil)
			if st != 200 {
				t.Fatalf("GET %s = %d %s", tt.path, st, body)
			}
			var rec struct{ Expand map[string]any }
			if err := json.Unmarshal([]byte(body), &rec); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range []string{"author", "reviewer", "notes_via_reviewer"} {
				if rec.Expand[k] != nil {
					got = append(got, k)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("GET %s as %q expanded %v, want %v", tt.path, tt.who, got, tt.want)
			}
		})
	}
}

// TestRealtimeExpandTooLarge: an event whose expand would pass the
// realtime limit comes without it, with expandError saying why, over SSE
// and WebSocket; one within the limit comes expanded.
func TestRealtimeExpandTooLarge(t *testing.T) {
	e := newWSEnv(t)
	ids := e.nodeGraph(10)
	big := "nodes/" + ids[0] + "?options=" + urlq(`{"query":{"expand":"kids.kids.kids"}}`)
	small := "nodes/" + ids[0] + "?options=" + urlq(`{"query":{"expand":"kids"}}`)
	bigSSE, smallSSE := e.subscribe("", big), e.subscribe("", small)
	bigWS, smallWS := e.dialWS(nil), e.dialWS(nil)
	bigWS.subscribe("", big)
	smallWS.subscribe("", small)
	if _, err := e.records.Update(context.Background(), e.records.SystemRequest(), "nodes", ids[0], map[string]any{"label": "changed"}, ""); err != nil {
		t.Fatal(err)
	}

	// 10 + 100 + 1,000 expanded records pass the realtime limit of 1,000.
	msg := "The expand would send more than 1000 related records in one realtime message (limit --max-realtime-expand-records); subscribe with fewer relations."
	wantErr := map[string]any{"code": "validation_expand_too_large", "message": msg, "params": map[string]any{"limit": 1000.0}}
	for _, ev := range []struct {
		name string
		data map[string]any
	}{{"SSE", next(t, bigSSE).data}, {"WebSocket", bigWS.next()}} {
		rec, _ := ev.data["record"].(map[string]any)
		if rec["label"] != "changed" || rec["expand"] != nil {
			t.Errorf("%s: record with label %v and expand of %d bytes, want the change without expand", ev.name, rec["label"], len(fmt.Sprint(rec["expand"])))
		}
		if diff := cmp.Diff(wantErr, ev.data["expandError"]); diff != "" {
			t.Errorf("%s: expandError (-want +got):\n%s", ev.name, diff)
		}
	}
	for _, ev := range []struct {
		name string
		data map[string]any
	}{{"SSE", next(t, smallSSE).data}, {"WebSocket", smallWS.next()}} {
		rec, _ := ev.data["record"].(map[string]any)
		kids, _ := rec["expand"].(map[string]any)["kids"].([]any)
		if len(kids) != 10 || ev.data["expandError"] != nil {
			t.Errorf("%s: event with expand=kids has %d kids and expandError %v, want 10 kids and none", ev.name, len(kids), ev.data["expandError"])
		}
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestServeMaxQueryTime checks --max-query-time and $UH_MAX_QUERY_TIME
// (H3): values that are not durations of 0 or more are refused, and a
// guest's list that would run for hours is answered with a 400 naming the
// limit the flag set (it wins over the environment).
func TestServeMaxQueryTime(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--max-query-time", "-1s"}, "", "--max-query-time -1s"},
		{[]string{"--max-query-time", "soon"}, "", "max-query-time"},
		{nil, "soon", "UH_MAX_QUERY_TIME"},
	} {
		env := func(k string) string { return map[string]string{"UH_MAX_QUERY_TIME": tt.env}[k] }
		args := append([]string{"underhood", "serve", "--http", "127.0.0.1:0", "--dir", t.TempDir()}, tt.args...)
		err := run(context.Background(), args, env, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(serve %v, UH_MAX_QUERY_TIME=%q) = %v, want an error naming %s", tt.args, tt.env, err, tt.want)
		}
	}

	dir := t.TempDir()
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("superuser upsert: %v", err)
	}
	env := func(k string) string { return map[string]string{"UH_MAX_QUERY_TIME": "1h"}[k] }
	srv, _ := startServe(t, env, "--dir", dir, "--max-query-time", "300ms")
	token := superuserToken(t, srv.base)

	// 30 nodes whose kids are all 30.
	status, coll := call(t, "POST", srv.base+"/api/collections", token, map[string]any{
		"name": "nodes", "type": "base", "listRule": "", "viewRule": "",
		"fields": []map[string]any{{"name": "label", "type": "text"}},
	})
	if status != 200 {
		t.Fatalf("create collection = %d %v", status, coll)
	}
	fields := append(coll["fields"].([]any), map[string]any{"name": "kids", "type": "relation", "collectionId": coll["id"], "maxSelect": 30})
	if status, body := call(t, "PATCH", srv.base+"/api/collections/nodes", token, map[string]any{"fields": fields}); status != 200 {
		t.Fatalf("add kids = %d %v", status, body)
	}
	records := srv.base + "/api/collections/nodes/records"
	var ids []string
	for i := range 30 {
		status, rec := call(t, "POST", records, token, map[string]any{"label": fmt.Sprintf("n%d", i)})
		if status != 200 {
			t.Fatalf("create node = %d %v", status, rec)
		}
		ids = append(ids, rec["id"].(string))
	}
	for _, id := range ids {
		if status, rec := call(t, "PATCH", records+"/"+id, token, map[string]any{"kids": ids}); status != 200 {
			t.Fatalf("update node = %d %v", status, rec)
		}
	}

	costly := url.Values{"filter": {"kids.kids.kids.kids.label ?~ kids.kids.kids.kids.id"}, "skipTotal": {"1"}}
	start := time.Now()
	status, body := call(t, "GET", records+"?"+costly.Encode(), "", nil)
	took := time.Since(start)
	if msg, _ := body["message"].(string); status != 400 || !strings.Contains(msg, "longer than 300ms") || !strings.Contains(msg, "--max-query-time") {
		t.Errorf("GET a costly list = %d %v, want 400 naming the 300ms limit", status, body)
	}
	if took > 5*time.Second {
		t.Errorf("GET a costly list answered after %v, want soon after 300ms", took)
	}
	if status, body := call(t, "GET", records+"?filter="+url.QueryEscape("kids.label ?= 'n3'"), "", nil); status != 200 || body["totalItems"] != float64(30) {
		t.Errorf("GET a cheap list after = %d %v, want 200 with 30 items", status, body)
	}
}

package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestServeExpandLimitFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error
	}{
		{"zero", []string{"--max-expand-records", "0"}, nil, `serve: --max-expand-records: "0" is not a positive integer`},
		{"negative realtime", []string{"--max-realtime-expand-records=-5"}, nil, `serve: --max-realtime-expand-records: "-5" is not a positive integer`},
		{"not a number", []string{"--max-expand-records", "lots"}, nil, `serve: --max-expand-records: "lots" is not a positive integer`},
		{"env not a number", nil, map[string]string{"UH_MAX_EXPAND_RECORDS": "5k"}, `serve: --max-expand-records: "5k" is not a positive integer`},
		{"env zero", nil, map[string]string{"UH_MAX_REALTIME_EXPAND_RECORDS": "0"}, `serve: --max-realtime-expand-records: "0" is not a positive integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A serve that accepts the setting starts, until the timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			args := append([]string{"underhood", "serve", "--http", "127.0.0.1:0", "--dir", t.TempDir()}, tt.args...)
			err := run(ctx, args, func(k string) string { return tt.env[k] }, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve %v with env %v = %v, want an error with %q", tt.args, tt.env, err, tt.want)
			}
		})
	}
}

// TestServeExpandLimit: UH_MAX_EXPAND_RECORDS reaches the service.
func TestServeExpandLimit(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), []string{"underhood", "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir}, noEnv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	srv := startRun(t, dir, func(k string) string { return map[string]string{"UH_MAX_EXPAND_RECORDS": "1"}[k] })
	_, body := call(t, "POST", srv.base+"/api/collections/_superusers/auth-with-password", "", map[string]any{"identity": "root@example.com", "password": "1234567890"})
	token, _ := body["token"].(string)
	status, body := call(t, "POST", srv.base+"/api/collections", token, map[string]any{"name": "nodes", "type": "base", "viewRule": ""})
	if status != 200 {
		t.Fatalf("create nodes = %d %v", status, body)
	}
	status, body = call(t, "PATCH", srv.base+"/api/collections/nodes", token, map[string]any{
		"fields": []map[string]any{{"name": "kids", "type": "relation", "collectionId": body["id"], "maxSelect": 5}}})
	if status != 200 {
		t.Fatalf("add kids = %d %v", status, body)
	}
	ids := make([]any, 0, 3)
	for range 3 {
		status, body := call(t, "POST", srv.base+"/api/collections/nodes/records", token, map[string]any{"kids": ids})
		if status != 200 {
			t.Fatalf("create node = %d %v", status, body)
		}
		ids = append(ids, body["id"])
	}
	// The second node has one kid, the third two.
	if status, body := call(t, "GET", srv.base+"/api/collections/nodes/records/"+ids[1].(string)+"?expand=kids", "", nil); status != 200 {
		t.Errorf("view with 1 expanded = %d %v, want 200", status, body)
	}
	status, body = call(t, "GET", srv.base+"/api/collections/nodes/records/"+ids[2].(string)+"?expand=kids", "", nil)
	want := "The expand would return more than 1 related records (limit --max-expand-records); expand fewer relations or request fewer records."
	if status != 400 || body["message"] != want {
		t.Errorf("view with 2 expanded = %d %v, want 400 %q", status, body, want)
	}
}

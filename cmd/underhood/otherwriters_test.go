package main

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// Another process writing to the database file of a running server (the
// CLI, someone in the sqlite3 shell) is seen by the server's reads, also
// the ones it had already cached, with no write through the server.
func TestOtherProcessesWritesReachCachedReads(t *testing.T) {
	dir := t.TempDir()
	upsert := func(email string) {
		t.Helper()
		if err := run(context.Background(), []string{"underhood", "superuser", "upsert", email, "1234567890", "--dir", dir}, noEnv, nil, io.Discard, io.Discard); err != nil {
			t.Fatalf("superuser upsert %s: %v", email, err)
		}
	}
	upsert("root@example.com")
	base, _ := serveWithStdout(t, dir)
	token := superuserToken(t, base)

	status, body := call(t, "POST", base+"/api/collections", token, map[string]any{
		"name": "notes", "type": "base", "listRule": "", "viewRule": "",
		"fields": []map[string]any{{"name": "title", "type": "text"}},
	})
	if status != 200 {
		t.Fatalf("create collection = %d %v", status, body)
	}
	status, note := call(t, "POST", base+"/api/collections/notes/records", token, map[string]any{"title": "before"})
	if status != 200 {
		t.Fatalf("create note = %d %v", status, note)
	}
	// Let the server finish the writes its own started (the outbox relay
	// records its progress), so that only the other process's write can
	// end the results cached below.
	time.Sleep(1500 * time.Millisecond)
	superusers := base + "/api/collections/_superusers/records"
	view := base + "/api/collections/notes/records/" + note["id"].(string)
	for range 2 { // the second read is served from the cache
		if _, body := call(t, "GET", superusers, token, nil); body["totalItems"] != float64(1) {
			t.Fatalf("superusers = %v, want 1", body)
		}
		if _, body := call(t, "GET", view, "", nil); body["title"] != "before" {
			t.Fatalf("note = %v, want title before", body)
		}
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "data.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE notes SET title = 'after' WHERE id = ?`, note["id"]); err != nil {
		t.Fatalf("update in another connection: %v", err)
	}
	within(t, "a record updated in another connection", func() bool {
		_, body := call(t, "GET", view, "", nil)
		return body["title"] == "after"
	})

	upsert("second@example.com")
	within(t, "a superuser created by the CLI", func() bool {
		_, body := call(t, "GET", superusers, token, nil)
		return body["totalItems"] == float64(2)
	})
}

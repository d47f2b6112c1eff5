package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// benchHandler is the whole HTTP stack over a posts collection shaped like
// the shared workload's, with n records.
func benchHandler(b *testing.B, n int) (http.Handler, []string) {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(b, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: b.TempDir()}, log)
	authSvc := auth.New(records, log)
	h := server.New(server.Deps{API: rest.NewHandler(rest.Deps{Records: records, Auth: authSvc, Log: log}), Auth: authSvc, Log: log})
	col := `{"name":"posts","type":"base","listRule":"","viewRule":"","createRule":"","fields":[
		{"name":"title","type":"text"},{"name":"body","type":"text"},{"name":"views","type":"number"},
		{"name":"published","type":"bool"}],"indexes":["CREATE INDEX idx_posts_views ON posts (views)"]}`
	su := records.SystemRequest()
	var c underhood.Collection
	if err := json.Unmarshal([]byte(col), &c); err != nil {
		b.Fatal(err)
	}
	if _, err := records.SaveCollection(ctx, su.Auth, "", &c); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		r, err := records.Create(ctx, su, "posts", map[string]any{
			"title": fmt.Sprintf("Post %d", i), "body": "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
			"views": i % 1000, "published": i%2 == 0}, "")
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = r.ID()
	}
	return h, ids
}

func benchGet(b *testing.B, h http.Handler, path string) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != 200 {
				b.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body)
			}
		}
	})
}

func BenchmarkList(b *testing.B) {
	h, _ := benchHandler(b, 2000)
	b.Run("skipTotal", func(b *testing.B) {
		benchGet(b, h, "/api/collections/posts/records?perPage=50&sort=-views&skipTotal=1&filter=views%3E500%26%26published%3Dtrue")
	})
	b.Run("total", func(b *testing.B) {
		benchGet(b, h, "/api/collections/posts/records?perPage=50&sort=-views&filter=views%3E500%26%26published%3Dtrue")
	})
}

func BenchmarkView(b *testing.B) {
	h, ids := benchHandler(b, 100)
	benchGet(b, h, "/api/collections/posts/records/"+ids[7])
}

func BenchmarkHealth(b *testing.B) {
	h, _ := benchHandler(b, 0)
	benchGet(b, h, "/api/health")
}

func BenchmarkCreate(b *testing.B) {
	h, _ := benchHandler(b, 0)
	body := `{"title":"Post x","body":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.","views":42,"published":true}`
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/api/collections/posts/records", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("create = %d %s", rec.Code, rec.Body)
			}
		}
	})
}

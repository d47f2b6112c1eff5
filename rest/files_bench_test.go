package rest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/files"
	"github.com/underhood/underhood/files/s3test"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// The file benchmarks run the whole HTTP stack (as BenchmarkCreate and
// BenchmarkView do for plain records) over each storage backend: upload
// and download of a 1 MiB file, and the first request of a thumbnail.

func benchFileStorage(b *testing.B, backend string) files.Storage {
	b.Helper()
	if backend == "local" {
		st, err := files.NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	srv := s3test.Start(b)
	cfg, err := files.ParseS3URL(srv.URL("bench-" + underhood.RandomString(10)))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Allow = srv.Allow // versitygw listens on loopback
	st, err := files.NewS3(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		b.Fatal(err)
	}
	return st
}

// benchFileHandler is the HTTP stack with a "media" collection anyone may
// write, holding one file field of up to 2 MiB with a 100x100 thumb.
func benchFileHandler(b *testing.B, st files.Storage) (http.Handler, *files.Service) {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(b, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: b.TempDir()}, log)
	fileSvc := files.New(st, records, log, files.Options{SweepInterval: -1, StagingDir: b.TempDir()})
	b.Cleanup(fileSvc.Close)
	authSvc := auth.New(records, log)
	h := server.New(server.Deps{API: rest.NewHandler(rest.Deps{Records: records, Auth: authSvc, Log: log, Files: fileSvc}), Auth: authSvc, Log: log})
	var c underhood.Collection
	if err := json.Unmarshal([]byte(`{"name":"media","type":"base","listRule":"","viewRule":"","createRule":"","updateRule":"",
		"fields":[{"name":"title","type":"text"},{"name":"file","type":"file","maxSelect":1,"maxSize":2097152}]}`), &c); err != nil {
		b.Fatal(err)
	}
	if _, err := records.SaveCollection(ctx, records.SystemRequest().Auth, "", &c); err != nil {
		b.Fatal(err)
	}
	return h, fileSvc
}

func benchUploadBody(b *testing.B, name string, data []byte) ([]byte, string) {
	b.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("title", "bench")
	w, _ := mw.CreateFormFile("file", name)
	w.Write(data)
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func benchCreate(b *testing.B, h http.Handler, body []byte, ct string) map[string]any {
	req := httptest.NewRequest("POST", "/api/collections/media/records", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("upload = %d %s", rec.Code, rec.Body)
	}
	var m map[string]any
	json.Unmarshal(rec.Body.Bytes(), &m)
	return m
}

var benchBackends = []string{"local", "s3"}

func BenchmarkFileUpload1MiB(b *testing.B) {
	data := make([]byte, 1<<20)
	rand.Read(data)
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			h, _ := benchFileHandler(b, benchFileStorage(b, backend))
			body, ct := benchUploadBody(b, "blob.bin", data)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				benchCreate(b, h, body, ct)
			}
		})
	}
}

func BenchmarkFileDownload1MiB(b *testing.B) {
	data := make([]byte, 1<<20)
	rand.Read(data)
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			h, _ := benchFileHandler(b, benchFileStorage(b, backend))
			body, ct := benchUploadBody(b, "blob.bin", data)
			m := benchCreate(b, h, body, ct)
			path := "/api/files/media/" + m["id"].(string) + "/" + m["file"].(string)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
					if rec.Code != 200 || rec.Body.Len() != len(data) {
						b.Fatalf("download = %d (%d bytes)", rec.Code, rec.Body.Len())
					}
				}
			})
		})
	}
}

// BenchmarkFileThumbnail measures first requests of a 100x100 thumbnail of
// a 1200x800 JPEG: each iteration removes the stored thumbnail first (with
// the timer stopped), so every request decodes, scales, encodes and stores.
func BenchmarkFileThumbnail(b *testing.B) {
	jpg := encodeImage(b, "jpeg", 1200, 800)
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			st := benchFileStorage(b, backend)
			h, _ := benchFileHandler(b, st)
			body, ct := benchUploadBody(b, "photo.jpg", jpg)
			m := benchCreate(b, h, body, ct)
			id, name := m["id"].(string), m["file"].(string)
			path := "/api/files/media/" + id + "/" + name + "?thumb=100x100"
			list, _ := st.List(context.Background(), "")
			prefix := list[0].Key[:len(list[0].Key)-len(name)] + "thumbs_" + name + "/100x100_" + name
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				st.Delete(context.Background(), prefix)
				b.StartTimer()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				if rec.Code != 200 || rec.Body.Len() >= len(jpg) {
					b.Fatalf("thumb = %d (%d bytes)", rec.Code, rec.Body.Len())
				}
			}
		})
	}
}

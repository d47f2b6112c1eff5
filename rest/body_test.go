package rest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/rest"
	"github.com/underhood/underhood/server"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// repeatReader returns a reader of head, then unit repeated, then tail,
// about size bytes in all, without holding them (a large body that costs
// the test nothing), and its exact length.
func repeatReader(head, unit, tail string, size int) (io.Reader, int64) {
	n := (size - len(head) - len(tail)) / len(unit)
	r := io.MultiReader(strings.NewReader(head), &unitReader{unit: unit, left: n}, strings.NewReader(tail))
	return r, int64(len(head) + n*len(unit) + len(tail))
}

// unitReader yields unit left times.
type unitReader struct {
	unit string
	left int
	off  int
}

func (u *unitReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && u.left > 0 {
		c := copy(p[n:], u.unit[u.off:])
		n += c
		u.off += c
		if u.off == len(u.unit) {
			u.off = 0
			u.left--
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// send posts body (chunked when length < 0) with content type ct as who
// and returns the status and body of the answer.
func (e *env) send(path, who, ct string, body io.Reader, length int64) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", ct)
	if who != "" {
		req.Header.Set("Authorization", e.tokens[who])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// allocated returns how many bytes the process allocated while f ran
// (everything, not what was left: the cost of decoding is in the garbage).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestJSONBodyAmplification: a guest's large JSON body of tiny values is
// refused at the JSON body limit (2 MiB) with a 413 naming it, at a cost
// far below the gigabyte it took before (M3); a body under that limit that
// holds too many values, or nests too deeply, is a 400 naming the limit,
// on every path that decodes JSON.
func TestJSONBodyAmplification(t *testing.T) {
	e := newEnv(t)
	const tooLarge = `{"status":413,"message":"Request entity too large: the limit for this body is 2097152 bytes.","data":{}}`
	create := "/api/collections/posts/records"
	t.Run("31 MB of tiny values", func(t *testing.T) {
		// The server's default limits, as serve has them.
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		api := rest.NewHandler(rest.Deps{Records: e.records, Auth: auth.New(e.records, log), Log: log})
		srv := httptest.NewServer(server.New(server.Deps{API: api, Log: log}))
		defer srv.Close()
		defaults := *e
		defaults.srv = srv
		for _, chunked := range []bool{false, true} {
			body, length := repeatReader(`{"title":[`, `{},`, `{}]}`, 31<<20)
			if chunked {
				length = -1
			}
			var st int
			var got string
			cost := allocated(func() { st, got = defaults.send(create, "", "application/json", body, length) })
			if st != 413 || got != tooLarge {
				t.Errorf("31 MB JSON (chunked %v) = %d %s, want 413 %s", chunked, st, got, tooLarge)
			}
			if cost > 64<<20 {
				t.Errorf("31 MB JSON (chunked %v) cost %d MiB of allocations, want < 64 MiB", chunked, cost>>20)
			}
		}
	})

	tooMany := "The JSON body holds too many values: the limit is 100000."
	tooDeep := "The JSON body is nested too deeply: the limit is 64 levels."
	multipartPayload := func(payload string) (string, io.Reader) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("@jsonPayload", payload)
		mw.Close()
		return mw.FormDataContentType(), &b
	}
	values := `{"title":[` + strings.Repeat(`{},`, 200_000) + `{}]}`
	deep := strings.Repeat("[", 100_000)
	tests := []struct {
		name, path, ct string
		body           func() io.Reader
		want           string
	}{
		{"many values", create, "application/json", func() io.Reader { return strings.NewReader(values) }, tooMany},
		{"100k [", create, "application/json", func() io.Reader { return strings.NewReader(deep) }, tooDeep},
		{"65 levels", create, "application/json", func() io.Reader {
			return strings.NewReader(`{"title":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`)
		}, tooDeep},
		{"batch", "/api/batch", "application/json", func() io.Reader {
			return strings.NewReader(`{"requests":[{"method":"POST","url":"` + create + `","body":{"title":` + deep + `}}]}`)
		}, tooDeep},
		{"login", "/api/collections/users/auth-with-password", "application/json", func() io.Reader { return strings.NewReader(values) }, tooMany},
		{"multipart payload", "/api/collections/users/auth-with-password", "", nil, tooDeep},
		{"multipart batch", "/api/batch", "", nil, tooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := tt.ct, io.Reader(nil)
			if tt.body == nil {
				payload := deep
				if tt.path == "/api/batch" {
					payload = `{"requests":` + deep + `}`
				}
				ct, body = multipartPayload(payload)
			} else {
				body = tt.body()
			}
			start := time.Now()
			var st int
			var got string
			cost := allocated(func() { st, got = e.send(tt.path, "", ct, body, -1) })
			if st != 400 || !strings.Contains(got, tt.want) {
				t.Errorf("POST %s = %d %s, want 400 %q", tt.path, st, got, tt.want)
			}
			if cost > 64<<20 {
				t.Errorf("POST %s cost %d MiB of allocations, want < 64 MiB", tt.path, cost>>20)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("POST %s took %v, want well under 5 s", tt.path, d)
			}
		})
	}
}

// TestBodyTimeoutAnswer: a body that misses the server's deadline (L3) is
// answered 408 by the API, not taken for a malformed body.
func TestBodyTimeoutAnswer(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), log)
	api := rest.NewHandler(rest.Deps{Records: records, Auth: auth.New(records, log), Log: log})
	srv := httptest.NewServer(server.New(server.Deps{API: api, Log: log, BodyTimeout: 300 * time.Millisecond}))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/collections/users/auth-with-password HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body within 5 s: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if want := `{"status":408,"message":"The request body was not received in time.","data":{}}`; res.StatusCode != 408 || string(b) != want {
		t.Errorf("stalled body = %d %s, want 408 %s", res.StatusCode, b, want)
	}
}

package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/server"
)

// countingReader yields size bytes of '[' without holding them, counting
// how many were read.
type countingReader struct {
	size int64
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	left := c.size - c.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), left))
	for i := range n {
		p[i] = '['
	}
	c.read.Add(int64(n))
	return n, nil
}

// TestJSONBodyLimit: a JSON body is limited far below a multipart one (M3):
// announced too large it is refused unread, sent chunked it is read only
// up to the limit, over the wire too, and the 413 names the limit.
func TestJSONBodyLimit(t *testing.T) {
	const jsonLimit = 2 << 20 // DefaultJSONBodyLimit
	ts := newServer(t, server.Deps{})
	tooLarge := `{"status":413,"message":"Request entity too large: the limit for this body is 2097152 bytes.","data":{}}`

	t.Run("31 MB announced is refused unread", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/api/collections/posts/records", unreadable{t})
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = 31 << 20
		w := httptest.NewRecorder()
		ts.handler.ServeHTTP(w, req)
		if w.Code != 413 || w.Body.String() != tooLarge {
			t.Errorf("POST of 31 MB JSON = %d %s, want 413 %s", w.Code, w.Body, tooLarge)
		}
	})
	t.Run("1 GiB chunked is read only to the limit", func(t *testing.T) {
		body := &countingReader{size: 1 << 30}
		req := httptest.NewRequest("POST", "/api/body", io.NopCloser(body))
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1
		w := httptest.NewRecorder()
		ts.handler.ServeHTTP(w, req)
		if w.Code != 413 {
			t.Errorf("POST of a chunked 1 GiB JSON body = %d, want 413", w.Code)
		}
		if got := body.read.Load(); got > jsonLimit+64<<10 {
			t.Errorf("read %d bytes of the body, want at most the limit %d and a buffer", got, jsonLimit)
		}
	})
	t.Run("1 GiB chunked over the wire", func(t *testing.T) {
		body := &countingReader{size: 1 << 30}
		req, err := http.NewRequest("POST", ts.URL+"/api/body", io.NopCloser(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := ts.Client().Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 413 {
				t.Errorf("POST of a chunked 1 GiB JSON body = %d, want 413", res.StatusCode)
			}
		}
		// The server closes the connection after its 413 (the client may
		// see that as a write error); what matters is that it stopped
		// reading: what the client got to send is the limit plus the
		// socket buffers, far from the 32 MiB multipart limit.
		if got := body.read.Load(); got > 16<<20 {
			t.Errorf("client sent %d bytes before the server stopped reading (err %v), want < 16 MiB", got, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the refusal took %v, want well under 5 s", d)
		}
	})
	t.Run("multipart keeps its larger limit", func(t *testing.T) {
		size := 3 << 20
		req := httptest.NewRequest("POST", "/api/body", strings.NewReader(strings.Repeat("x", size)))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		w := httptest.NewRecorder()
		ts.handler.ServeHTTP(w, req)
		if want := fmt.Sprintf("read %d", size); w.Code != 200 || w.Body.String() != want {
			t.Errorf("multipart POST of 3 MiB = %d %q, want 200 %q", w.Code, w.Body, want)
		}
	})
}

// TestBatchBodyLimit: batch.maxBodySize, when set, is the limit of a
// batch body, as in PocketBase; other bodies keep theirs.
func TestBatchBodyLimit(t *testing.T) {
	st := *record.DefaultSettings()
	st.Batch.MaxBodySize = 4 << 10
	ts := newServer(t, server.Deps{JSONBodyLimit: 1 << 10, Settings: &settingsSource{st: st}})
	tests := []struct {
		path   string
		size   int
		status int
	}{
		{"/api/batch", 3 << 10, 200},
		{"/api/batch", 5 << 10, 413},
		{"/api/body", 3 << 10, 413},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.path, tt.size), func(t *testing.T) {
			res, _ := ts.do(t, "POST", tt.path, map[string]string{"Content-Type": "application/json"}, strings.NewReader(strings.Repeat(" ", tt.size)))
			if res.StatusCode != tt.status {
				t.Errorf("POST %s of %d bytes = %d, want %d", tt.path, tt.size, res.StatusCode, tt.status)
			}
		})
	}
}

// TestBodyTimeout: a client that sends its headers and then trickles its
// body a byte at a time is cut off once the body is due (L3), while one
// that sends at a fair rate is not, and a stream without a body lives on.
func TestBodyTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := newServer(t, server.Deps{BodyTimeout: timeout, MinBodyRate: 1 << 10})

	t.Run("trickle is cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/body HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		// Without a deadline the 1000 bytes would take 100 s.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a trickled body within 5 s: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout {
			t.Errorf("trickled body = %d, want 408", res.StatusCode)
		}
	})
	t.Run("fair rate is read whole", func(t *testing.T) {
		// 16 KiB in 1 s: 16 KiB/s against a minimum of 1 KiB/s.
		pr, pw := io.Pipe()
		go func() {
			chunk := strings.Repeat(" ", 1<<10)
			for range 16 {
				time.Sleep(1000 / 16 * time.Millisecond)
				pw.Write([]byte(chunk))
			}
			pw.Close()
		}()
		res, got := ts.do(t, "POST", "/api/body", map[string]string{"Content-Type": "application/json"}, pr)
		if res.StatusCode != 200 || got != "read 16384" {
			t.Errorf("body at 16 KiB/s = %d %q, want 200 %q", res.StatusCode, got, "read 16384")
		}
	})
	t.Run("stream without a body outlives the deadline", func(t *testing.T) {
		res, got := ts.do(t, "GET", "/api/stream", nil, nil)
		if res.StatusCode != 200 || strings.Count(got, "data: ") != 10 {
			t.Errorf("GET /api/stream = %d %q, want 200 and ten events over 1 s", res.StatusCode, got)
		}
	})
}

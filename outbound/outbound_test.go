package outbound

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func prefixes(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := ParseAllow(s)
	if err != nil {
		t.Fatalf("ParseAllow(%q): %v", s, err)
	}
	return p
}

func TestCheck(t *testing.T) {
	tests := []struct {
		addr   string
		allow  string
		reason string // "" = allowed
	}{
		{"8.8.8.8", "", ""},
		{"1.1.1.1", "", ""},
		{"2606:4700:4700::1111", "", ""},
		{"127.0.0.1", "", "loopback"},
		{"127.255.0.9", "", "loopback"},
		{"::1", "", "loopback"},
		{"::ffff:127.0.0.1", "", "loopback"},
		{"0.0.0.0", "", "unspecified"},
		{"::", "", "unspecified"},
		{"10.1.2.3", "", "private"},
		{"172.16.0.1", "", "private"},
		{"172.31.255.255", "", "private"},
		{"172.32.0.1", "", ""},
		{"192.168.1.1", "", "private"},
		{"fd12:3456::1", "", "private"},
		{"169.254.1.1", "", "link-local"},
		{"fe80::1", "", "link-local"},
		{"fe80::1%eth0", "", "link-local"},
		{"100.64.0.1", "", "shared (CGNAT)"},
		{"100.127.255.254", "", "shared (CGNAT)"},
		{"224.0.0.1", "", "multicast"},
		{"ff02::1", "", "multicast"},
		{"255.255.255.255", "", "reserved"},
		{"169.254.169.254", "", "cloud metadata"},
		{"fd00:ec2::254", "", "cloud metadata"},
		{"100.100.100.200", "", "cloud metadata"},
		// IPv6 forms that reach an IPv4 address are judged by that address.
		{"64:ff9b::7f00:1", "", "loopback"},
		{"64:ff9b::808:808", "", ""},
		{"2002:7f00:1::1", "", "loopback"},
		{"2002:a00:1::1", "", "private"},
		{"::127.0.0.1", "", "IPv4-compatible"},
		// The allow list opens what it names and nothing else.
		{"127.0.0.1", "127.0.0.1/32", ""},
		{"127.0.0.2", "127.0.0.1/32", "loopback"},
		{"127.0.0.1", "127.0.0.1", ""},
		{"::ffff:127.0.0.1", "127.0.0.1/32", ""},
		{"127.0.0.1", "::ffff:127.0.0.1/128", ""},
		{"10.9.8.7", "10.0.0.0/8", ""},
		{"::1", "::1/128", ""},
		// Metadata stays refused inside a wider allowed network.
		{"169.254.169.254", "169.254.0.0/16", "cloud metadata"},
		{"169.254.169.254", "169.254.169.254/32", ""},
		{"169.254.1.1", "169.254.0.0/16", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr+"_allow_"+tt.allow, func(t *testing.T) {
			err := Check(netip.MustParseAddr(tt.addr), prefixes(t, tt.allow))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Check(%s, %q) = %v, want allowed", tt.addr, tt.allow, err)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
				t.Fatalf("Check(%s, %q) = %v, want a RefusedError", tt.addr, tt.allow, err)
			}
			if re.Reason != tt.reason {
				t.Errorf("Check(%s, %q) reason = %q, want %q", tt.addr, tt.allow, re.Reason, tt.reason)
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	got := prefixes(t, " 127.0.0.1/32, ::1 10.0.0.1/8,")
	want := []string{"127.0.0.1/32", "::1/128", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("ParseAllow = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("ParseAllow[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"localhost", "10.0.0.0/33", "1.2.3"} {
		if _, err := ParseAllow(bad); err == nil {
			t.Errorf("ParseAllow(%q) succeeded, want an error", bad)
		}
	}
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func get(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestClientRefusesInternalAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)

	tests := []struct {
		name  string
		url   string
		allow []netip.Prefix
		ok    bool
	}{
		{"loopback without allow list", srv.URL, nil, false},
		{"a name that resolves to loopback", "http://localhost:" + port + "/", nil, false},
		{"loopback allowed", srv.URL, loopback, true},
		{"another loopback address than the allowed one", "http://127.0.0.2:" + port + "/", loopback, false},
		{"metadata address", "http://169.254.169.254/latest/meta-data/", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := get(t, New(Options{Allow: tt.allow, Timeout: 5 * time.Second}), tt.url)
			if tt.ok {
				if err != nil || body != "hello" {
					t.Fatalf("GET %s = %q, %v; want hello", tt.url, body, err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("GET %s = %q, %v; want ErrRefused", tt.url, body, err)
			}
		})
	}
}

func TestClientRechecksRedirects(t *testing.T) {
	var hops atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/internal":
			// A redirect from an allowed host into a refused one.
			port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
			http.Redirect(w, r, "http://127.0.0.2:"+port+"/secret", http.StatusFound)
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/loop":
			hops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/twice":
			http.Redirect(w, r, "/once", http.StatusFound)
		case "/once":
			http.Redirect(w, r, "/done", http.StatusFound)
		case "/file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/done":
			fmt.Fprint(w, "done")
		}
	}))
	defer srv.Close()
	c := New(Options{Allow: loopback, Timeout: 5 * time.Second})

	if body, err := get(t, c, srv.URL+"/twice"); err != nil || body != "done" {
		t.Fatalf("two redirects on an allowed host = %q, %v; want done", body, err)
	}
	for _, path := range []string{"/internal", "/metadata"} {
		if _, err := get(t, c, srv.URL+path); !errors.Is(err, ErrRefused) {
			t.Errorf("GET %s (redirect into a refused address) = %v, want ErrRefused", path, err)
		}
	}
	if _, err := get(t, c, srv.URL+"/file"); err == nil {
		t.Errorf("GET /file (redirect to file://) succeeded, want an error")
	}
	if _, err := get(t, c, srv.URL+"/loop"); err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Errorf("GET /loop = %v, want stopped after 5 redirects", err)
	}
	if n := hops.Load(); n != 6 {
		t.Errorf("GET /loop made %d requests, want 6 (the first and 5 redirects)", n)
	}
	noFollow := New(Options{Allow: loopback, MaxRedirects: -1})
	resp, err := noFollow.Get(srv.URL + "/once")
	if err != nil {
		t.Fatalf("GET /once without redirects: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("GET /once with MaxRedirects -1: status %d, want 302", resp.StatusCode)
	}
}

func TestClientCapsBodies(t *testing.T) {
	const limit = 1000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := limit
		switch r.URL.Path {
		case "/over":
			n = limit + 1
		case "/chunked-over":
			// Flushing before the end makes the body chunked: no length
			// is announced, so the cap must hold while reading.
			w.Write([]byte(strings.Repeat("a", 10)))
			w.(http.Flusher).Flush()
			n = 5 * limit
		}
		w.Write([]byte(strings.Repeat("a", n)))
	}))
	defer srv.Close()
	c := New(Options{Allow: loopback, MaxBodySize: limit})

	if body, err := get(t, c, srv.URL+"/exact"); err != nil || len(body) != limit {
		t.Errorf("a body of exactly the cap = %d bytes, %v; want %d bytes", len(body), err, limit)
	}
	if _, err := get(t, c, srv.URL+"/over"); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("a body announced over the cap: %v, want ErrBodyTooLarge", err)
	}
	if _, err := get(t, c, srv.URL+"/chunked-over"); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("a chunked body over the cap: %v, want ErrBodyTooLarge", err)
	}
}

func TestClientTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := New(Options{Allow: loopback, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := get(t, c, srv.URL)
	if err == nil {
		t.Fatal("a server that never answers: got a response, want a timeout")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the timeout took %v, want about 200ms", d)
	}
}

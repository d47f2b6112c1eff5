package outbound

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTransportRefusesInternalAddresses: a client over NewTransport
// reaches a server on loopback only when the allow list names it, reads
// bodies past DefaultMaxBodySize, and refuses the metadata address.
func TestTransportRefusesInternalAddresses(t *testing.T) {
	big := strings.Repeat("x", DefaultMaxBodySize+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) }))
	defer srv.Close()
	tests := []struct {
		name, url, allow string
		wantRefused      bool
	}{
		{"loopback", srv.URL, "", true},
		{"loopback allowed", srv.URL, "127.0.0.1/32", false},
		{"metadata", "http://169.254.169.254/latest/meta-data/", "127.0.0.0/8", true},
		{"metadata in an allowed network", "http://169.254.169.254/latest/meta-data/", "169.254.0.0/16", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{Transport: NewTransport(prefixes(t, tt.allow))}
			resp, err := client.Get(tt.url)
			if tt.wantRefused {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("GET %s with allow %q = %v, want ErrRefused", tt.url, tt.allow, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET %s with allow %q = %v", tt.url, tt.allow, err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || len(b) != len(big) {
				t.Errorf("body = %d bytes, %v; want %d", len(b), err, len(big))
			}
		})
	}
}

package server_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/server"
)

// settingsSource serves settings that a test can change while the server
// runs, as PATCH /api/settings does.
type settingsSource struct {
	mu sync.Mutex
	st record.Settings
}

func (s *settingsSource) Settings() record.Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *settingsSource) set(st record.Settings) {
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
}

func (s *settingsSource) Collection(nameOrID string) (*underhood.Collection, error) {
	return nil, underhood.Errorf(underhood.ENotFound, "Missing collection context.")
}

func limits(enabled bool, rules ...record.RateLimitRule) record.Settings {
	return record.Settings{RateLimits: record.RateLimitSettings{Enabled: enabled, Rules: rules}}
}

func TestRateLimit(t *testing.T) {
	src := &settingsSource{st: limits(true,
		record.RateLimitRule{Label: "*:auth", Duration: 60, MaxRequests: 2},
		record.RateLimitRule{Label: "/api/", Audience: "@guest", Duration: 60, MaxRequests: 3},
	)}
	ts := newServer(t, server.Deps{RateLimits: src})
	login := "/api/collections/users/auth-with-password"
	status := func(method, path string, headers map[string]string) (int, string) {
		t.Helper()
		res, body := ts.do(t, method, path, headers, nil)
		if res.StatusCode == http.StatusTooManyRequests {
			if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Errorf("%s %s: 429 with Retry-After %q, want 1..60 seconds", method, path, res.Header.Get("Retry-After"))
			}
			if body != `{"status":429,"message":"Too many requests.","data":{}}` {
				t.Errorf("%s %s: 429 body %s", method, path, body)
			}
		}
		return res.StatusCode, res.Header.Get("Retry-After")
	}
	// Two logins pass, the third is refused; the login rule and the
	// guests' /api/ rule count separately.
	for i, want := range []int{200, 200, 429} {
		if got, _ := status("POST", login, nil); got != want {
			t.Errorf("login %d: status %d, want %d", i+1, got, want)
		}
	}
	for i, want := range []int{200, 200, 200, 429} {
		if got, _ := status("GET", "/api/x", nil); got != want {
			t.Errorf("guest request %d: status %d, want %d", i+1, got, want)
		}
	}
	// A signed-in caller is not a guest: no rule for it.
	if got, _ := status("GET", "/api/x", map[string]string{"Authorization": "alice-token"}); got != 200 {
		t.Errorf("signed-in request: status %d, want 200", got)
	}
	// Paths outside every rule are never limited.
	for range 5 {
		if got, _ := status("GET", "/elsewhere", nil); got != 404 {
			t.Fatalf("GET /elsewhere: status %d, want 404", got)
		}
	}
	// X-Forwarded-For is not trusted by default: it does not buy a new
	// count...
	if got, _ := status("POST", login, map[string]string{"X-Forwarded-For": "198.51.100.9"}); got != 429 {
		t.Errorf("login with a forged X-Forwarded-For: status %d, want 429", got)
	}
	// ...but it names the client once the settings trust it.
	st := src.Settings()
	st.TrustedProxy = record.TrustedProxySettings{Headers: []string{"X-Forwarded-For"}}
	src.set(st)
	for i, want := range []int{200, 200, 429} {
		if got, _ := status("POST", login, map[string]string{"X-Forwarded-For": "198.51.100.9"}); got != want {
			t.Errorf("login %d behind a trusted proxy: status %d, want %d", i+1, got, want)
		}
	}
	// A settings change applies to the next request.
	src.set(limits(true, record.RateLimitRule{Label: "*:auth", Duration: 60, MaxRequests: 100}))
	if got, _ := status("POST", login, nil); got != 200 {
		t.Errorf("login after raising the limit: status %d, want 200", got)
	}
	src.set(limits(false, record.RateLimitRule{Label: "*:auth", Duration: 60, MaxRequests: 1}))
	for range 5 {
		if got, _ := status("POST", login, nil); got != 200 {
			t.Fatalf("login with rate limits disabled: status %d, want 200", got)
		}
	}
}

// The OAuth2 popup flow's redirect counts as an auth endpoint: the "*:auth"
// rule limits it, GET and POST alike, per client address.
func TestRateLimitOAuth2Redirect(t *testing.T) {
	src := &settingsSource{st: limits(true, record.RateLimitRule{Label: "*:auth", Duration: 60, MaxRequests: 3})}
	ts := newServer(t, server.Deps{RateLimits: src})
	tests := []struct {
		method string
		want   int
	}{
		{"GET", 200},
		{"POST", 200},
		{"GET", 200},
		{"GET", 429},
		{"POST", 429},
	}
	for i, tt := range tests {
		res, _ := ts.do(t, tt.method, "/api/oauth2-redirect?state=s&code=c", nil, nil)
		if res.StatusCode != tt.want {
			t.Errorf("request %d: %s /api/oauth2-redirect = %d, want %d", i+1, tt.method, res.StatusCode, tt.want)
		}
	}
}

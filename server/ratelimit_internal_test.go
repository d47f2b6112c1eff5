package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// collections resolves "users" and its id; it is all find needs.
type collections struct{}

func (collections) Settings() record.Settings { return record.Settings{} }
func (collections) Collection(s string) (*underhood.Collection, error) {
	if s == "users" || s == "_pb_users_auth_" {
		return &underhood.Collection{ID: "_pb_users_auth_", Name: "users"}, nil
	}
	return nil, underhood.Errorf(underhood.ENotFound, "Missing collection context.")
}

func TestFindRateRule(t *testing.T) {
	rules := []record.RateLimitRule{
		{Label: "/api/", Duration: 1, MaxRequests: 1},
		{Label: "/api/", Audience: "@auth", Duration: 1, MaxRequests: 1},
		{Label: "POST /api/", Duration: 1, MaxRequests: 1},
		{Label: "/api/collections/", Duration: 1, MaxRequests: 1},
		{Label: "GET /api/health", Duration: 1, MaxRequests: 1},
		{Label: "/api/health", Duration: 1, MaxRequests: 1},
		{Label: "*:auth", Duration: 1, MaxRequests: 1},
		{Label: "users:auth", Audience: "@guest", Duration: 1, MaxRequests: 1},
		{Label: "*:authWithOTP", Duration: 1, MaxRequests: 1},
		{Label: "*:request", Duration: 1, MaxRequests: 1},
		{Label: "*:totp", Duration: 1, MaxRequests: 1},
		{Label: "*:impersonate", Duration: 1, MaxRequests: 1},
		{Label: "identity:auth-with-password", Duration: 1, MaxRequests: 1},
		{Label: "/nothing-here/", Duration: 0, MaxRequests: 1}, // invalid: ignored
	}
	rs := compileRateRules(record.Settings{RateLimits: record.RateLimitSettings{Enabled: true, Rules: rules}})
	tests := []struct {
		method, path string
		signedIn     bool
		want         string // label + audience; "" = no rule
	}{
		{"GET", "/api/health", false, "GET /api/health"},
		{"HEAD", "/api/health", false, "/api/health"},
		{"GET", "/api/health/x", false, "/api/"},
		{"GET", "/api/collections/users/records", false, "/api/collections/"},
		{"GET", "/api/settings", false, "/api/"},
		{"GET", "/api/settings", true, "/api/@auth"},
		{"PATCH", "/api/settings", false, "/api/"},
		{"POST", "/api/settings", false, "POST /api/"},
		{"GET", "/elsewhere", false, ""},
		{"POST", "/api/collections/users/auth-with-password", false, "users:auth@guest"},
		{"POST", "/api/collections/_pb_users_auth_/auth-with-password", false, "users:auth@guest"},
		{"POST", "/api/collections/users/auth-with-password", true, "*:auth"},
		{"POST", "/api/collections/_superusers/auth-with-password", false, "*:auth"},
		{"POST", "/api/collections/_superusers/auth-with-otp", false, "*:authWithOTP"},
		{"POST", "/api/collections/_superusers/auth-with-oauth2", false, "*:auth"},
		{"POST", "/api/collections/users/request-otp", false, "*:request"},
		{"POST", "/api/collections/users/request-password-reset", false, "*:request"},
		{"POST", "/api/collections/users/confirm-password-reset", false, "/api/collections/"},
		{"POST", "/api/collections/users/totp-enroll", true, "*:totp"},
		{"POST", "/api/collections/users/auth-with-totp", false, "users:auth@guest"},
		{"POST", "/api/collections/_superusers/impersonate/abc", true, "*:impersonate"},
		{"GET", "/api/collections/users/auth-methods", false, "/api/collections/"},
		{"GET", "/api/oauth2-redirect", false, "*:auth"},
		{"POST", "/api/oauth2-redirect", false, "*:auth"},
		{"GET", "/api/oauth2-redirect", true, "*:auth"},
		{"POST", "/api/collections/users/records", false, "/api/collections/"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		got := ""
		if rule := rs.find(r, collections{}, tt.signedIn); rule != nil {
			got = rule.label + rule.audience
		}
		if got != tt.want {
			t.Errorf("find(%s %s, signed in %v) = %q, want %q", tt.method, tt.path, tt.signedIn, got, tt.want)
		}
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"auth-with-password": "authWithPassword",
		"request-otp":        "requestOTP",
		"auth-with-oauth2":   "authWithOAuth2",
		"totp-enroll":        "totpEnroll",
		"auth-with-totp":     "authWithTOTP",
		"impersonate":        "impersonate",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClientIP(t *testing.T) {
	proxy := record.TrustedProxySettings{Headers: []string{"CF-Connecting-IP", "X-Forwarded-For"}}
	leftmost := record.TrustedProxySettings{Headers: []string{"X-Forwarded-For"}, UseLeftmostIP: true}
	tests := []struct {
		name    string
		remote  string
		headers map[string]string
		proxy   record.TrustedProxySettings
		want    string
	}{
		{"peer", "203.0.113.7:5555", nil, record.TrustedProxySettings{}, "203.0.113.7"},
		{"headers ignored without a trusted proxy", "203.0.113.7:5555", map[string]string{"X-Forwarded-For": "1.2.3.4"}, record.TrustedProxySettings{}, "203.0.113.7"},
		{"first trusted header", "10.0.0.1:1", map[string]string{"CF-Connecting-IP": "198.51.100.1", "X-Forwarded-For": "1.2.3.4"}, proxy, "198.51.100.1"},
		{"rightmost of a list", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "1.1.1.1, 2.2.2.2"}, proxy, "2.2.2.2"},
		{"leftmost when asked", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "1.1.1.1, 2.2.2.2"}, leftmost, "1.1.1.1"},
		{"garbage header falls back to the peer", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "not-an-ip"}, proxy, "10.0.0.1"},
		{"IPv6 counts as its /64", "[2001:db8:1:2:3:4:5:6]:1", nil, record.TrustedProxySettings{}, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6", "[::ffff:192.0.2.1]:1", nil, record.TrustedProxySettings{}, "192.0.2.1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		if got := clientIP(r, tt.proxy); got != tt.want {
			t.Errorf("%s: clientIP = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// BenchmarkRateLimitNoRule is the cost the limiter adds to a request that
// no rule covers (a record read, with the default rules).
func BenchmarkRateLimitNoRule(b *testing.B) {
	src := &staticSource{st: record.DefaultSettings()}
	h := limitRate(src, nil, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/api/collections/posts/records/abc", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

type staticSource struct {
	collections
	st *record.Settings
}

func (s *staticSource) Settings() record.Settings { return *s.st }

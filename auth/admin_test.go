package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// works reports whether token identifies its owner: auth-refresh accepts
// it (impersonation tokens, which refuse refresh with 403, count as
// working too).
func (s *stack) works(coll, token string) bool {
	s.t.Helper()
	st, _, _ := s.do("POST", "/api/collections/"+coll+"/auth-refresh", token, nil)
	return st == http.StatusOK || st == http.StatusForbidden
}

func TestAuthRevoke(t *testing.T) {
	s := newStack(t)
	// Each case logs in three times from one address.
	s.patchSettings(`{"rateLimits":{"enabled":true,"rules":[{"label":"*:auth","duration":10,"maxRequests":1000}]}}`)
	type tokens struct{ su, alice, bob string }
	fresh := func() tokens {
		return tokens{
			su:    s.login("_superusers", "root@example.com", suPassword),
			alice: s.login("users", "alice@example.com", alicePassword),
			bob:   s.login("users", "bob@example.com", bobPassword),
		}
	}
	tests := []struct {
		name       string
		caller     func(tokens) string
		path       string
		body       any
		wantStatus int
		revoked    string // "alice", "bob", "su" or ""
	}{
		{"guest", func(tokens) string { return "" }, "/api/collections/users/auth-revoke", nil, 401, ""},
		{"forged token", func(tokens) string { return "x.y.z" }, "/api/collections/users/auth-revoke", nil, 401, ""},
		{"a user, itself", func(k tokens) string { return k.alice }, "/api/collections/users/auth-revoke", nil, 204, "alice"},
		{"a user, itself by id", func(k tokens) string { return k.alice }, "/api/collections/users/auth-revoke", map[string]any{"recordId": s.ids["alice"]}, 204, "alice"},
		{"a user, another user", func(k tokens) string { return k.alice }, "/api/collections/users/auth-revoke", map[string]any{"recordId": s.ids["bob"]}, 403, ""},
		{"a user, another user by query", func(k tokens) string { return k.alice }, "/api/collections/users/auth-revoke?recordId=" + s.ids["bob"], nil, 403, ""},
		{"a user, a superuser", func(k tokens) string { return k.alice }, "/api/collections/_superusers/auth-revoke", map[string]any{"recordId": s.ids["su"]}, 403, ""},
		{"a user, in another collection", func(k tokens) string { return k.alice }, "/api/collections/_superusers/auth-revoke", nil, 403, ""},
		{"superuser, a user by query", func(k tokens) string { return k.su }, "/api/collections/users/auth-revoke?recordId=" + s.ids["bob"], nil, 204, "bob"},
		{"superuser, a user by body", func(k tokens) string { return k.su }, "/api/collections/users/auth-revoke", map[string]any{"recordId": s.ids["alice"]}, 204, "alice"},
		{"superuser, no record named", func(k tokens) string { return k.su }, "/api/collections/users/auth-revoke", nil, 400, ""},
		{"superuser, a record id of the wrong type", func(k tokens) string { return k.su }, "/api/collections/users/auth-revoke", map[string]any{"recordId": 5}, 400, ""},
		{"superuser, unknown record", func(k tokens) string { return k.su }, "/api/collections/users/auth-revoke", map[string]any{"recordId": "nosuchrecord123"}, 404, ""},
		{"superuser, not an auth collection", func(k tokens) string { return k.su }, "/api/collections/notes/auth-revoke", map[string]any{"recordId": s.ids["alice-note"]}, 404, ""},
		{"superuser, unknown collection", func(k tokens) string { return k.su }, "/api/collections/nope/auth-revoke", nil, 404, ""},
		{"superuser, itself", func(k tokens) string { return k.su }, "/api/collections/_superusers/auth-revoke", nil, 204, "su"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			k := fresh()
			st, body, _ := s.do("POST", tt.path, tt.caller(k), tt.body)
			if st != tt.wantStatus {
				t.Fatalf("POST %s = %d %s, want %d", tt.path, st, body, tt.wantStatus)
			}
			for _, who := range []struct{ name, coll, token string }{
				{"su", "_superusers", k.su}, {"alice", "users", k.alice}, {"bob", "users", k.bob},
			} {
				if works := s.works(who.coll, who.token); works == (who.name == tt.revoked) {
					t.Errorf("%s's earlier token works = %v, want %v", who.name, works, who.name != tt.revoked)
				}
			}
			// Revoking ends earlier tokens, not the account.
			s.login("users", "alice@example.com", alicePassword)
		})
	}
}

// payloadOf decodes the claims of a JWT without checking it.
func payloadOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestImpersonate(t *testing.T) {
	s := newStack(t)
	su := s.login("_superusers", "root@example.com", suPassword)
	alice := s.login("users", "alice@example.com", alicePassword)
	aliceID := s.ids["alice"]
	tests := []struct {
		name       string
		token      string
		path       string
		body       any
		wantStatus int
		wantLife   time.Duration // of the issued token
	}{
		{"guest", "", "/api/collections/users/impersonate/" + aliceID, nil, 401, 0},
		{"a user", alice, "/api/collections/users/impersonate/" + s.ids["bob"], nil, 403, 0},
		{"a user, itself", alice, "/api/collections/users/impersonate/" + aliceID, nil, 403, 0},
		{"superuser, default lifetime", su, "/api/collections/users/impersonate/" + aliceID, nil, 200, 7 * 24 * time.Hour},
		{"superuser, one minute", su, "/api/collections/users/impersonate/" + aliceID, map[string]any{"duration": 60}, 200, time.Minute},
		{"superuser, by collection id", su, "/api/collections/_pb_users_auth_/impersonate/" + aliceID, map[string]any{"duration": 3600}, 200, time.Hour},
		{"superuser, another superuser", su, "/api/collections/_superusers/impersonate/" + s.ids["su"], nil, 200, 24 * time.Hour},
		{"negative duration", su, "/api/collections/users/impersonate/" + aliceID, map[string]any{"duration": -5}, 400, 0},
		{"fractional duration", su, "/api/collections/users/impersonate/" + aliceID, map[string]any{"duration": 1.5}, 400, 0},
		{"duration not a number", su, "/api/collections/users/impersonate/" + aliceID, map[string]any{"duration": true}, 400, 0},
		{"duration over a year", su, "/api/collections/users/impersonate/" + aliceID, map[string]any{"duration": 400 * 24 * 3600}, 400, 0},
		{"unknown record", su, "/api/collections/users/impersonate/nosuchrecord123", nil, 404, 0},
		{"not an auth collection", su, "/api/collections/notes/impersonate/" + s.ids["alice-note"], nil, 404, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			before := time.Now()
			st, body, _ := s.do("POST", tt.path, tt.token, tt.body)
			if st != tt.wantStatus {
				t.Fatalf("POST %s = %d %s, want %d", tt.path, st, body, tt.wantStatus)
			}
			if st != 200 {
				return
			}
			token := field(t, body, "token")
			cl := payloadOf(t, token)
			if r, _ := cl["refreshable"].(bool); r {
				t.Errorf("impersonation token claims %v: refreshable, want not", cl)
			}
			exp := time.Unix(int64(cl["exp"].(float64)), 0)
			if life := exp.Sub(before); life < tt.wantLife-2*time.Second || life > tt.wantLife+2*time.Second {
				t.Errorf("impersonation token lives %v, want %v", life, tt.wantLife)
			}
			if strings.Contains(body, `"password"`) || strings.Contains(body, `"tokenKey"`) {
				t.Errorf("response exposes secrets: %s", body)
			}
			coll := strings.Split(tt.path, "/")[3]
			if st, body, _ := s.do("POST", "/api/collections/"+coll+"/auth-refresh", token, nil); st != http.StatusForbidden || !strings.Contains(body, "not refreshable") {
				t.Errorf("auth-refresh with an impersonation token = %d %s, want 403 not refreshable", st, body)
			}
		})
	}

	// The token acts as alice, not as the superuser who asked for it.
	st, body, _ := s.do("POST", "/api/collections/users/impersonate/"+aliceID, su, nil)
	if st != 200 {
		t.Fatalf("impersonate: %d %s", st, body)
	}
	token := field(t, body, "token")
	if field(t, body, "id") != aliceID || field(t, body, "email") != "alice@example.com" {
		t.Errorf("impersonate response record = %s, want alice with her email", body)
	}
	if st, _, _ := s.do("GET", "/api/collections/notes/records/"+s.ids["alice-note"], token, nil); st != 200 {
		t.Errorf("alice's note with the impersonation token: %d, want 200", st)
	}
	if st, _, _ := s.do("GET", "/api/collections", token, nil); st != 403 {
		t.Errorf("superuser-only endpoint with the impersonation token: %d, want 403", st)
	}
	// Revoking alice's tokens ends the impersonation too.
	if st, body, _ := s.do("POST", "/api/collections/users/auth-revoke", su, map[string]any{"recordId": aliceID}); st != 204 {
		t.Fatalf("auth-revoke: %d %s", st, body)
	}
	if st, _, _ := s.do("GET", "/api/collections/notes/records/"+s.ids["alice-note"], token, nil); st != 404 {
		t.Errorf("alice's note with a revoked impersonation token: %d, want 404", st)
	}
}

package rest_test

import (
	"strings"
	"testing"
)

// TestSettingsHonoured: over the API, an unknown setting or a change to
// the settings of features that do not exist yet is a 400 naming it, and
// superuserIPs, once set, refuses a superuser from another address (the
// test client's loopback) while users go on.
func TestSettingsHonoured(t *testing.T) {
	e := newEnv(t)
	refusals := []struct {
		patch map[string]any
		want  string
	}{
		{map[string]any{"superuserIPs": []string{"10.0.0.0/8"}, "bogus": true}, `"message":"Unknown settings: bogus."`},
		{map[string]any{"logs": map[string]any{"maxDays": 30}}, `"message":"Request logs are not available yet. Their settings keep their defaults."`},
		{map[string]any{"backups": map[string]any{"cronMaxKeep": 9}}, `"message":"Backups are not available yet. Their settings keep their defaults."`},
	}
	for _, r := range refusals {
		if st, body := e.do("PATCH", "/api/settings", "su", r.patch); st != 400 || !strings.Contains(body, r.want) {
			t.Errorf("PATCH /api/settings %v = %d %s, want 400 %s", r.patch, st, body, r.want)
		}
	}
	if st, body := e.do("GET", "/api/settings", "su", nil); st != 200 || !strings.Contains(body, `"superuserIPs":[]`) {
		t.Fatalf("GET /api/settings after refusals = %d %s, want 200 with no superuserIPs", st, body)
	}

	if st, body := e.do("PATCH", "/api/settings", "su", map[string]any{"superuserIPs": []string{"10.0.0.0/8"}}); st != 200 {
		t.Fatalf("PATCH superuserIPs = %d %s, want 200", st, body)
	}
	refused := `"message":"Superusers cannot use the API from this address: it is not in the superuserIPs setting."`
	if st, body := e.do("GET", "/api/settings", "su", nil); st != 403 || !strings.Contains(body, refused) {
		t.Errorf("superuser GET /api/settings from loopback = %d %s, want 403 %s", st, body, refused)
	}
	login := map[string]any{"identity": "admin@example.com", "password": "1234567890"}
	if st, body := e.do("POST", "/api/collections/_superusers/auth-with-password", "", login); st != 403 || !strings.Contains(body, refused) {
		t.Errorf("superuser login from loopback = %d %s, want 403 %s", st, body, refused)
	}
	if st, body := e.do("GET", "/api/collections/posts/records", "alice", nil); st != 200 {
		t.Errorf("user list from loopback = %d %s, want 200", st, body)
	}
}

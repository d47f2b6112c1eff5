package rest_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// keysOf returns the sorted keys of a JSON object and of its "data" member.
func keysOf(t *testing.T, body string) (keys, data []string) {
	t.Helper()
	if body == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	for k := range m {
		keys = append(keys, k)
	}
	if d, ok := m["data"].(map[string]any); ok {
		for k := range d {
			data = append(data, k)
		}
	}
	slices.Sort(keys)
	slices.Sort(data)
	return keys, data
}

// TestAuthEmailAndMFAEndpoints covers the HTTP side of the email, OTP, MFA
// and TOTP endpoints: statuses, body shapes and bad input. No mail server
// is configured: the request endpoints answer as usual (the flows and the
// mail itself are tested in auth and e2e).
func TestAuthEmailAndMFAEndpoints(t *testing.T) {
	e := newEnv(t)
	errKeys := []string{"data", "message", "status"}
	type row struct {
		name, method, path, who string
		body                    any
		status                  int
		keys, data              []string // of the response; nil = empty body
	}
	run := func(t *testing.T, rows []row) {
		t.Helper()
		for _, tt := range rows {
			t.Run(tt.name, func(t *testing.T) {
				st, body := e.do(tt.method, tt.path, tt.who, tt.body)
				if st != tt.status {
					t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, st, body, tt.status)
				}
				keys, data := keysOf(t, body)
				if diff := cmp.Diff(tt.keys, keys); diff != "" {
					t.Errorf("%s %s keys (-want +got):\n%s\nbody %s", tt.method, tt.path, diff, body)
				}
				if diff := cmp.Diff(tt.data, data); diff != "" {
					t.Errorf("%s %s data (-want +got):\n%s\nbody %s", tt.method, tt.path, diff, body)
				}
			})
		}
	}
	const c = "/api/collections/users/"
	run(t, []row{
		{"verification for a known address", "POST", c + "request-verification", "", map[string]any{"email": "alice@example.com"}, 204, nil, nil},
		{"verification for an unknown address", "POST", c + "request-verification", "", map[string]any{"email": "ghost@example.com"}, 204, nil, nil},
		{"verification without email", "POST", c + "request-verification", "", map[string]any{}, 400, errKeys, []string{"email"}},
		{"verification with a number for email", "POST", c + "request-verification", "", map[string]any{"email": 5}, 400, errKeys, []string{"email"}},
		{"verification, malformed JSON", "POST", c + "request-verification", "", `{"email":`, 400, errKeys, nil},
		{"verification, unknown collection", "POST", "/api/collections/nope/request-verification", "", map[string]any{"email": "a@b.co"}, 404, errKeys, nil},
		{"verification, base collection", "POST", "/api/collections/posts/request-verification", "", map[string]any{"email": "a@b.co"}, 404, errKeys, nil},
		{"superusers are verified", "POST", "/api/collections/_superusers/request-verification", "", map[string]any{"email": "admin@example.com"}, 400, errKeys, nil},
		{"confirm verification, bad token", "POST", c + "confirm-verification", "", map[string]any{"token": "x.y.z"}, 400, errKeys, []string{"token"}},
		{"confirm verification, auth token", "POST", c + "confirm-verification", "", map[string]any{"token": e.tokens["alice"]}, 400, errKeys, []string{"token"}},
		{"password reset, known", "POST", c + "request-password-reset", "", map[string]any{"email": "bob@example.com"}, 204, nil, nil},
		{"password reset, unknown", "POST", c + "request-password-reset", "", map[string]any{"email": "ghost@example.com"}, 204, nil, nil},
		{"confirm password reset, empty", "POST", c + "confirm-password-reset", "", map[string]any{}, 400, errKeys, []string{"password", "passwordConfirm", "token"}},
		{"confirm password reset, bad token", "POST", c + "confirm-password-reset", "", map[string]any{"token": "x", "password": "p4ssw0rd!!", "passwordConfirm": "p4ssw0rd!!"}, 400, errKeys, []string{"token"}},
		{"email change as a guest", "POST", c + "request-email-change", "", map[string]any{"newEmail": "n@example.com"}, 401, errKeys, nil},
		{"email change as a superuser on users", "POST", c + "request-email-change", "su", map[string]any{"newEmail": "n@example.com"}, 403, errKeys, nil},
		{"email change", "POST", c + "request-email-change", "alice", map[string]any{"newEmail": "alice2@example.com"}, 204, nil, nil},
		{"email change to a taken address is not told apart", "POST", c + "request-email-change", "alice", map[string]any{"newEmail": "bob@example.com"}, 204, nil, nil},
		{"email change, not an address", "POST", c + "request-email-change", "alice", map[string]any{"newEmail": "nope"}, 400, errKeys, []string{"newEmail"}},
		{"confirm email change, empty", "POST", c + "confirm-email-change", "", map[string]any{}, 400, errKeys, []string{"password", "token"}},
		{"otp disabled", "POST", c + "request-otp", "", map[string]any{"email": "alice@example.com"}, 403, errKeys, nil},
		{"totp enroll as a guest", "POST", c + "totp/enroll", "", nil, 401, errKeys, nil},
		{"totp enroll", "POST", c + "totp/enroll", "bob", nil, 200, []string{"otpauthUrl", "recoveryCodes", "secret"}, nil},
		{"totp confirm, wrong code", "POST", c + "totp/confirm", "bob", map[string]any{"code": "000000"}, 400, errKeys, []string{"code"}},
		{"totp disable, wrong code", "POST", c + "totp/disable", "bob", map[string]any{"code": "abcde-fghij"}, 400, errKeys, []string{"code"}},
		{"totp disable without an app", "POST", c + "totp/disable", "alice", map[string]any{"code": "123456"}, 400, errKeys, nil},
		{"auth with totp, empty", "POST", c + "auth-with-totp", "", map[string]any{}, 400, errKeys, []string{"code", "mfaId"}},
		{"auth with totp, unknown session", "POST", c + "auth-with-totp", "", map[string]any{"mfaId": "abcdefghijklmno", "code": "123456"}, 400, errKeys, nil},
	})

	// With OTP and MFA on.
	if st, body := e.do("PATCH", "/api/collections/users", "su", map[string]any{
		"otp": map[string]any{"enabled": true}, "mfa": map[string]any{"enabled": true},
	}); st != 200 {
		t.Fatalf("enable otp and mfa: %d %s", st, body)
	}
	st, body := e.do("POST", c+"auth-with-password", "", map[string]any{"identity": "alice@example.com", "password": "secret-alice"})
	if st != 401 {
		t.Fatalf("password with MFA on = %d %s, want 401", st, body)
	}
	if keys, _ := keysOf(t, body); !slices.Equal(keys, []string{"mfaId"}) {
		t.Fatalf("401 body = %s, want only an mfaId", body)
	}
	mfaID := jsonField(t, body, "mfaId")
	run(t, []row{
		{"otp for a known address", "POST", c + "request-otp", "", map[string]any{"email": "alice@example.com"}, 200, []string{"otpId"}, nil},
		{"otp for an unknown address", "POST", c + "request-otp", "", map[string]any{"email": "ghost@example.com"}, 200, []string{"otpId"}, nil},
		{"otp without email", "POST", c + "request-otp", "", map[string]any{}, 400, errKeys, []string{"email"}},
		{"auth with otp, empty", "POST", c + "auth-with-otp", "", map[string]any{}, 400, errKeys, []string{"otpId", "password"}},
		{"auth with otp, unknown", "POST", c + "auth-with-otp", "", map[string]any{"otpId": "abcdefghijklmno", "password": "12345678"}, 400, errKeys, nil},
		// The mfaId is read from the query (where the SDK puts it) and
		// from the body; either way the same method twice is refused.
		{"password twice, mfaId in the query", "POST", c + "auth-with-password?mfaId=" + mfaID, "", map[string]any{"identity": "alice@example.com", "password": "secret-alice"}, 400, errKeys, nil},
		{"password twice, mfaId in the body", "POST", c + "auth-with-password", "", map[string]any{"identity": "alice@example.com", "password": "secret-alice", "mfaId": mfaID}, 400, errKeys, nil},
		{"unknown mfaId", "POST", c + "auth-with-password", "", map[string]any{"identity": "alice@example.com", "password": "secret-alice", "mfaId": "abcdefghijklmno"}, 400, errKeys, nil},
	})
	st, body = e.do("POST", c+"auth-with-password?mfaId="+mfaID, "", map[string]any{"identity": "alice@example.com", "password": "secret-alice"})
	if !strings.Contains(body, "A different authentication method is required.") {
		t.Errorf("password twice = %d %s, want PocketBase's message", st, body)
	}
}

package auth_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoSecretsAtRest drives logins, failed logins, a refresh, an
// impersonation, a password change, a revoke and a rate-limited attempt
// through the server, then searches the whole log and every file of the
// data directory (database, WAL) for the passwords and tokens involved:
// none may appear.
func TestNoSecretsAtRest(t *testing.T) {
	s := newStack(t)
	const wrong = "wrong-password-Zq81x"
	const newPassword = "brand-new-password-Jk29"
	var tokens []string
	expect := func(st int, want int, what, body string) {
		t.Helper()
		if st != want {
			t.Fatalf("%s: %d %s, want %d", what, st, body, want)
		}
	}

	alice := s.login("users", "alice@example.com", alicePassword)
	su := s.login("_superusers", "root@example.com", suPassword)
	tokens = append(tokens, alice, su)
	st, body, _ := s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "alice@example.com", "password": wrong})
	expect(st, 400, "failed login", body)
	st, body, _ = s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "nobody@example.com", "password": wrong})
	expect(st, 400, "failed login of an unknown account", body)
	st, body, _ = s.do("POST", "/api/collections/users/auth-refresh", alice, nil)
	expect(st, 200, "refresh", body)
	tokens = append(tokens, field(t, body, "token"))
	st, body, _ = s.do("POST", "/api/collections/users/impersonate/"+s.ids["bob"], su, nil)
	expect(st, 200, "impersonate", body)
	tokens = append(tokens, field(t, body, "token"))
	st, body, _ = s.do("PATCH", "/api/collections/users/records/"+s.ids["alice"], alice, map[string]any{
		"oldPassword": alicePassword, "password": newPassword, "passwordConfirm": newPassword})
	expect(st, 200, "password change", body)
	alice2 := s.login("users", "alice@example.com", newPassword)
	tokens = append(tokens, alice2)
	st, body, _ = s.do("POST", "/api/collections/users/auth-revoke", alice2, nil)
	expect(st, 204, "revoke", body)
	// Requests with stale and forged tokens, and a login held back by the
	// per-account limit, are logged too.
	s.do("GET", "/api/collections/notes/records", alice, nil)
	s.do("GET", "/api/collections/notes/records", "Bearer "+alice2, nil)
	limited := false
	for range 8 {
		st, _, hdr := s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "bob@example.com", "password": wrong})
		if st == http.StatusTooManyRequests && hdr.Get("Retry-After") != "" {
			limited = true
		}
	}
	if !limited {
		t.Errorf("8 failed logins of one account: never 429 with Retry-After")
	}

	s.srv.Close()
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"alice's password": alicePassword, "alice's new password": newPassword, "the superuser's password": suPassword,
		"bob's password": bobPassword, "a wrong password": wrong,
	}
	for i, tok := range tokens {
		secrets["token "+string(rune('A'+i))] = tok
		// A logged signature alone would be a leak too.
		secrets["signature of token "+string(rune('A'+i))] = tok[strings.LastIndex(tok, ".")+1:]
	}
	logs := s.log.String()
	if !strings.Contains(logs, "auth tokens revoked") || !strings.Contains(logs, "/auth-with-password") {
		t.Fatalf("the log lacks the requests made; is it captured?\n%s", logs)
	}
	var files int
	storedEmail := false
	err := filepath.WalkDir(s.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(b, []byte("alice@example.com")) {
			storedEmail = true
		}
		for what, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s found in %s", what, filepath.Base(path))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 || !storedEmail {
		t.Fatalf("alice's email is in none of the %d files of %s; the search would not find anything", files, s.dir)
	}
	for what, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("%s found in the log", what)
		}
	}
	// The check can see: what is stored is found.
	if !strings.Contains(logs, s.ids["alice"]) {
		t.Errorf("alice's id is not in the log; the search would not find anything")
	}
}

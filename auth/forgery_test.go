package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
)

// victim is a fresh user with one note only it may see.
type victim struct {
	id, email, password, note string
}

func (s *stack) newVictim(name string) victim {
	s.t.Helper()
	ctx := context.Background()
	v := victim{email: name + "@example.com", password: "pw-" + name + "-123"}
	rec, err := s.records.Create(ctx, s.records.SystemRequest(), "users", map[string]any{"email": v.email, "password": v.password, "passwordConfirm": v.password}, "")
	if err != nil {
		s.t.Fatal(err)
	}
	v.id = rec.ID()
	note, err := s.records.Create(ctx, s.records.SystemRequest(), "notes", map[string]any{"text": name + "'s note", "owner": v.id}, "")
	if err != nil {
		s.t.Fatal(err)
	}
	v.note = note.ID()
	return v
}

// jwtOf assembles a JWT from its parts, signed by HMAC with key under
// newHash (nil leaves the signature empty).
func jwtOf(header, payload map[string]any, newHash func() hash.Hash, key []byte) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	unsigned := enc(header) + "." + enc(payload)
	if newHash == nil {
		return unsigned + "."
	}
	m := hmac.New(newHash, key)
	m.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// claimsOf are the claims of a genuine auth token of rec's owner.
func claimsOf(id, collectionID, kind string, exp time.Time) map[string]any {
	return map[string]any{"id": id, "type": kind, "collectionId": collectionID, "refreshable": true, "exp": exp.Unix()}
}

func hs256() map[string]any { return map[string]any{"alg": "HS256", "typ": "JWT"} }

// secrets are the signing material of one user: its tokenKey and its
// collection's secret per token kind.
type secrets struct {
	tokenKey string
	secret   map[string]string
}

func (s *stack) secretsOf(v victim) secrets {
	s.t.Helper()
	rec := s.record("users", v.id)
	a := rec.Collection.Auth
	return secrets{tokenKey: rec.String("tokenKey"), secret: map[string]string{
		"auth": a.AuthToken.Secret, "file": a.FileToken.Secret, "verification": a.VerificationToken.Secret,
		"passwordReset": a.PasswordResetToken.Secret, "emailChange": a.EmailChangeToken.Secret,
	}}
}

// TestTokenForgery sends forged, altered, stale and misused tokens through
// the real HTTP stack. Each must leave the request a guest's: auth-refresh
// answers 401 and the victim's rule-protected note stays invisible. The
// first case, a genuine token, shows that the checks can tell.
func TestTokenForgery(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	users := "_pb_users_auth_"
	later := time.Now().Add(time.Hour)
	genuine := func(s *stack, v victim) string { return s.login("users", v.email, v.password) }
	tests := []struct {
		name     string
		token    func(s *stack, v victim) string
		accepted bool
	}{
		{"genuine token", genuine, true},
		{"genuine token with Bearer", func(s *stack, v victim) string { return "Bearer " + genuine(s, v) }, true},
		{"hand-made token with the right key", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(hs256(), claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, true},

		{"alg none", func(s *stack, v victim) string {
			return jwtOf(map[string]any{"alg": "none", "typ": "JWT"}, claimsOf(v.id, users, "auth", later), nil, nil)
		}, false},
		{"alg None with a signature", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(map[string]any{"alg": "None", "typ": "JWT"}, claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"alg none without a signature part", func(s *stack, v victim) string {
			tok := jwtOf(map[string]any{"alg": "none"}, claimsOf(v.id, users, "auth", later), nil, nil)
			return strings.TrimSuffix(tok, ".")
		}, false},
		{"HS256 with the collection secret only", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(hs256(), claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.secret["auth"]))
		}, false},
		{"HS256 with the tokenKey only", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(hs256(), claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.tokenKey))
		}, false},
		{"HS256 with secret and tokenKey swapped", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(hs256(), claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.secret["auth"]+k.tokenKey))
		}, false},
		{"HS256 with an empty key", func(s *stack, v victim) string {
			return jwtOf(hs256(), claimsOf(v.id, users, "auth", later), sha256.New, nil)
		}, false},
		{"HS512 with the right key", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(map[string]any{"alg": "HS512", "typ": "JWT"}, claimsOf(v.id, users, "auth", later), sha512.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"RS256 header, HMAC signature with the right key", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(map[string]any{"alg": "RS256", "typ": "JWT"}, claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"ES256 header, HMAC signature with the right key", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(map[string]any{"alg": "ES256", "typ": "JWT"}, claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"payload of another user, signature kept", func(s *stack, v victim) string {
			parts := strings.Split(s.login("users", "bob@example.com", bobPassword), ".")
			payload := base64.RawURLEncoding.EncodeToString(mustJSON(claimsOf(v.id, users, "auth", later)))
			return parts[0] + "." + payload + "." + parts[2]
		}, false},
		{"expiry extended, signature kept", func(s *stack, v victim) string {
			parts := strings.Split(genuine(s, v), ".")
			payload := base64.RawURLEncoding.EncodeToString(mustJSON(claimsOf(v.id, users, "auth", time.Now().Add(1000*time.Hour))))
			return parts[0] + "." + payload + "." + parts[2]
		}, false},
		{"tampered signature", func(s *stack, v victim) string {
			tok := []byte(genuine(s, v))
			i := len(tok) - 5
			tok[i] = map[bool]byte{true: 'A', false: 'B'}[tok[i] != 'A']
			return string(tok)
		}, false},
		{"signature cut off", func(s *stack, v victim) string {
			tok := genuine(s, v)
			return tok[:strings.LastIndex(tok, ".")+1]
		}, false},
		{"expired", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(hs256(), claimsOf(v.id, users, "auth", time.Now().Add(-time.Second)), sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"no expiry", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			cl := claimsOf(v.id, users, "auth", later)
			delete(cl, "exp")
			return jwtOf(hs256(), cl, sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"other collection named in the claims", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			su, _ := s.records.Collection(underhood.SuperusersName)
			return jwtOf(hs256(), claimsOf(v.id, su.ID, "auth", later), sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"token after a password change", func(s *stack, v victim) string {
			tok := genuine(s, v)
			st, body, _ := s.do("PATCH", "/api/collections/users/records/"+v.id, tok, map[string]any{
				"oldPassword": v.password, "password": "a-new-password-1", "passwordConfirm": "a-new-password-1"})
			if st != http.StatusOK {
				t.Fatalf("change password: %d %s", st, body)
			}
			return tok
		}, false},
		{"token after an email change", func(s *stack, v victim) string {
			tok := genuine(s, v)
			if _, err := s.records.Update(ctx, s.records.SystemRequest(), "users", v.id, map[string]any{"email": "moved-" + v.email}, ""); err != nil {
				t.Fatal(err)
			}
			return tok
		}, false},
		{"token after auth-revoke", func(s *stack, v victim) string {
			tok := genuine(s, v)
			if st, body, _ := s.do("POST", "/api/collections/users/auth-revoke", tok, nil); st != http.StatusNoContent {
				t.Fatalf("auth-revoke: %d %s", st, body)
			}
			return tok
		}, false},
		{"token of a deleted user", func(s *stack, v victim) string {
			tok := genuine(s, v)
			if err := s.records.Delete(ctx, s.records.SystemRequest(), "users", v.id); err != nil {
				t.Fatal(err)
			}
			return tok
		}, false},
		{"file token", func(s *stack, v victim) string {
			tok, err := s.auth.NewToken(s.record("users", v.id), auth.KindFile)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, false},
		{"file-kind claims signed as an auth token", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(hs256(), claimsOf(v.id, users, "file", later), sha256.New, []byte(k.tokenKey+k.secret["auth"]))
		}, false},
		{"auth-kind claims signed with the file secret", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			return jwtOf(hs256(), claimsOf(v.id, users, "auth", later), sha256.New, []byte(k.tokenKey+k.secret["file"]))
		}, false},
		{"verification token", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			cl := claimsOf(v.id, users, "verification", later)
			cl["email"] = v.email
			return jwtOf(hs256(), cl, sha256.New, []byte(k.tokenKey+k.secret["verification"]))
		}, false},
		{"password reset token", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			cl := claimsOf(v.id, users, "passwordReset", later)
			cl["email"] = v.email
			return jwtOf(hs256(), cl, sha256.New, []byte(k.tokenKey+k.secret["passwordReset"]))
		}, false},
		{"email change token", func(s *stack, v victim) string {
			k := s.secretsOf(v)
			cl := claimsOf(v.id, users, "emailChange", later)
			cl["email"], cl["newEmail"] = v.email, "x-"+v.email
			return jwtOf(hs256(), cl, sha256.New, []byte(k.tokenKey+k.secret["emailChange"]))
		}, false},
		{"garbage", func(s *stack, v victim) string { return "not.a.token" }, false},
		{"oversized token", func(s *stack, v victim) string { return genuine(s, v) + strings.Repeat("A", 5000) }, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			v := s.newVictim(fmt.Sprintf("victim%d", i))
			token := tt.token(s, v)

			st, body, _ := s.do("POST", "/api/collections/users/auth-refresh", token, nil)
			if want := map[bool]int{true: 200, false: 401}[tt.accepted]; st != want {
				t.Errorf("auth-refresh: %d %s, want %d", st, body, want)
			}
			st, body, _ = s.do("GET", "/api/collections/notes/records/"+v.note, token, nil)
			if want := map[bool]int{true: 200, false: 404}[tt.accepted]; st != want {
				t.Errorf("view the victim's note: %d %s, want %d", st, body, want)
			}
			st, body, _ = s.do("GET", "/api/collections/notes/records", token, nil)
			want := `"totalItems":0`
			if tt.accepted {
				want = `"totalItems":1`
			}
			if st != 200 || !strings.Contains(body, want) {
				t.Errorf("list notes: %d %s, want 200 with %s", st, body, want)
			}
		})
	}
}

// A forged token naming a superuser opens nothing a superuser may do.
func TestSuperuserTokenForgery(t *testing.T) {
	s := newStack(t)
	su := s.record(underhood.SuperusersName, s.ids["su"])
	a := su.Collection.Auth
	tokenKey := su.String("tokenKey")
	later := time.Now().Add(time.Hour)
	suClaims := claimsOf(su.ID(), su.Collection.ID, "auth", later)
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"genuine", s.login(underhood.SuperusersName, "root@example.com", suPassword), 200},
		{"alg none", jwtOf(map[string]any{"alg": "none"}, suClaims, nil, nil), 401},
		{"secret only", jwtOf(hs256(), suClaims, sha256.New, []byte(a.AuthToken.Secret)), 401},
		{"tokenKey only", jwtOf(hs256(), suClaims, sha256.New, []byte(tokenKey)), 401},
		{"users' secret", jwtOf(hs256(), suClaims, sha256.New, []byte(tokenKey+s.record("users", s.ids["alice"]).Collection.Auth.AuthToken.Secret)), 401},
		{"RS256 confusion", jwtOf(map[string]any{"alg": "RS256"}, suClaims, sha256.New, []byte(tokenKey+a.AuthToken.Secret)), 401},
		{"user token relabelled", func() string {
			parts := strings.Split(s.login("users", "alice@example.com", alicePassword), ".")
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(suClaims)) + "." + parts[2]
		}(), 401},
	}
	for _, tt := range tests {
		if st, body, _ := s.do("GET", "/api/collections", tt.token, nil); st != tt.want {
			t.Errorf("%s: GET /api/collections = %d %s, want %d", tt.name, st, body, tt.want)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

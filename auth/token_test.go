package auth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
)

func authCollection(name, id string, duration int, secret string) *underhood.Collection {
	return &underhood.Collection{
		ID: id, Name: name, Type: underhood.TypeAuth,
		Auth: &underhood.AuthOptions{
			AuthToken: underhood.TokenConfig{Duration: duration, Secret: secret},
			FileToken: underhood.TokenConfig{Duration: 0, Secret: "file-secret-file-secret-file-secret"},
		},
	}
}

func authRecord(c *underhood.Collection, id, tokenKey string) *underhood.Record {
	return &underhood.Record{Collection: c, Data: map[string]any{"id": id, "tokenKey": tokenKey}}
}

// payload decodes the claims of a JWT without verifying it.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts, want 3", token, len(parts))
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

func TestSignTokenClaims(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	users := authCollection("users", "_pb_users_auth_", 0, "users-secret-users-secret-users-secret")
	supers := authCollection(underhood.SuperusersName, underhood.SuperusersID, 0, "su-secret-su-secret-su-secret-su-secret")
	custom := authCollection("members", "pbc_members", 120, "members-secret-members-secret-members")
	tests := []struct {
		name string
		rec  *underhood.Record
		kind string
		want map[string]any
	}{
		{"users default lifetime is a week", authRecord(users, "u1", "k1"), KindAuth, map[string]any{
			"id": "u1", "type": "auth", "collectionId": "_pb_users_auth_", "refreshable": true,
			"exp": float64(now.Add(7 * 24 * time.Hour).Unix()),
		}},
		{"superusers default lifetime is a day", authRecord(supers, "s1", "k2"), KindAuth, map[string]any{
			"id": "s1", "type": "auth", "collectionId": underhood.SuperusersID, "refreshable": true,
			"exp": float64(now.Add(24 * time.Hour).Unix()),
		}},
		{"collection lifetime wins", authRecord(custom, "m1", "k3"), KindAuth, map[string]any{
			"id": "m1", "type": "auth", "collectionId": "pbc_members", "refreshable": true,
			"exp": float64(now.Add(120 * time.Second).Unix()),
		}},
		{"file tokens are short and not refreshable", authRecord(users, "u1", "k1"), KindFile, map[string]any{
			"id": "u1", "type": "file", "collectionId": "_pb_users_auth_",
			"exp": float64(now.Add(3 * time.Minute).Unix()),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := signToken(tt.rec, tt.kind, now)
			if err != nil {
				t.Fatalf("signToken() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, payload(t, tok)); diff != "" {
				t.Errorf("claims mismatch (-want +got):\n%s", diff)
			}
			if err := verifyToken(tok, tt.rec, tt.kind, now); err != nil {
				t.Errorf("verifyToken(own token) = %v, want nil", err)
			}
		})
	}
}

func TestSignTokenRefusesNonAuthRecords(t *testing.T) {
	base := &underhood.Collection{ID: "pbc_posts", Name: "posts", Type: underhood.TypeBase}
	users := authCollection("users", "_pb_users_auth_", 0, "users-secret-users-secret-users-secret")
	tests := []struct {
		name string
		rec  *underhood.Record
		kind string
	}{
		{"nil record", nil, KindAuth},
		{"record without id", authRecord(users, "", "k"), KindAuth},
		{"base collection", &underhood.Record{Collection: base, Data: map[string]any{"id": "p1"}}, KindAuth},
		{"unknown kind", authRecord(users, "u1", "k"), "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := signToken(tt.rec, tt.kind, time.Now()); err == nil {
				t.Errorf("signToken() = %q, want an error", tok)
			}
		})
	}
}

func TestVerifyTokenRejects(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	users := authCollection("users", "_pb_users_auth_", 3600, "users-secret-users-secret-users-secret")
	rec := authRecord(users, "u1", "tokenkey-1")
	tok, err := signToken(rec, KindAuth, now)
	if err != nil {
		t.Fatal(err)
	}
	fileTok, err := signToken(rec, KindFile, now)
	if err != nil {
		t.Fatal(err)
	}

	rotatedSecret := users.Clone()
	rotatedSecret.Auth.AuthToken.Secret = "another-secret-another-secret-another"
	otherColl := authCollection("members", "pbc_members", 3600, users.Auth.AuthToken.Secret)

	sign := func(method jwt.SigningMethod, key any, cl jwt.Claims) string {
		s, err := jwt.NewWithClaims(method, cl).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	key := []byte("tokenkey-1" + users.Auth.AuthToken.Secret)
	exp := jwt.NewNumericDate(now.Add(time.Hour))

	tests := []struct {
		name  string
		token string
		rec   *underhood.Record
		kind  string
		at    time.Time
	}{
		{"expired", tok, rec, KindAuth, now.Add(time.Hour + time.Second)},
		{"tokenKey rotated", tok, authRecord(users, "u1", "tokenkey-2"), KindAuth, now},
		{"collection secret rotated", tok, authRecord(rotatedSecret, "u1", "tokenkey-1"), KindAuth, now},
		{"another record's token", tok, authRecord(users, "u2", "tokenkey-1"), KindAuth, now},
		{"same id in another collection", tok, authRecord(otherColl, "u1", "tokenkey-1"), KindAuth, now},
		{"file token used as auth token", fileTok, rec, KindAuth, now},
		{"tampered payload", tamper(t, tok, "id", "admin"), rec, KindAuth, now},
		{"tampered signature", tok[:len(tok)-2] + flip(tok[len(tok)-2:]), rec, KindAuth, now},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
			claims{RecordID: "u1", Type: "auth", CollectionID: users.ID, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: exp}}), rec, KindAuth, now},
		{"HS512 with the right key", sign(jwt.SigningMethodHS512, key,
			claims{RecordID: "u1", Type: "auth", CollectionID: users.ID, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: exp}}), rec, KindAuth, now},
		{"no expiry", sign(jwt.SigningMethodHS256, key,
			claims{RecordID: "u1", Type: "auth", CollectionID: users.ID}), rec, KindAuth, now},
		{"not a jwt", "abc.def", rec, KindAuth, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := verifyToken(tt.token, tt.rec, tt.kind, tt.at); err == nil {
				t.Errorf("verifyToken(%s) = nil, want an error", tt.name)
			}
		})
	}
	// The same token is fine just before it expires.
	if err := verifyToken(tok, rec, KindAuth, now.Add(time.Hour-time.Second)); err != nil {
		t.Errorf("verifyToken(before expiry) = %v, want nil", err)
	}
}

func TestPeekClaims(t *testing.T) {
	users := authCollection("users", "_pb_users_auth_", 3600, "users-secret-users-secret-users-secret")
	tok, err := signToken(authRecord(users, "u1", "k"), KindAuth, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := peekClaims(tok)
	if err != nil {
		t.Fatalf("peekClaims() error = %v", err)
	}
	if cl.RecordID != "u1" || cl.CollectionID != users.ID || cl.Type != KindAuth {
		t.Errorf("peekClaims() = %+v, want id u1, collection %s, type auth", cl, users.ID)
	}
	for _, bad := range []string{"", "x", "a.b.c", strings.Repeat("a", maxTokenLength+1),
		tamper(t, tok, "collectionId", "")} {
		if _, err := peekClaims(bad); err == nil {
			t.Errorf("peekClaims(%.20q) = nil error, want one", bad)
		}
	}
}

// tamper rewrites one claim of token and keeps the original signature.
func tamper(t *testing.T, token, claim string, value any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	m := payload(t, token)
	m[claim] = value
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// flip changes every character of s into another valid base64url one.
func flip(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

package auth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testIdP is a real OpenID Connect provider on loopback, written for the
// tests: discovery, a JWK set, authorize, token and userinfo endpoints,
// and GitHub's /user and /user/emails. Like a real provider it checks the
// client credentials, the redirect URI, the PKCE S256 verifier and that a
// code is used once, and it signs id_tokens with RS256.
type testIdP struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string

	mu       sync.Mutex
	clients  map[string]*idpClient
	users    map[string]*idpUser // by login
	codes    map[string]*idpCode
	access   map[string]string // access token → login
	exchange int               // requests to the token endpoint

	// mutateIDToken, when set, changes the claims of the next id_tokens
	// (and signKey, when set, signs them instead of key).
	mutateIDToken func(claims jwt.MapClaims)
	signKey       *rsa.PrivateKey
}

type idpClient struct {
	secret string
	// issuer, when set, is the iss of this client's id_tokens (Apple's).
	issuer string
	// appleKey, when set, makes the client secret an ES256 JWT that must
	// verify with this key, as Apple does.
	appleKey *ecdsa.PublicKey
}

type idpUser struct {
	Sub           string
	Email         string
	EmailVerified bool
	Name          string
	Login         string
	GitHubID      int64
}

type idpCode struct {
	client, redirectURI, challenge, method, nonce, login string
	used                                                 bool
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &testIdP{
		key: key, kid: "key-1",
		clients: map[string]*idpClient{"test-client": {secret: "test-secret"}},
		users:   map[string]*idpUser{},
		codes:   map[string]*idpCode{},
		access:  map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", idp.handleDiscovery)
	mux.HandleFunc("GET /jwks", idp.handleJWKS)
	mux.HandleFunc("GET /authorize", idp.handleAuthorize)
	mux.HandleFunc("POST /token", idp.handleToken)
	mux.HandleFunc("GET /userinfo", idp.handleUserinfo)
	mux.HandleFunc("GET /user", idp.handleGitHubUser)
	mux.HandleFunc("GET /user/emails", idp.handleGitHubEmails)
	mux.HandleFunc("GET /api/v4/user", idp.handleGitLabUser)
	mux.HandleFunc("GET /users/@me", idp.handleDiscordUser)
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *testIdP) URL() string { return idp.srv.URL }

func (idp *testIdP) addUser(u idpUser) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if u.Login == "" {
		u.Login = u.Sub
	}
	idp.users[u.Login] = &u
}

func (idp *testIdP) exchanges() int {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.exchange
}

func writeIdPJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeIdPJSON(w, status, map[string]string{"error": code, "error_description": code + " (test IdP)"})
}

func (idp *testIdP) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	u := idp.URL()
	writeIdPJSON(w, 200, map[string]any{
		"issuer":                                u,
		"authorization_endpoint":                u + "/authorize",
		"token_endpoint":                        u + "/token",
		"userinfo_endpoint":                     u + "/userinfo",
		"jwks_uri":                              u + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (idp *testIdP) handleJWKS(w http.ResponseWriter, r *http.Request) {
	pub := idp.key.PublicKey
	writeIdPJSON(w, 200, map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": idp.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// handleAuthorize signs in the user named by login_hint at once (there is
// no login page) and redirects back with a code; login_hint=deny answers
// access_denied as a user who refuses consent.
func (idp *testIdP) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	idp.mu.Lock()
	_, knownClient := idp.clients[q.Get("client_id")]
	user := idp.users[q.Get("login_hint")]
	idp.mu.Unlock()
	if !knownClient {
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	switch {
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	case q.Get("login_hint") == "deny" || user == nil:
		back.Set("error", "access_denied")
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		back.Set("error", "invalid_request")
	default:
		code := randomToken()
		idp.mu.Lock()
		idp.codes[code] = &idpCode{
			client: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), login: user.Login,
			challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), nonce: q.Get("nonce"),
		}
		idp.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (idp *testIdP) handleToken(w http.ResponseWriter, r *http.Request) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.exchange++
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request")
		return
	}
	// Client authentication: client_secret_basic or client_secret_post.
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	client := idp.clients[id]
	if client == nil || !idp.clientSecretOK(client, id, secret) {
		oauthError(w, 401, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, 400, "unsupported_grant_type")
		return
	}
	code := idp.codes[r.PostForm.Get("code")]
	switch {
	case code == nil || code.used || code.client != id:
		oauthError(w, 400, "invalid_grant")
		return
	case code.redirectURI != r.PostForm.Get("redirect_uri"):
		oauthError(w, 400, "invalid_grant")
		return
	}
	code.used = true // even a failed PKCE check burns the code, as real providers do
	if code.challenge != "" {
		verifier := r.PostForm.Get("code_verifier")
		sum := sha256.Sum256([]byte(verifier))
		if verifier == "" || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.challenge)) != 1 {
			oauthError(w, 400, "invalid_grant")
			return
		}
	}
	user := idp.users[code.login]
	access := randomToken()
	idp.access[access] = user.Login
	claims := jwt.MapClaims{
		"iss":            firstNonEmpty(client.issuer, idp.URL()),
		"sub":            user.Sub,
		"aud":            id,
		"exp":            time.Now().Add(time.Hour).Unix(),
		"iat":            time.Now().Unix(),
		"email":          user.Email,
		"email_verified": user.EmailVerified,
		"name":           user.Name,
	}
	if code.nonce != "" {
		claims["nonce"] = code.nonce
	}
	key := idp.key
	if idp.mutateIDToken != nil {
		idp.mutateIDToken(claims)
	}
	if idp.signKey != nil {
		key = idp.signKey
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = idp.kid
	idToken, err := tok.SignedString(key)
	if err != nil {
		oauthError(w, 500, "server_error")
		return
	}
	writeIdPJSON(w, 200, map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": 3600,
		"refresh_token": "refresh-" + access, "id_token": idToken,
	})
}

// clientSecretOK checks a client secret, or for an Apple-style client the
// ES256 JWT that stands for it.
func (idp *testIdP) clientSecretOK(c *idpClient, id, secret string) bool {
	if c.appleKey == nil {
		return subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) == 1
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(secret, claims, func(*jwt.Token) (any, error) { return c.appleKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("https://appleid.apple.com"),
		jwt.WithIssuer("apple-team"), jwt.WithSubject(id), jwt.WithExpirationRequired())
	return err == nil
}

func (idp *testIdP) bearerUser(r *http.Request) *idpUser {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	login, ok := idp.access[token]
	if !ok {
		return nil
	}
	return idp.users[login]
}

func (idp *testIdP) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	u := idp.bearerUser(r)
	if u == nil {
		oauthError(w, 401, "invalid_token")
		return
	}
	writeIdPJSON(w, 200, map[string]any{
		"sub": u.Sub, "email": u.Email, "email_verified": u.EmailVerified, "name": u.Name,
		"preferred_username": u.Login, "picture": idp.URL() + "/avatars/" + u.Sub + ".png",
	})
}

func (idp *testIdP) handleGitHubUser(w http.ResponseWriter, r *http.Request) {
	u := idp.bearerUser(r)
	if u == nil {
		writeIdPJSON(w, 401, map[string]any{"message": "Bad credentials"})
		return
	}
	// The profile email is null: the user keeps it private.
	writeIdPJSON(w, 200, map[string]any{"id": u.GitHubID, "login": u.Login, "name": u.Name, "email": nil,
		"avatar_url": idp.URL() + "/avatars/" + u.Login})
}

func (idp *testIdP) handleGitHubEmails(w http.ResponseWriter, r *http.Request) {
	u := idp.bearerUser(r)
	if u == nil {
		writeIdPJSON(w, 401, map[string]any{"message": "Bad credentials"})
		return
	}
	writeIdPJSON(w, 200, []map[string]any{
		{"email": "old-" + u.Email, "primary": false, "verified": true},
		{"email": u.Email, "primary": true, "verified": u.EmailVerified},
	})
}

func (idp *testIdP) handleGitLabUser(w http.ResponseWriter, r *http.Request) {
	u := idp.bearerUser(r)
	if u == nil {
		writeIdPJSON(w, 401, map[string]any{"message": "401 Unauthorized"})
		return
	}
	var confirmed any
	if u.EmailVerified {
		confirmed = "2024-01-02T03:04:05.000Z"
	}
	writeIdPJSON(w, 200, map[string]any{"id": u.GitHubID, "username": u.Login, "name": u.Name, "email": u.Email,
		"confirmed_at": confirmed, "avatar_url": idp.URL() + "/avatars/" + u.Login})
}

func (idp *testIdP) handleDiscordUser(w http.ResponseWriter, r *http.Request) {
	u := idp.bearerUser(r)
	if u == nil {
		writeIdPJSON(w, 401, map[string]any{"message": "401: Unauthorized"})
		return
	}
	writeIdPJSON(w, 200, map[string]any{"id": u.Sub, "username": u.Login, "global_name": u.Name, "email": u.Email,
		"verified": u.EmailVerified, "avatar": "a1b2c3"})
}

func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authorize plays the browser: it opens authURL (from auth-methods) with
// the client's redirect URL appended and login as the user who signs in,
// and returns the query the provider redirected back with.
func (idp *testIdP) authorize(t *testing.T, authURL, redirectURL, login string) url.Values {
	t.Helper()
	u := authURL + url.QueryEscape(redirectURL) + "&login_hint=" + url.QueryEscape(login)
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize %s: status %d, want 302", u, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("authorize: bad Location: %v", err)
	}
	if !strings.HasPrefix(loc.String(), redirectURL) {
		t.Fatalf("authorize redirected to %s, want %s", loc, redirectURL)
	}
	return loc.Query()
}

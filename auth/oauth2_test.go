package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/record"
)

// The redirect URL a client registers with the provider and sends back.
const testRedirect = "http://127.0.0.1:5173/oauth2-callback"

// oauth2Env is an auth service whose users collection signs in with the
// test identity provider, reached through an outbound client that allows
// loopback.
type oauth2Env struct {
	*env
	idp *testIdP
}

func newOAuth2Env(t *testing.T, providers ...map[string]any) *oauth2Env {
	t.Helper()
	e := &oauth2Env{env: newEnv(t), idp: newTestIdP(t)}
	e.auth.UseOutbound(outbound.New(outbound.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
	if len(providers) == 0 {
		providers = []map[string]any{{
			"name": "oidc", "clientId": "test-client", "clientSecret": "test-secret",
			"displayName": "Test IdP", "extra": map[string]any{"issuer": e.idp.URL()},
		}}
	}
	e.setProviders(t, providers...)
	e.idp.addUser(idpUser{Sub: "sub-carol", Email: "carol@example.com", EmailVerified: true, Name: "Carol Example", GitHubID: 1001})
	e.idp.addUser(idpUser{Sub: "sub-alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice at IdP", GitHubID: 1002})
	e.idp.addUser(idpUser{Sub: "sub-bob", Email: "bob@example.com", EmailVerified: true, Name: "Bob at IdP", GitHubID: 1003})
	e.idp.addUser(idpUser{Sub: "sub-mallory", Email: "alice@example.com", EmailVerified: false, Name: "Mallory", Login: "mallory"})
	e.idp.addUser(idpUser{Sub: "sub-eve", Email: "eve@example.com", EmailVerified: false, Name: "Eve", Login: "eve"})
	return e
}

func (e *oauth2Env) setProviders(t *testing.T, providers ...map[string]any) {
	t.Helper()
	e.updateCollection(t, "users", func(c *underhood.Collection) {
		c.Auth.OAuth2.Enabled = true
		c.Auth.OAuth2.Providers = nil
		for _, p := range providers {
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			c.Auth.OAuth2.Providers = append(c.Auth.OAuth2.Providers, b)
		}
	})
}

func (e *oauth2Env) users(t *testing.T) *underhood.Collection {
	t.Helper()
	c, err := e.records.Collection("users")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start returns the provider entry of auth-methods for name.
func (e *oauth2Env) start(t *testing.T, name string) OAuth2Provider {
	t.Helper()
	for _, p := range e.auth.OAuth2Providers(context.Background(), e.users(t)) {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("auth-methods lists no provider %q", name)
	return OAuth2Provider{}
}

// signIn runs the whole flow for login and returns the code the provider
// gave with the provider entry it started from.
func (e *oauth2Env) signIn(t *testing.T, provider, login string) (OAuth2Provider, string) {
	t.Helper()
	p := e.start(t, provider)
	back := e.idp.authorize(t, p.AuthURL, testRedirect, login)
	// The client compares the state with the one it started with; the
	// server never sees it (see TestOAuth2StateIsTheClientsCheck).
	if back.Get("state") != p.State {
		t.Fatalf("provider returned state %q, want %q", back.Get("state"), p.State)
	}
	if back.Get("code") == "" {
		t.Fatalf("provider returned no code: %v", back)
	}
	return p, back.Get("code")
}

func (e *oauth2Env) login(t *testing.T, provider, login string, createData map[string]any) (*Result, error) {
	t.Helper()
	p, code := e.signIn(t, provider, login)
	return e.auth.AuthWithOAuth2(context.Background(), OAuth2Login{
		Collection: "users", Provider: provider, Code: code, CodeVerifier: p.CodeVerifier,
		RedirectURL: testRedirect, CreateData: createData,
	})
}

func (e *oauth2Env) countUsers(t *testing.T) int {
	t.Helper()
	res, err := e.records.List(context.Background(), e.records.SystemRequest(), "users", record.ListParams{PerPage: 500})
	if err != nil {
		t.Fatal(err)
	}
	return res.TotalItems
}

func (e *oauth2Env) links(t *testing.T) []string {
	t.Helper()
	res, err := e.records.List(context.Background(), e.records.SystemRequest(), record.ExternalAuthsName, record.ListParams{PerPage: 500, Sort: "created"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res.Items {
		out = append(out, r.String("provider")+":"+r.String("providerId")+"→"+r.String("recordRef"))
	}
	return out
}

func TestOAuth2AuthMethods(t *testing.T) {
	e := newOAuth2Env(t,
		map[string]any{"name": "oidc", "clientId": "test-client", "clientSecret": "s", "extra": map[string]any{"issuer": ""}},
		map[string]any{"name": "google", "clientId": "g-client", "clientSecret": "s"},
		map[string]any{"name": "github", "clientId": "gh-client", "clientSecret": "s", "pkce": false},
		map[string]any{"name": "unknown-provider", "clientId": "x"},
		map[string]any{"name": "gitlab", "clientId": ""},
	)
	// The oidc entry has no issuer and no URLs: unusable, so left out,
	// like the unknown provider and the one without a client id.
	got := e.auth.OAuth2Providers(context.Background(), e.users(t))
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "google,github" {
		t.Fatalf("auth-methods providers = %v, want google,github", names)
	}
	g := got[0]
	if g.DisplayName != "Google" || len(g.State) != 30 || len(g.CodeVerifier) != 43 || g.CodeChallengeMethod != "S256" || g.CodeChallenge != s256(g.CodeVerifier) {
		t.Errorf("google entry = %+v", g)
	}
	if !strings.HasSuffix(g.AuthURL, "&redirect_uri=") {
		t.Errorf("authURL %q must end with &redirect_uri= for the client to append to", g.AuthURL)
	}
	u, err := url.Parse(strings.TrimSuffix(g.AuthURL, "&redirect_uri="))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"client_id": "g-client", "response_type": "code", "state": g.State, "scope": "openid email profile",
		"code_challenge": g.CodeChallenge, "code_challenge_method": "S256", "nonce": nonceFor(g.CodeVerifier),
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("google authURL %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if u.Host != "accounts.google.com" || q.Has("client_secret") {
		t.Errorf("google authURL = %s", g.AuthURL)
	}
	gh := got[1]
	if gh.CodeVerifier != "" || gh.CodeChallenge != "" || gh.CodeChallengeMethod != "" || strings.Contains(gh.AuthURL, "code_challenge") {
		t.Errorf("github with pkce:false = %+v, want no PKCE", gh)
	}
	if second := e.auth.OAuth2Providers(context.Background(), e.users(t)); second[0].State == g.State || second[0].CodeVerifier == g.CodeVerifier {
		t.Error("auth-methods repeated a state or code verifier")
	}

	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.OAuth2.Enabled = false })
	if got := e.auth.OAuth2Providers(context.Background(), e.users(t)); len(got) != 0 {
		t.Errorf("auth-methods with OAuth2 disabled = %v, want none", got)
	}
}

func TestOAuth2SignIn(t *testing.T) {
	e := newOAuth2Env(t)
	ctx := context.Background()
	before := e.countUsers(t)

	// A new user: a record is created, verified, with the mapped name.
	res, err := e.login(t, "oidc", "sub-carol", nil)
	if err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	if res.Token == "" || res.MFAID != "" {
		t.Fatalf("first sign-in = %+v, want a token", res)
	}
	carol := res.Record
	if carol.String("email") != "carol@example.com" || !carol.Bool("verified") || carol.String("name") != "Carol Example" {
		t.Errorf("new record = %v", carol.Data)
	}
	if _, ok := carol.Data["password"]; ok {
		t.Error("the record in the response carries its password hash")
	}
	if n := e.countUsers(t); n != before+1 {
		t.Errorf("users after first sign-in = %d, want %d", n, before+1)
	}
	meta := res.Meta
	if meta["isNew"] != true || meta["id"] != "sub-carol" || meta["email"] != "carol@example.com" || meta["name"] != "Carol Example" ||
		meta["username"] != "sub-carol" || !strings.HasSuffix(meta["avatarURL"].(string), "/avatars/sub-carol.png") {
		t.Errorf("meta = %v", meta)
	}
	if meta["accessToken"] == "" || meta["refreshToken"] == "" || meta["expiry"] == "" {
		t.Errorf("meta lacks the provider's tokens: %v", meta)
	}
	if raw, _ := meta["rawUser"].(map[string]any); raw["sub"] != "sub-carol" {
		t.Errorf("meta.rawUser = %v", meta["rawUser"])
	}
	who, err := e.auth.Identify(ctx, res.Token)
	if err != nil || who.ID() != carol.ID() {
		t.Fatalf("Identify(new token) = %v, %v; want carol", who, err)
	}

	// Signing in again finds the linked record.
	res2, err := e.login(t, "oidc", "sub-carol", map[string]any{"name": "ignored: not new"})
	if err != nil {
		t.Fatalf("second sign-in: %v", err)
	}
	if res2.Record.ID() != carol.ID() || res2.Meta["isNew"] != false || res2.Record.String("name") != "Carol Example" {
		t.Errorf("second sign-in = %s isNew=%v name=%q, want %s, false", res2.Record.ID(), res2.Meta["isNew"], res2.Record.String("name"), carol.ID())
	}
	if n := e.countUsers(t); n != before+1 {
		t.Errorf("users after second sign-in = %d, want %d", n, before+1)
	}
	if got := e.links(t); len(got) != 1 || got[0] != "oidc:sub-carol→"+carol.ID() {
		t.Errorf("links = %v, want one for carol", got)
	}
}

func TestOAuth2LinksVerifiedEmail(t *testing.T) {
	e := newOAuth2Env(t)
	ctx := context.Background()
	// Alice verified her address here; Bob never did (someone may have
	// registered bob@example.com before Bob).
	if _, err := e.records.Update(ctx, e.records.SystemRequest(), "users", e.ids["alice"], map[string]any{"verified": true}, ""); err != nil {
		t.Fatal(err)
	}
	before := e.countUsers(t)

	res, err := e.login(t, "oidc", "sub-alice", nil)
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if res.Record.ID() != e.ids["alice"] || res.Meta["isNew"] != false {
		t.Errorf("alice signed in to %s (isNew %v), want her record %s", res.Record.ID(), res.Meta["isNew"], e.ids["alice"])
	}
	if alice, _ := e.records.FindRecord(ctx, e.users(t), e.ids["alice"]); !record.CheckPassword(alice.String("password"), "alice-password") {
		t.Error("linking changed the password of a verified account")
	}

	res, err = e.login(t, "oidc", "sub-bob", nil)
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	if res.Record.ID() != e.ids["bob"] || !res.Record.Bool("verified") {
		t.Errorf("bob signed in to %s verified=%v, want his record, now verified", res.Record.ID(), res.Record.Bool("verified"))
	}
	// The unverified record's password was replaced: a squatter's is void.
	if bob, _ := e.records.FindRecord(ctx, e.users(t), e.ids["bob"]); record.CheckPassword(bob.String("password"), "bob-password") {
		t.Error("the password set before the address was verified still works")
	}
	if n := e.countUsers(t); n != before {
		t.Errorf("users = %d, want %d (nothing created)", n, before)
	}
}

func TestOAuth2RefusesUnverifiedEmail(t *testing.T) {
	e := newOAuth2Env(t)
	before := e.countUsers(t)
	aliceBefore, err := e.records.FindRecord(context.Background(), e.users(t), e.ids["alice"])
	if err != nil {
		t.Fatal(err)
	}

	// Mallory's provider account claims alice@example.com without having
	// verified it: no link to Alice, and no new account (the provider
	// gives no trusted email, and email is required) — PocketBase's
	// behaviour.
	for _, login := range []string{"mallory", "eve"} {
		_, err := e.login(t, "oidc", login, nil)
		got := describe(err)
		if got.Code != underhood.EInvalid || got.Message != msgFailedAuth || !contains(got.Fields, "email") {
			t.Errorf("sign-in of %s with an unverified email = %+v, want 400 %q with an email error", login, got, msgFailedAuth)
		}
	}
	if n := e.countUsers(t); n != before {
		t.Errorf("users = %d, want %d", n, before)
	}
	if got := e.links(t); len(got) != 0 {
		t.Errorf("links = %v, want none", got)
	}
	aliceAfter, _ := e.records.FindRecord(context.Background(), e.users(t), e.ids["alice"])
	if aliceAfter.String("password") != aliceBefore.String("password") || aliceAfter.String("tokenKey") != aliceBefore.String("tokenKey") {
		t.Error("a refused sign-in changed Alice's record")
	}
}

// TestOAuth2StateIsTheClientsCheck documents where the state is checked:
// auth-methods hands the client a random state, the provider returns it
// unchanged, and the client (the SDK) refuses a redirect whose state is
// not its own before it ever calls auth-with-oauth2. The server keeps no
// state; what binds a code to the sign-in that started it is PKCE: a code
// obtained in one sign-in does not work with another's verifier.
func TestOAuth2StateIsTheClientsCheck(t *testing.T) {
	e := newOAuth2Env(t)
	mine := e.start(t, "oidc")
	theirs, code := e.signIn(t, "oidc", "sub-carol") // an attacker's sign-in
	if theirs.State == mine.State {
		t.Fatal("two sign-ins got the same state")
	}
	_, err := e.auth.AuthWithOAuth2(context.Background(), OAuth2Login{
		Collection: "users", Provider: "oidc", Code: code, CodeVerifier: mine.CodeVerifier, RedirectURL: testRedirect,
	})
	if got := describe(err); got.Code != underhood.EInvalid || got.Message != msgOAuth2Token {
		t.Errorf("a code with another sign-in's verifier = %+v, want 400 %q", got, msgOAuth2Token)
	}
}

func TestOAuth2ProviderRefusals(t *testing.T) {
	tests := []struct {
		name  string
		login func(e *oauth2Env, t *testing.T) OAuth2Login
		want  errorOf
	}{
		{"missing PKCE verifier", func(e *oauth2Env, t *testing.T) OAuth2Login {
			_, code := e.signIn(t, "oidc", "sub-carol")
			return OAuth2Login{Provider: "oidc", Code: code, RedirectURL: testRedirect}
		}, errorOf{Code: underhood.EInvalid, Message: msgOAuth2Token}},
		{"wrong PKCE verifier", func(e *oauth2Env, t *testing.T) OAuth2Login {
			_, code := e.signIn(t, "oidc", "sub-carol")
			return OAuth2Login{Provider: "oidc", Code: code, CodeVerifier: strings.Repeat("x", 43), RedirectURL: testRedirect}
		}, errorOf{Code: underhood.EInvalid, Message: msgOAuth2Token}},
		{"another redirect URL than the authorization's", func(e *oauth2Env, t *testing.T) OAuth2Login {
			p, code := e.signIn(t, "oidc", "sub-carol")
			return OAuth2Login{Provider: "oidc", Code: code, CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect + "/other"}
		}, errorOf{Code: underhood.EInvalid, Message: msgOAuth2Token}},
		{"a code used twice", func(e *oauth2Env, t *testing.T) OAuth2Login {
			p, code := e.signIn(t, "oidc", "sub-carol")
			in := OAuth2Login{Collection: "users", Provider: "oidc", Code: code, CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect}
			if _, err := e.auth.AuthWithOAuth2(context.Background(), in); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return in
		}, errorOf{Code: underhood.EInvalid, Message: msgOAuth2Token}},
		{"a code the provider never issued", func(e *oauth2Env, t *testing.T) OAuth2Login {
			p := e.start(t, "oidc")
			return OAuth2Login{Provider: "oidc", Code: "forged", CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect}
		}, errorOf{Code: underhood.EInvalid, Message: msgOAuth2Token}},
		{"a wrong client secret", func(e *oauth2Env, t *testing.T) OAuth2Login {
			p, code := e.signIn(t, "oidc", "sub-carol")
			e.setProviders(t, map[string]any{"name": "oidc", "clientId": "test-client", "clientSecret": "wrong", "extra": map[string]any{"issuer": e.idp.URL()}})
			return OAuth2Login{Provider: "oidc", Code: code, CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect}
		}, errorOf{Code: underhood.EInvalid, Message: msgOAuth2Token}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOAuth2Env(t)
			in := tt.login(e, t)
			in.Collection = "users"
			users, links := e.countUsers(t), len(e.links(t))
			exchanges := e.idp.exchanges()
			_, err := e.auth.AuthWithOAuth2(context.Background(), in)
			if got := describe(err); got.Code != tt.want.Code || got.Message != tt.want.Message {
				t.Errorf("AuthWithOAuth2 = %+v, want %+v", got, tt.want)
			}
			if e.idp.exchanges() != exchanges+1 {
				t.Errorf("the provider saw %d token requests, want 1: it is the provider that refuses", e.idp.exchanges()-exchanges)
			}
			if e.countUsers(t) != users || len(e.links(t)) != links {
				t.Error("a refused sign-in created a record or a link")
			}
		})
	}
}

func TestOAuth2ProviderDeniesConsent(t *testing.T) {
	// The user refuses at the provider: it redirects back with
	// error=access_denied and no code. The client stops there (the SDK
	// raises "OAuth2 redirect error"); a client that posts anyway gets a
	// 400 for the missing code.
	e := newOAuth2Env(t)
	p := e.start(t, "oidc")
	back := e.idp.authorize(t, p.AuthURL, testRedirect, "deny")
	if back.Get("error") != "access_denied" || back.Has("code") || back.Get("state") != p.State {
		t.Fatalf("provider answered %v, want error=access_denied with the state", back)
	}
	_, err := e.auth.AuthWithOAuth2(context.Background(), OAuth2Login{
		Collection: "users", Provider: "oidc", Code: back.Get("code"), CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect,
	})
	if got := describe(err); got.Code != underhood.EInvalid || got.Message != msgBadForm || !contains(got.Fields, "code") {
		t.Errorf("posting without a code = %+v, want 400 with a code error", got)
	}
	if e.idp.exchanges() != 0 {
		t.Error("the server asked the provider for a token without a code")
	}
}

func TestOAuth2IDTokenChecks(t *testing.T) {
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(jwt.MapClaims)
		key    *rsa.PrivateKey
	}{
		{"signed with another key", nil, otherKey},
		{"for another audience", func(c jwt.MapClaims) { c["aud"] = "another-client" }, nil},
		{"from another issuer", func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }, nil},
		{"expired", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, nil},
		{"without expiry", func(c jwt.MapClaims) { delete(c, "exp") }, nil},
		{"with another sign-in's nonce", func(c jwt.MapClaims) { c["nonce"] = "not-this-one" }, nil},
		{"for another subject than userinfo's", func(c jwt.MapClaims) { c["sub"] = "someone-else" }, nil},
		{"several audiences, another authorized party", func(c jwt.MapClaims) {
			c["aud"] = []string{"test-client", "other"}
			c["azp"] = "other"
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOAuth2Env(t)
			e.idp.mutateIDToken, e.idp.signKey = tt.mutate, tt.key
			users := e.countUsers(t)
			_, err := e.login(t, "oidc", "sub-carol", nil)
			if got := describe(err); got.Code != underhood.EInvalid || got.Message != msgOAuth2User {
				t.Errorf("sign-in with an id_token %s = %+v, want 400 %q", tt.name, got, msgOAuth2User)
			}
			if e.countUsers(t) != users {
				t.Error("a sign-in with a bad id_token created a record")
			}
		})
	}
}

func TestOAuth2RefusesInternalProviderAddresses(t *testing.T) {
	e := newOAuth2Env(t,
		// Explicit URLs on loopback, and an issuer to discover on loopback.
		map[string]any{"name": "oidc", "clientId": "test-client", "clientSecret": "test-secret"},
		map[string]any{"name": "oidc2", "clientId": "test-client", "clientSecret": "test-secret"},
	)
	e.setProviders(t,
		map[string]any{"name": "oidc", "clientId": "test-client", "clientSecret": "test-secret",
			"authURL": e.idp.URL() + "/authorize", "tokenURL": e.idp.URL() + "/token", "userInfoURL": e.idp.URL() + "/userinfo"},
		map[string]any{"name": "oidc2", "clientId": "test-client", "clientSecret": "test-secret", "extra": map[string]any{"issuer": e.idp.URL()}},
	)
	p, code := e.signIn(t, "oidc", "sub-carol") // the browser may reach loopback; the server must not

	// The same service without the allow list: the default client.
	strict := New(e.records, e.auth.log)
	if got := strict.OAuth2Providers(context.Background(), e.users(t)); len(got) != 1 || got[0].Name != "oidc" {
		t.Errorf("auth-methods without the allow list = %v, want only oidc (oidc2's discovery is on loopback)", got)
	}
	users := e.countUsers(t)
	_, err := strict.AuthWithOAuth2(context.Background(), OAuth2Login{
		Collection: "users", Provider: "oidc", Code: code, CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect,
	})
	if got := describe(err); got.Code != underhood.EInvalid || got.Message != msgOAuth2Token {
		t.Errorf("token URL on loopback = %+v, want 400 %q", got, msgOAuth2Token)
	}
	var ue *underhood.Error
	if !asError(err, &ue) || !isRefused(ue.Err) {
		t.Errorf("the cause is %v, want outbound.ErrRefused", err)
	}
	if e.idp.exchanges() != 0 {
		t.Errorf("the provider on loopback got %d token requests, want 0", e.idp.exchanges())
	}
	if e.countUsers(t) != users {
		t.Error("a refused sign-in created a record")
	}
}

func TestOAuth2CreateData(t *testing.T) {
	e := newOAuth2Env(t)
	res, err := e.login(t, "oidc", "sub-carol", map[string]any{"name": "Chosen Name", "verified": false, "emailVisibility": true})
	if err != nil {
		t.Fatalf("sign-in with createData: %v", err)
	}
	rec := res.Record
	if rec.String("name") != "Chosen Name" || !rec.Bool("emailVisibility") {
		t.Errorf("record = %v, want createData's name and emailVisibility", rec.Data)
	}
	if !rec.Bool("verified") || rec.String("email") != "carol@example.com" {
		t.Errorf("record = %v: the provider's verified email wins over createData", rec.Data)
	}

	// createData is validated like any create.
	e2 := newOAuth2Env(t)
	users := e2.countUsers(t)
	_, err = e2.login(t, "oidc", "sub-carol", map[string]any{"name": strings.Repeat("n", 300)})
	if got := describe(err); got.Code != underhood.EInvalid || !contains(got.Fields, "name") {
		t.Errorf("createData with a too long name = %+v, want 400 naming name", got)
	}
	if e2.countUsers(t) != users || len(e2.links(t)) != 0 {
		t.Error("an invalid createData left a record or a link")
	}

	// The create rule decides, with @request.context = "oauth2".
	e2.updateCollection(t, "users", func(c *underhood.Collection) { c.CreateRule = nil })
	if _, err := e2.login(t, "oidc", "sub-carol", nil); underhood.ErrorCode(err) != underhood.EForbidden {
		t.Errorf("sign-up with a superusers-only create rule = %v, want forbidden", err)
	}
	e2.updateCollection(t, "users", func(c *underhood.Collection) { c.CreateRule = underhood.RuleOf(`@request.context = "oauth2"`) })
	if _, err := e2.login(t, "oidc", "sub-carol", nil); err != nil {
		t.Errorf("sign-up with a create rule for oauth2 = %v, want success", err)
	}
}

func TestOAuth2LinksToTheSignedInCaller(t *testing.T) {
	e := newOAuth2Env(t)
	ctx := context.Background()
	alice, err := e.records.FindRecord(ctx, e.users(t), e.ids["alice"])
	if err != nil {
		t.Fatal(err)
	}
	// Alice, signed in, links her provider account whose email differs.
	p, code := e.signIn(t, "oidc", "sub-carol")
	res, err := e.auth.AuthWithOAuth2(ctx, OAuth2Login{
		Collection: "users", Provider: "oidc", Code: code, CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect,
		Request: &record.Request{Auth: alice},
	})
	if err != nil {
		t.Fatalf("link: %v", err)
	}
	if res.Record.ID() != alice.ID() || res.Meta["isNew"] != false {
		t.Errorf("linked to %s, want alice %s", res.Record.ID(), alice.ID())
	}
	// From now on that provider account signs in as Alice.
	res, err = e.login(t, "oidc", "sub-carol", nil)
	if err != nil || res.Record.ID() != alice.ID() {
		t.Errorf("later sign-in = %v, %v; want alice", res, err)
	}
}

func TestOAuth2Form(t *testing.T) {
	e := newOAuth2Env(t)
	ctx := context.Background()
	tests := []struct {
		name string
		in   OAuth2Login
		want errorOf
	}{
		{"empty form", OAuth2Login{Collection: "users"}, errorOf{Code: underhood.EInvalid, Message: msgBadForm, Fields: []string{"code", "provider", "redirectURL"}}},
		{"unknown provider", OAuth2Login{Collection: "users", Provider: "nope", Code: "c", RedirectURL: testRedirect}, errorOf{Code: underhood.EInvalid, Message: msgBadForm, Fields: []string{"provider"}}},
		{"not an auth collection", OAuth2Login{Collection: record.ExternalAuthsName, Provider: "oidc", Code: "c", RedirectURL: testRedirect}, errorOf{Code: underhood.ENotFound, Message: msgNotAuthColl}},
		{"superusers cannot sign up", OAuth2Login{Collection: underhood.SuperusersName, Provider: "oidc", Code: "c", RedirectURL: testRedirect}, errorOf{Code: underhood.EForbidden, Message: msgOAuth2Disabled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(mustFail(t, e, ctx, tt.in))
			sortStrings(got.Fields)
			if got.Code != tt.want.Code || got.Message != tt.want.Message || strings.Join(got.Fields, ",") != strings.Join(tt.want.Fields, ",") {
				t.Errorf("AuthWithOAuth2(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}

	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.OAuth2.Enabled = false })
	if got := describe(mustFail(t, e, ctx, OAuth2Login{Collection: "users", Provider: "oidc", Code: "c", RedirectURL: testRedirect})); got.Code != underhood.EForbidden || got.Message != msgOAuth2Disabled {
		t.Errorf("OAuth2 disabled = %+v, want 403 %q", got, msgOAuth2Disabled)
	}
}

func TestOAuth2SuperusersNeverSignUp(t *testing.T) {
	e := newOAuth2Env(t)
	e.updateCollection(t, underhood.SuperusersName, func(c *underhood.Collection) {
		b, _ := json.Marshal(map[string]any{"name": "oidc", "clientId": "test-client", "clientSecret": "test-secret", "extra": map[string]any{"issuer": e.idp.URL()}})
		c.Auth.OAuth2.Enabled = true
		c.Auth.OAuth2.Providers = []json.RawMessage{b}
	})
	su, err := e.records.Collection(underhood.SuperusersName)
	if err != nil {
		t.Fatal(err)
	}
	var p OAuth2Provider
	for _, x := range e.auth.OAuth2Providers(context.Background(), su) {
		p = x
	}
	back := e.idp.authorize(t, p.AuthURL, testRedirect, "sub-carol")
	_, err = e.auth.AuthWithOAuth2(context.Background(), OAuth2Login{
		Collection: underhood.SuperusersName, Provider: "oidc", Code: back.Get("code"), CodeVerifier: p.CodeVerifier, RedirectURL: testRedirect,
	})
	if got := describe(err); got.Code != underhood.EInvalid || got.Message != msgOAuth2Superuser {
		t.Errorf("superuser sign-up = %+v, want 400 %q", got, msgOAuth2Superuser)
	}
}

// TestOAuth2BuiltInProviders signs in with each built-in provider's
// configuration, its endpoints pointed at the test provider, and checks
// how each one tells a verified email: a verified one creates the account
// with that email, an unverified one is never trusted.
func TestOAuth2BuiltInProviders(t *testing.T) {
	const msTenant = "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		provider string
		config   func(idp string) map[string]any
		setup    func(e *oauth2Env)
		wantID   string // meta.id of carol
	}{
		{"google", func(idp string) map[string]any {
			return map[string]any{"authURL": idp + "/authorize", "tokenURL": idp + "/token", "userInfoURL": idp + "/userinfo",
				"extra": map[string]any{"jwksURL": idp + "/jwks", "issuers": []string{idp}}}
		}, nil, "sub-carol"},
		{"github", func(idp string) map[string]any {
			return map[string]any{"authURL": idp + "/authorize", "tokenURL": idp + "/token", "userInfoURL": idp + "/user"}
		}, nil, "1001"},
		{"gitlab", func(idp string) map[string]any {
			return map[string]any{"authURL": idp + "/authorize", "tokenURL": idp + "/token", "userInfoURL": idp + "/api/v4/user"}
		}, nil, "1001"},
		{"discord", func(idp string) map[string]any {
			return map[string]any{"authURL": idp + "/authorize", "tokenURL": idp + "/token", "userInfoURL": idp + "/users/@me"}
		}, nil, "sub-carol"},
		{"microsoft", func(idp string) map[string]any {
			return map[string]any{"authURL": idp + "/authorize", "tokenURL": idp + "/token", "extra": map[string]any{"jwksURL": idp + "/jwks"}}
		}, func(e *oauth2Env) {
			// Microsoft's issuer names the tenant; the email is trusted
			// only with xms_edov (or email_verified) in the token.
			e.idp.clients["test-client"].issuer = "https://login.microsoftonline.com/" + msTenant + "/v2.0"
			e.idp.mutateIDToken = func(c jwt.MapClaims) {
				c["tid"], c["oid"] = msTenant, "oid-"+c["sub"].(string)
				c["xms_edov"] = c["email_verified"]
				delete(c, "email_verified")
			}
		}, "oid-sub-carol"},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			e := newOAuth2Env(t)
			cfg := tt.config(e.idp.URL())
			cfg["name"], cfg["clientId"], cfg["clientSecret"] = tt.provider, "test-client", "test-secret"
			e.setProviders(t, cfg)
			if tt.setup != nil {
				e.idp.mu.Lock()
				tt.setup(e)
				e.idp.mu.Unlock()
			}
			res, err := e.login(t, tt.provider, "sub-carol", nil)
			if err != nil {
				t.Fatalf("%s sign-in: %v", tt.provider, err)
			}
			if res.Record.String("email") != "carol@example.com" || !res.Record.Bool("verified") || res.Meta["id"] != tt.wantID {
				t.Errorf("%s sign-in = record %v, meta.id %v; want carol, verified, id %s", tt.provider, res.Record.Data, res.Meta["id"], tt.wantID)
			}
			again, err := e.login(t, tt.provider, "sub-carol", nil)
			if err != nil || again.Record.ID() != res.Record.ID() {
				t.Errorf("%s second sign-in = %v, %v; want the same record", tt.provider, again, err)
			}
			users := e.countUsers(t)
			_, err = e.login(t, tt.provider, "eve", nil)
			if got := describe(err); got.Code != underhood.EInvalid || !contains(got.Fields, "email") {
				t.Errorf("%s sign-in with an unverified email = %+v, want 400 with an email error", tt.provider, got)
			}
			if e.countUsers(t) != users {
				t.Errorf("%s: an unverified email created a record", tt.provider)
			}
		})
	}
}

func TestOAuth2Apple(t *testing.T) {
	e := newOAuth2Env(t)
	appleKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(appleKey)
	if err != nil {
		t.Fatal(err)
	}
	e.idp.mu.Lock()
	e.idp.clients["com.example.app"] = &idpClient{issuer: "https://appleid.apple.com", appleKey: &appleKey.PublicKey}
	e.idp.mu.Unlock()
	e.setProviders(t, map[string]any{"name": "apple", "clientId": "com.example.app",
		"authURL": e.idp.URL() + "/authorize", "tokenURL": e.idp.URL() + "/token",
		"extra": map[string]any{
			"jwksURL": e.idp.URL() + "/jwks", "teamId": "apple-team", "keyId": "KEY123",
			"privateKey": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		}})
	p := e.start(t, "apple")
	if !strings.Contains(p.AuthURL, "response_mode=form_post") {
		t.Errorf("apple authURL %s lacks response_mode=form_post", p.AuthURL)
	}
	res, err := e.login(t, "apple", "sub-carol", nil)
	if err != nil {
		t.Fatalf("apple sign-in (ES256 client secret, id_token only): %v", err)
	}
	if res.Record.String("email") != "carol@example.com" || res.Meta["id"] != "sub-carol" {
		t.Errorf("apple sign-in = record %v meta %v", res.Record.Data, res.Meta)
	}
}

func TestOAuth2ClientSecretNeverLogged(t *testing.T) {
	var logs strings.Builder
	e := newOAuth2Env(t)
	e.auth.log = newTestLogger(&logs)
	e.setProviders(t, map[string]any{"name": "oidc", "clientId": "test-client", "clientSecret": "very-secret-value-123",
		"extra": map[string]any{"issuer": e.idp.URL()}})
	_, code := e.signIn(t, "oidc", "sub-carol")
	_, err := e.auth.AuthWithOAuth2(context.Background(), OAuth2Login{Collection: "users", Provider: "oidc", Code: code, RedirectURL: testRedirect})
	if err == nil {
		t.Fatal("sign-in without a verifier succeeded")
	}
	if logs.Len() == 0 {
		t.Fatal("a failed sign-in logged nothing")
	}
	for _, secret := range []string{"very-secret-value-123", code} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a secret: %s", logs.String())
		}
	}
}

func mustFail(t *testing.T, e *oauth2Env, ctx context.Context, in OAuth2Login) error {
	t.Helper()
	_, err := e.auth.AuthWithOAuth2(ctx, in)
	if err == nil {
		t.Fatalf("AuthWithOAuth2(%+v) succeeded", in)
	}
	return err
}

func asError(err error, target **underhood.Error) bool { return errors.As(err, target) }

func isRefused(err error) bool { return errors.Is(err, outbound.ErrRefused) }

func sortStrings(s []string) { sort.Strings(s) }

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

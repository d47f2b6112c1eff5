package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// providerConfig is one entry of an auth collection's oauth2.providers,
// in PocketBase's shape. The URLs override the provider's defaults.
//
// Extra options by provider:
//   - oidc, oidc2, oidc3 (any name starting with "oidc"): "issuer" (the
//     discovery base: its /.well-known/openid-configuration fills the URLs
//     left empty and names the expected issuer), "jwksURL", "issuers" (a
//     list of accepted id_token issuers), "scopes" (a list replacing
//     "openid email profile");
//   - apple: "teamId", "keyId" and "privateKey" (the PEM of the .p8 key):
//     the client secret is then a fresh ES256 JWT signed with that key
//     (clientSecret may stay empty);
//   - microsoft: the email is trusted only when the id_token says it is
//     verified ("email_verified" or the optional claim "xms_edov"), or for
//     personal Microsoft accounts.
type providerConfig struct {
	Name         string         `json:"name"`
	ClientID     string         `json:"clientId"`
	ClientSecret string         `json:"clientSecret"`
	AuthURL      string         `json:"authURL"`
	TokenURL     string         `json:"tokenURL"`
	UserInfoURL  string         `json:"userInfoURL"`
	DisplayName  string         `json:"displayName"`
	PKCE         *bool          `json:"pkce"`
	Extra        map[string]any `json:"extra"`
}

// OAuth2User is what a provider says about the person who signed in,
// normalised across providers. Email is set only when the provider says
// the address is verified, so it is safe to link accounts by it.
type OAuth2User struct {
	ID        string
	Name      string
	Username  string
	Email     string
	AvatarURL string
	Raw       map[string]any
}

// providerKind is the built-in knowledge of one provider: its endpoints,
// scopes and how to learn who signed in.
type providerKind struct {
	displayName string
	authURL     string
	tokenURL    string
	userInfoURL string
	jwksURL     string
	issuers     []string // accepted id_token issuers; empty: any (see checkIssuer)
	scopes      []string
	pkce        bool
	// oidc marks providers that issue id_tokens: the auth URL carries a
	// nonce and a returned id_token is verified.
	oidc bool
	// discover lets the provider fill its URLs from extra.issuer.
	discover bool
	// basicAuth sends the client credentials in an Authorization header
	// (client_secret_basic) instead of the form (client_secret_post).
	basicAuth bool
	// authParams are added to the authorization URL.
	authParams url.Values
	// checkIssuer, when set, replaces the issuers list (Microsoft's issuer
	// names the tenant).
	checkIssuer func(iss string, claims map[string]any) bool
	// user learns who signed in.
	user func(ctx context.Context, p *provider, tok *tokenResponse) (*OAuth2User, error)
}

// providerKinds are the providers Underhood knows by name. Generic OpenID
// Connect providers are named "oidc", "oidc2", … (any name with that prefix).
var providerKinds = map[string]*providerKind{
	"google": {
		displayName: "Google",
		authURL:     "https://accounts.google.com/o/oauth2/v2/auth",
		tokenURL:    "https://oauth2.googleapis.com/token",
		userInfoURL: "https://openidconnect.googleapis.com/v1/userinfo",
		jwksURL:     "https://www.googleapis.com/oauth2/v3/certs",
		issuers:     []string{"https://accounts.google.com", "accounts.google.com"},
		scopes:      []string{"openid", "email", "profile"},
		pkce:        true,
		oidc:        true,
		user:        oidcUser,
	},
	"github": {
		displayName: "GitHub",
		authURL:     "https://github.com/login/oauth/authorize",
		tokenURL:    "https://github.com/login/oauth/access_token",
		userInfoURL: "https://api.github.com/user",
		scopes:      []string{"read:user", "user:email"},
		pkce:        true,
		user:        githubUser,
	},
	"gitlab": {
		displayName: "GitLab",
		authURL:     "https://gitlab.com/oauth/authorize",
		tokenURL:    "https://gitlab.com/oauth/token",
		userInfoURL: "https://gitlab.com/api/v4/user",
		scopes:      []string{"read_user"},
		pkce:        true,
		user:        gitlabUser,
	},
	"microsoft": {
		displayName: "Microsoft",
		authURL:     "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
		tokenURL:    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
		jwksURL:     "https://login.microsoftonline.com/common/discovery/v2.0/keys",
		scopes:      []string{"openid", "email", "profile", "User.Read"},
		pkce:        true,
		oidc:        true,
		checkIssuer: microsoftIssuer,
		user:        microsoftUser,
	},
	"discord": {
		displayName: "Discord",
		authURL:     "https://discord.com/oauth2/authorize",
		tokenURL:    "https://discord.com/api/oauth2/token",
		userInfoURL: "https://discord.com/api/users/@me",
		scopes:      []string{"identify", "email"},
		pkce:        true,
		user:        discordUser,
	},
	"apple": {
		displayName: "Apple",
		authURL:     "https://appleid.apple.com/auth/authorize",
		tokenURL:    "https://appleid.apple.com/auth/token",
		jwksURL:     "https://appleid.apple.com/auth/keys",
		issuers:     []string{"https://appleid.apple.com"},
		scopes:      []string{"name", "email"},
		pkce:        true,
		oidc:        true,
		// Apple requires form_post when name or email is asked for.
		authParams: url.Values{"response_mode": {"form_post"}},
		user:       appleUser,
	},
}

// genericOIDC is the kind of providers named oidc, oidc2, ….
var genericOIDC = &providerKind{
	displayName: "OIDC",
	scopes:      []string{"openid", "email", "profile"},
	pkce:        true,
	oidc:        true,
	discover:    true,
	// client_secret_basic is the OpenID Connect default; discovery can
	// switch to client_secret_post.
	basicAuth: true,
	user:      oidcUser,
}

func kindOf(name string) *providerKind {
	if k, ok := providerKinds[name]; ok {
		return k
	}
	if strings.HasPrefix(name, "oidc") {
		return genericOIDC
	}
	return nil
}

// provider is a configured provider, ready to talk to.
type provider struct {
	kind         *providerKind
	a            *Service
	name         string
	displayName  string
	clientID     string
	clientSecret string
	authURL      string
	tokenURL     string
	userInfoURL  string
	jwksURL      string
	issuers      []string
	scopes       []string
	pkce         bool
	basicAuth    bool
	extra        map[string]any
}

// errProviderConfig marks a provider configuration the server cannot use;
// it is the operator's problem, not the client's.
var errProviderConfig = errors.New("invalid OAuth2 provider configuration")

// resolveProvider combines cfg with its kind's defaults and, for a
// generic OpenID Connect provider with an issuer, its discovery document.
func (a *Service) resolveProvider(ctx context.Context, cfg *providerConfig) (*provider, error) {
	k := kindOf(cfg.Name)
	if k == nil {
		return nil, fmt.Errorf("%w: unknown provider %q", errProviderConfig, cfg.Name)
	}
	p := &provider{
		kind: k, a: a, name: cfg.Name,
		displayName:  firstNonEmpty(cfg.DisplayName, k.displayName, cfg.Name),
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		authURL:      firstNonEmpty(cfg.AuthURL, k.authURL),
		tokenURL:     firstNonEmpty(cfg.TokenURL, k.tokenURL),
		userInfoURL:  firstNonEmpty(cfg.UserInfoURL, k.userInfoURL),
		jwksURL:      firstNonEmpty(extraString(cfg.Extra, "jwksURL"), k.jwksURL),
		issuers:      append(extraStrings(cfg.Extra, "issuers"), k.issuers...),
		scopes:       k.scopes,
		pkce:         k.pkce,
		basicAuth:    k.basicAuth,
		extra:        cfg.Extra,
	}
	if cfg.PKCE != nil {
		p.pkce = *cfg.PKCE
	}
	if s := extraStrings(cfg.Extra, "scopes"); len(s) > 0 {
		p.scopes = s
	}
	if issuer := extraString(cfg.Extra, "issuer"); issuer != "" && k.discover {
		doc, err := a.discover(ctx, issuer)
		if err != nil {
			return nil, err
		}
		p.authURL = firstNonEmpty(p.authURL, doc.AuthorizationEndpoint)
		p.tokenURL = firstNonEmpty(p.tokenURL, doc.TokenEndpoint)
		p.userInfoURL = firstNonEmpty(p.userInfoURL, doc.UserinfoEndpoint)
		p.jwksURL = firstNonEmpty(p.jwksURL, doc.JWKSURI)
		p.issuers = append(p.issuers, doc.Issuer)
		if methods := doc.TokenEndpointAuthMethods; len(methods) > 0 {
			p.basicAuth = !contains(methods, "client_secret_post") && contains(methods, "client_secret_basic")
		}
	}
	switch {
	case p.clientID == "":
		return nil, fmt.Errorf("%w: provider %q has no clientId", errProviderConfig, p.name)
	case p.authURL == "" || p.tokenURL == "":
		return nil, fmt.Errorf("%w: provider %q needs authURL and tokenURL (or extra.issuer for discovery)", errProviderConfig, p.name)
	case k == genericOIDC && p.userInfoURL == "" && p.jwksURL == "":
		return nil, fmt.Errorf("%w: provider %q needs userInfoURL or extra.jwksURL", errProviderConfig, p.name)
	}
	for _, u := range []string{p.authURL, p.tokenURL, p.userInfoURL, p.jwksURL} {
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("%w: provider %q has an invalid URL %q", errProviderConfig, p.name, u)
		}
	}
	if cfg.Name == "apple" && extraString(cfg.Extra, "privateKey") != "" {
		secret, err := appleClientSecret(cfg, a.now())
		if err != nil {
			return nil, err
		}
		p.clientSecret = secret
	}
	return p, nil
}

// oidcUser reads the user of an OpenID Connect provider: the claims of the
// verified id_token, completed by the userinfo endpoint when there is one
// (whose subject must then be the id_token's).
func oidcUser(ctx context.Context, p *provider, tok *tokenResponse) (*OAuth2User, error) {
	var claims map[string]any
	if tok.IDToken != "" && p.jwksURL != "" {
		c, err := p.verifyIDToken(ctx, tok.IDToken, tok.verifier)
		if err != nil {
			return nil, err
		}
		claims = c
	}
	if p.userInfoURL != "" {
		info, err := p.getJSON(ctx, p.userInfoURL, tok.AccessToken)
		if err != nil {
			return nil, fmt.Errorf("userinfo: %w", err)
		}
		if claims != nil && info["sub"] != nil && fmt.Sprint(info["sub"]) != fmt.Sprint(claims["sub"]) {
			return nil, errors.New("userinfo subject differs from the id_token's")
		}
		claims = info
	}
	if claims == nil {
		return nil, errors.New("the provider returned no verifiable id_token and has no userinfo endpoint")
	}
	u := &OAuth2User{
		// Google's older userinfo (v1) says id and verified_email.
		ID:        firstNonEmpty(claimString(claims, "sub"), claimString(claims, "id")),
		Name:      claimString(claims, "name"),
		Username:  claimString(claims, "preferred_username"),
		AvatarURL: claimString(claims, "picture"),
		Raw:       claims,
	}
	if claimBool(claims, "email_verified") || claimBool(claims, "verified_email") {
		u.Email = claimString(claims, "email")
	}
	return u, nil
}

// githubUser reads /user, and /user/emails for the verified primary email
// (the profile's public email may be missing or not the primary one).
func githubUser(ctx context.Context, p *provider, tok *tokenResponse) (*OAuth2User, error) {
	raw, err := p.getJSON(ctx, p.userInfoURL, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	u := &OAuth2User{
		ID:        claimString(raw, "id"),
		Name:      claimString(raw, "name"),
		Username:  claimString(raw, "login"),
		AvatarURL: claimString(raw, "avatar_url"),
		Raw:       raw,
	}
	var emails []struct {
		Email    string `json:"email"`
		Verified bool   `json:"verified"`
		Primary  bool   `json:"primary"`
	}
	status, err := p.getJSONInto(ctx, strings.TrimSuffix(p.userInfoURL, "/")+"/emails", tok.AccessToken, &emails)
	switch {
	case status == 401 || status == 403 || status == 404:
		// Without the user:email scope only the public profile email is
		// known; GitHub lets only a verified address be public.
		u.Email = claimString(raw, "email")
	case err != nil:
		return nil, fmt.Errorf("user emails: %w", err)
	default:
		for _, e := range emails {
			if e.Primary && e.Verified {
				u.Email = e.Email
			}
		}
	}
	return u, nil
}

// gitlabUser reads /api/v4/user; the email is verified once confirmed_at
// is set.
func gitlabUser(ctx context.Context, p *provider, tok *tokenResponse) (*OAuth2User, error) {
	raw, err := p.getJSON(ctx, p.userInfoURL, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	u := &OAuth2User{
		ID:        claimString(raw, "id"),
		Name:      claimString(raw, "name"),
		Username:  claimString(raw, "username"),
		AvatarURL: claimString(raw, "avatar_url"),
		Raw:       raw,
	}
	if t, err := time.Parse(time.RFC3339, claimString(raw, "confirmed_at")); err == nil && !t.IsZero() {
		u.Email = claimString(raw, "email")
	}
	return u, nil
}

// discordUser reads /users/@me; "verified" is the email's state.
func discordUser(ctx context.Context, p *provider, tok *tokenResponse) (*OAuth2User, error) {
	raw, err := p.getJSON(ctx, p.userInfoURL, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	id := claimString(raw, "id")
	u := &OAuth2User{
		ID:       id,
		Name:     firstNonEmpty(claimString(raw, "global_name"), claimString(raw, "username")),
		Username: claimString(raw, "username"),
		Raw:      raw,
	}
	if avatar := claimString(raw, "avatar"); avatar != "" {
		u.AvatarURL = "https://cdn.discordapp.com/avatars/" + url.PathEscape(id) + "/" + url.PathEscape(avatar) + ".png"
	}
	if claimBool(raw, "verified") {
		u.Email = claimString(raw, "email")
	}
	return u, nil
}

// consumerTenant is the tenant of personal Microsoft accounts, whose
// addresses Microsoft has verified.
const consumerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// microsoftIssuer accepts the issuer of the tenant the token names.
func microsoftIssuer(iss string, claims map[string]any) bool {
	tid := claimString(claims, "tid")
	return tid != "" && iss == "https://login.microsoftonline.com/"+tid+"/v2.0"
}

// microsoftUser reads the verified id_token. Its id is the object id, as
// Microsoft Graph's /me returns it. An organisation's directory can put
// any address in "email", so it counts as verified only when the token
// says so.
func microsoftUser(ctx context.Context, p *provider, tok *tokenResponse) (*OAuth2User, error) {
	if tok.IDToken == "" {
		return nil, errors.New("microsoft returned no id_token (is the openid scope requested?)")
	}
	claims, err := p.verifyIDToken(ctx, tok.IDToken, tok.verifier)
	if err != nil {
		return nil, err
	}
	u := &OAuth2User{
		ID:       firstNonEmpty(claimString(claims, "oid"), claimString(claims, "sub")),
		Name:     claimString(claims, "name"),
		Username: claimString(claims, "preferred_username"),
		Raw:      claims,
	}
	if claimBool(claims, "email_verified") || claimBool(claims, "xms_edov") || claimString(claims, "tid") == consumerTenant {
		u.Email = claimString(claims, "email")
	}
	return u, nil
}

// appleUser reads the verified id_token; Apple has no userinfo endpoint.
// The name comes only on the first sign-in, as a "user" JSON document.
func appleUser(ctx context.Context, p *provider, tok *tokenResponse) (*OAuth2User, error) {
	claims, err := p.verifyIDToken(ctx, tok.IDToken, tok.verifier)
	if err != nil {
		return nil, err
	}
	u := &OAuth2User{ID: claimString(claims, "sub"), Raw: claims}
	if claimBool(claims, "email_verified") {
		u.Email = claimString(claims, "email")
	}
	if s, ok := tok.Raw["user"].(string); ok && s != "" {
		var doc struct {
			Name struct {
				FirstName string `json:"firstName"`
				LastName  string `json:"lastName"`
			} `json:"name"`
		}
		if json.Unmarshal([]byte(s), &doc) == nil {
			u.Name = strings.TrimSpace(doc.Name.FirstName + " " + doc.Name.LastName)
			claims["user"] = doc
		}
	}
	return u, nil
}

// appleClientSecret returns the client secret Apple expects: a short-lived
// JWT signed (ES256) with the developer's private key.
func appleClientSecret(cfg *providerConfig, now time.Time) (string, error) {
	teamID, keyID := extraString(cfg.Extra, "teamId"), extraString(cfg.Extra, "keyId")
	if teamID == "" || keyID == "" {
		return "", fmt.Errorf("%w: apple needs extra.teamId and extra.keyId with extra.privateKey", errProviderConfig)
	}
	block, _ := pem.Decode([]byte(extraString(cfg.Extra, "privateKey")))
	if block == nil {
		return "", fmt.Errorf("%w: apple extra.privateKey is not a PEM key", errProviderConfig)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%w: apple extra.privateKey: %v", errProviderConfig, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return "", fmt.Errorf("%w: apple extra.privateKey is not an EC key", errProviderConfig)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer:    teamID,
		Subject:   cfg.ClientID,
		Audience:  jwt.ClaimStrings{"https://appleid.apple.com"},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	})
	t.Header["kid"] = keyID
	return t.SignedString(key)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func extraString(extra map[string]any, key string) string {
	s, _ := extra[key].(string)
	return strings.TrimSpace(s)
}

// extraStrings reads a list of strings, or one string, from extra.
func extraStrings(extra map[string]any, key string) []string {
	switch v := extra[key].(type) {
	case string:
		if v = strings.TrimSpace(v); v != "" {
			return []string{v}
		}
	case []any:
		var out []string
		for _, item := range v {
			if s, ok := item.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// claimString reads a claim as a string; numbers (GitHub's and GitLab's
// ids) are written without exponent.
func claimString(claims map[string]any, key string) string {
	switch v := claims[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// claimBool reads a boolean claim that some providers send as a string.
func claimBool(claims map[string]any, key string) bool {
	switch v := claims[key].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

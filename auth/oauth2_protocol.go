package auth

// The OAuth2 and OpenID Connect protocol as the server speaks it to a
// provider: the code exchange, JSON requests with the access token, the
// discovery document, the JWK set and the verification of id_tokens. Every
// request goes through the outbound client (Service.httpClient).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenResponse is a provider's answer to the code exchange.
type tokenResponse struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	Expiry       time.Time
	Raw          map[string]any
	verifier     string // the PKCE verifier of the exchange, for the nonce
}

// providerRefusal is an OAuth2 error response (RFC 6749 section 5.2).
type providerRefusal struct {
	Status int
	Code   string // invalid_grant, invalid_client, …
}

func (e *providerRefusal) Error() string {
	return fmt.Sprintf("provider answered %d %s", e.Status, e.Code)
}

// exchange trades an authorization code for tokens.
func (p *provider) exchange(ctx context.Context, code, verifier, redirectURL string) (*tokenResponse, error) {
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {redirectURL},
	}
	if p.pkce && verifier != "" {
		form.Set("code_verifier", verifier)
	}
	if !p.basicAuth {
		form.Set("client_id", p.clientID)
		form.Set("client_secret", p.clientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.basicAuth {
		// RFC 6749 section 2.3.1: form-encoded, then Basic.
		req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.clientSecret))
	}
	resp, err := p.a.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	raw := map[string]any{}
	if err := decodeJSON(body, &raw); err != nil {
		// Some providers answer form-encoded without being asked.
		values, perr := url.ParseQuery(string(body))
		if perr != nil || resp.StatusCode/100 != 2 {
			return nil, &providerRefusal{Status: resp.StatusCode, Code: "unreadable response"}
		}
		for k := range values {
			raw[k] = values.Get(k)
		}
	}
	// GitHub answers errors with 200.
	if e := claimString(raw, "error"); e != "" || resp.StatusCode/100 != 2 {
		return nil, &providerRefusal{Status: resp.StatusCode, Code: firstNonEmpty(e, "no error code")}
	}
	tok := &tokenResponse{
		AccessToken:  claimString(raw, "access_token"),
		RefreshToken: claimString(raw, "refresh_token"),
		IDToken:      claimString(raw, "id_token"),
		Raw:          raw,
		verifier:     verifier,
	}
	if tok.AccessToken == "" {
		return nil, errors.New("the token response has no access_token")
	}
	if secs := claimString(raw, "expires_in"); secs != "" {
		var n float64
		if _, err := fmt.Sscan(secs, &n); err == nil && n > 0 {
			tok.Expiry = p.a.now().Add(time.Duration(n) * time.Second)
		}
	}
	return tok, nil
}

// getJSON fetches a JSON object with a bearer token.
func (p *provider) getJSON(ctx context.Context, u, accessToken string) (map[string]any, error) {
	out := map[string]any{}
	if _, err := p.getJSONInto(ctx, u, accessToken, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// getJSONInto fetches a JSON document into v and returns the status.
func (p *provider) getJSONInto(ctx context.Context, u, accessToken string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := p.a.httpClient().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("GET %s: status %d", redactURL(u), resp.StatusCode)
	}
	if err := decodeJSON(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", redactURL(u), err)
	}
	return resp.StatusCode, nil
}

// decodeJSON decodes b keeping numbers exact (GitHub's ids are integers
// beyond float precision in principle).
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	return dec.Decode(v)
}

// redactURL drops the query of u for logs.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

// discoveryDoc is the part of an OpenID Provider's metadata we use.
type discoveryDoc struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorization_endpoint"`
	TokenEndpoint            string   `json:"token_endpoint"`
	UserinfoEndpoint         string   `json:"userinfo_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
}

// discover returns the discovery document of issuer, cached for an hour.
func (a *Service) discover(ctx context.Context, issuer string) (*discoveryDoc, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	a.oauth2.mu.Lock()
	c, ok := a.oauth2.discovery[issuer]
	a.oauth2.mu.Unlock()
	age := a.now().Sub(c.fetched)
	switch {
	case ok && c.err == nil && age < discoveryTTL:
		return c.doc, nil
	case ok && c.err != nil && age < discoveryRetry:
		// An unreachable provider is not asked again on every request.
		return nil, c.err
	}
	doc, err := a.fetchDiscovery(ctx, issuer)
	a.oauth2.mu.Lock()
	if a.oauth2.discovery == nil {
		a.oauth2.discovery = map[string]cachedDoc[*discoveryDoc]{}
	}
	a.oauth2.discovery[issuer] = cachedDoc[*discoveryDoc]{doc: doc, err: err, fetched: a.now()}
	a.oauth2.mu.Unlock()
	return doc, err
}

func (a *Service) fetchDiscovery(ctx context.Context, issuer string) (*discoveryDoc, error) {
	p := &provider{a: a}
	doc := &discoveryDoc{}
	if _, err := p.getJSONInto(ctx, issuer+"/.well-known/openid-configuration", "", doc); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	// The document must be the issuer's own (OpenID Connect Discovery 4.3).
	if strings.TrimSuffix(doc.Issuer, "/") != issuer {
		return nil, fmt.Errorf("discovery: document of issuer %q names %q", issuer, doc.Issuer)
	}
	return doc, nil
}

// idTokenMethods are the signature algorithms accepted on id_tokens: the
// asymmetric ones only, never "none" or an HMAC keyed with something public.
var idTokenMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// verifyIDToken checks an id_token's signature against the provider's
// keys, its issuer, audience, times and, when present, its nonce, and
// returns its claims.
func (p *provider) verifyIDToken(ctx context.Context, raw, verifier string) (map[string]any, error) {
	if raw == "" {
		return nil, errors.New("the token response has no id_token")
	}
	if p.jwksURL == "" {
		return nil, fmt.Errorf("%w: provider %q has no JWKS URL to verify id_tokens", errProviderConfig, p.name)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return p.a.jwk(ctx, p.jwksURL, kid, t.Method.Alg())
	},
		jwt.WithValidMethods(idTokenMethods),
		jwt.WithLeeway(idTokenLeeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(p.clientID),
		jwt.WithJSONNumber(),
	)
	if err != nil {
		return nil, fmt.Errorf("id_token: %w", err)
	}
	iss, _ := claims["iss"].(string)
	switch {
	case p.kind.checkIssuer != nil:
		if !p.kind.checkIssuer(iss, claims) {
			return nil, fmt.Errorf("id_token: unexpected issuer %q", iss)
		}
	case len(p.issuers) > 0:
		if !contains(p.issuers, iss) && !contains(p.issuers, strings.TrimSuffix(iss, "/")) {
			return nil, fmt.Errorf("id_token: unexpected issuer %q", iss)
		}
	}
	// With several audiences, the authorized party must be this client.
	if aud, ok := claims["aud"].([]any); ok && len(aud) > 1 && claimString(claims, "azp") != p.clientID {
		return nil, errors.New("id_token: issued to another authorized party")
	}
	if nonce, ok := claims["nonce"]; ok && (verifier == "" || fmt.Sprint(nonce) != nonceFor(verifier)) {
		return nil, errors.New("id_token: nonce does not match this sign-in")
	}
	if claimString(claims, "sub") == "" {
		return nil, errors.New("id_token: no subject")
	}
	return claims, nil
}

// jwk returns the public key kid (for alg) from the key set at jwksURL,
// fetching the set again when the key is unknown, at most every few
// seconds, so a provider's key rotation is picked up.
func (a *Service) jwk(ctx context.Context, jwksURL, kid, alg string) (any, error) {
	a.oauth2.mu.Lock()
	c, ok := a.oauth2.jwks[jwksURL]
	a.oauth2.mu.Unlock()
	age := a.now().Sub(c.fetched)
	if ok && age < jwksTTL {
		if key, err := pickKey(c.doc, kid, alg); err == nil || age < jwksMinInterval {
			return key, err
		}
	}
	p := &provider{a: a}
	doc := map[string]any{}
	if _, err := p.getJSONInto(ctx, jwksURL, "", &doc); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	a.oauth2.mu.Lock()
	if a.oauth2.jwks == nil {
		a.oauth2.jwks = map[string]cachedDoc[map[string]any]{}
	}
	a.oauth2.jwks[jwksURL] = cachedDoc[map[string]any]{doc: doc, fetched: a.now()}
	a.oauth2.mu.Unlock()
	return pickKey(doc, kid, alg)
}

// pickKey finds key kid in a JWK set and returns it as an RSA or ECDSA
// public key. A key without kid matches when it is the only signing key.
func pickKey(set map[string]any, kid, alg string) (any, error) {
	keys, _ := set["keys"].([]any)
	var candidates []map[string]any
	for _, k := range keys {
		m, ok := k.(map[string]any)
		if !ok {
			continue
		}
		if use := claimString(m, "use"); use != "" && use != "sig" {
			continue
		}
		if a := claimString(m, "alg"); a != "" && a != alg {
			continue
		}
		if kid == "" || claimString(m, "kid") == kid {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) != 1 {
		return nil, fmt.Errorf("no single signing key with kid %q for %s", kid, alg)
	}
	return publicKey(candidates[0])
}

// publicKey decodes an RSA or EC JSON Web Key (RFC 7518 section 6).
func publicKey(m map[string]any) (any, error) {
	b64 := func(name string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(claimString(m, name), "="))
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("jwk: bad %q", name)
		}
		return new(big.Int).SetBytes(b), nil
	}
	switch claimString(m, "kty") {
	case "RSA":
		n, err := b64("n")
		if err != nil {
			return nil, err
		}
		e, err := b64("e")
		if err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 || n.BitLen() < 2048 {
			return nil, errors.New("jwk: weak or malformed RSA key")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch claimString(m, "crv") {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("jwk: unsupported curve %q", claimString(m, "crv"))
		}
		x, err := b64("x")
		if err != nil {
			return nil, err
		}
		y, err := b64("y")
		if err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x.Bytes()) > size || len(y.Bytes()) > size {
			return nil, errors.New("jwk: EC coordinates too long")
		}
		point := make([]byte, 1+2*size)
		point[0] = 4 // uncompressed
		x.FillBytes(point[1 : 1+size])
		y.FillBytes(point[1+size:])
		// The parser checks that the point is on the curve.
		key, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("jwk: %w", err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("jwk: unsupported key type %q", claimString(m, "kty"))
}

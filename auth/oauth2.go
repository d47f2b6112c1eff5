package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// OAuth2 sign-in (authorization code flow with PKCE), as PocketBase does it:
//
//  1. GET auth-methods lists each provider with a fresh state, PKCE code
//     verifier and challenge, and an authorization URL that ends in
//     "redirect_uri=" for the client to append its own. The server keeps
//     nothing: the client holds the state and the verifier.
//  2. The client sends the user to the provider and gets back a code and
//     the state. Comparing the state with its own is the client's job
//     (the SDK does it); a mismatch never reaches the server.
//  3. POST auth-with-oauth2 {provider, code, codeVerifier, redirectURL}:
//     the server exchanges the code (with the verifier, which the provider
//     checks against the challenge), learns who signed in, finds or
//     creates the record and finishes the login like every other method.
//
// Every request to a provider goes through the outbound client, which
// refuses internal addresses. Client secrets and tokens are never logged.

// Client-visible messages of OAuth2; they match PocketBase's.
const (
	msgOAuth2Disabled  = "The collection is not configured to allow OAuth2 authentication."
	msgOAuth2Token     = "Failed to fetch OAuth2 token."
	msgOAuth2User      = "Failed to fetch OAuth2 user."
	msgOAuth2Superuser = "Superusers are not allowed to sign up with OAuth2."
)

// oauth2Timeout bounds one sign-in's requests to the provider, and
// authMethodsTimeout the discovery requests of one auth-methods listing.
const (
	oauth2Timeout      = 30 * time.Second
	authMethodsTimeout = 5 * time.Second
)

// idTokenLeeway is the clock skew tolerated on id_token times.
const idTokenLeeway = 2 * time.Minute

// Cache lifetimes of provider documents.
const (
	discoveryTTL    = time.Hour
	discoveryRetry  = 30 * time.Second // after a failed discovery
	jwksTTL         = 10 * time.Minute
	jwksMinInterval = 10 * time.Second // between fetches for an unknown key id
)

// oauth2State is the OAuth2 part of Service: the HTTP client for providers
// and the documents fetched from them. Its zero value is ready: the client
// then refuses every internal address.
type oauth2State struct {
	mu        sync.Mutex
	client    *http.Client
	discovery map[string]cachedDoc[*discoveryDoc]
	jwks      map[string]cachedDoc[map[string]any]
}

type cachedDoc[T any] struct {
	doc     T
	err     error // a failed fetch, remembered for a short while
	fetched time.Time
}

// UseOutbound makes a send every request to OAuth2 providers through c,
// which should come from outbound.New (with an allow list for providers
// inside the operator's network, or for tests). Call it before serving.
func (a *Service) UseOutbound(c *http.Client) {
	a.oauth2.mu.Lock()
	defer a.oauth2.mu.Unlock()
	a.oauth2.client = c
}

func (a *Service) httpClient() *http.Client {
	a.oauth2.mu.Lock()
	defer a.oauth2.mu.Unlock()
	if a.oauth2.client == nil {
		a.oauth2.client = outbound.New(outbound.Options{})
	}
	return a.oauth2.client
}

// OAuth2Provider is one provider as GET auth-methods lists it.
type OAuth2Provider struct {
	Name                string `json:"name"`
	DisplayName         string `json:"displayName"`
	State               string `json:"state"`
	AuthURL             string `json:"authURL"`
	CodeVerifier        string `json:"codeVerifier"`
	CodeChallenge       string `json:"codeChallenge"`
	CodeChallengeMethod string `json:"codeChallengeMethod"`
}

// OAuth2Providers returns the providers of auth collection c for a client
// to start a sign-in with, each with a new state and PKCE pair. A provider
// whose configuration is unusable (or whose discovery document cannot be
// fetched) is left out and logged. The list is empty when OAuth2 is off.
func (a *Service) OAuth2Providers(ctx context.Context, c *underhood.Collection) []OAuth2Provider {
	out := []OAuth2Provider{}
	if c == nil || c.Auth == nil || !c.Auth.OAuth2.Enabled {
		return out
	}
	// A slow discovery must not hold the listing for long.
	ctx, cancel := context.WithTimeout(ctx, authMethodsTimeout)
	defer cancel()
	for _, cfg := range parseProviders(a, c) {
		p, err := a.resolveProvider(ctx, cfg)
		if err != nil {
			a.log.Warn("oauth2 provider left out of auth-methods", "collection", c.Name, "provider", cfg.Name, "err", err)
			continue
		}
		info := OAuth2Provider{Name: p.name, DisplayName: p.displayName, State: underhood.RandomString(30)}
		q := url.Values{
			"client_id":     {p.clientID},
			"response_type": {"code"},
			"state":         {info.State},
		}
		if len(p.scopes) > 0 {
			q.Set("scope", strings.Join(p.scopes, " "))
		}
		for k, v := range p.kind.authParams {
			q[k] = v
		}
		if p.pkce {
			info.CodeVerifier = underhood.RandomString(43)
			info.CodeChallenge = s256(info.CodeVerifier)
			info.CodeChallengeMethod = "S256"
			q.Set("code_challenge", info.CodeChallenge)
			q.Set("code_challenge_method", "S256")
			if p.kind.oidc {
				q.Set("nonce", nonceFor(info.CodeVerifier))
			}
		}
		sep := "?"
		if strings.Contains(p.authURL, "?") {
			sep = "&"
		}
		// The client appends its redirect URL, as with PocketBase.
		info.AuthURL = p.authURL + sep + q.Encode() + "&redirect_uri="
		out = append(out, info)
	}
	return out
}

// parseProviders reads c's provider configurations; an entry that is not
// a provider object is logged and skipped.
func parseProviders(a *Service, c *underhood.Collection) []*providerConfig {
	var out []*providerConfig
	for i, raw := range c.Auth.OAuth2.Providers {
		var cfg providerConfig
		if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Name == "" {
			a.log.Warn("oauth2 provider config unreadable", "collection", c.Name, "index", i)
			continue
		}
		out = append(out, &cfg)
	}
	return out
}

func findProvider(a *Service, c *underhood.Collection, name string) *providerConfig {
	for _, cfg := range parseProviders(a, c) {
		if cfg.Name == name {
			return cfg
		}
	}
	return nil
}

// s256 is the PKCE S256 code challenge of verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// nonceFor derives the OpenID Connect nonce of a sign-in from its PKCE
// verifier, so the server can check the id_token's nonce without keeping
// state: only the holder of the verifier knows it.
func nonceFor(verifier string) string {
	sum := sha256.Sum256([]byte("underhood-oidc-nonce:" + verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// OAuth2Login is the form of POST auth-with-oauth2.
type OAuth2Login struct {
	Collection   string
	Provider     string
	Code         string
	CodeVerifier string
	RedirectURL  string
	// CreateData are the fields of a new record when none exists yet.
	CreateData map[string]any
	// MFAID is the id of an earlier factor ("" when none).
	MFAID string
	// Request is the client's request; a new record is created with it
	// (as @request.context "oauth2"), so the create rule judges the
	// client. Its Auth, when a record of the collection, is the record a
	// new provider identity is linked to.
	Request *record.Request
}

// AuthWithOAuth2 completes an OAuth2 sign-in: it exchanges the code at the
// provider, learns who signed in and returns the record linked to that
// identity, linking or creating one when needed:
//
//   - an identity linked before signs in to its record;
//   - a signed-in caller of the collection gets the identity linked;
//   - a record with the provider's email is linked only when the provider
//     says the email is verified (an unverified record's password is then
//     reset, voiding whatever a squatter set);
//   - otherwise a record is created from CreateData, through the create
//     rule, with the provider's email and a random password.
//
// A provider that refuses the code (wrong or missing PKCE verifier,
// reused code) or cannot be reached is a 400 and changes nothing.
func (a *Service) AuthWithOAuth2(ctx context.Context, in OAuth2Login) (_ *Result, err error) {
	defer underhood.Wrap(&err, "auth.AuthWithOAuth2(%s, %s)", in.Collection, in.Provider)
	c, err := a.authCollection(in.Collection)
	if err != nil {
		return nil, err
	}
	if !c.Auth.OAuth2.Enabled {
		return nil, underhood.Errorf(underhood.EForbidden, msgOAuth2Disabled)
	}
	cfg, err := a.checkOAuth2Form(c, in)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, oauth2Timeout)
	defer cancel()

	p, err := a.resolveProvider(ctx, cfg)
	if err != nil {
		return nil, a.providerError(c, cfg.Name, "resolve provider", msgOAuth2Token, err)
	}
	tok, err := p.exchange(ctx, in.Code, in.CodeVerifier, in.RedirectURL)
	if err != nil {
		return nil, a.providerError(c, p.name, "exchange code", msgOAuth2Token, err)
	}
	user, err := p.kind.user(ctx, p, tok)
	if err == nil && user.ID == "" {
		err = errors.New("the provider returned no user id")
	}
	if err != nil {
		return nil, a.providerError(c, p.name, "fetch user", msgOAuth2User, err)
	}
	if user.Raw == nil {
		user.Raw = map[string]any{}
	}

	rec, isNew, err := a.oauth2Record(ctx, c, p.name, user, in)
	if err != nil {
		return nil, err
	}
	res, err := a.finish(ctx, rec, MethodOAuth2, in.MFAID)
	if err != nil {
		return nil, err
	}
	res.Meta = map[string]any{
		"id":           user.ID,
		"name":         user.Name,
		"username":     user.Username,
		"email":        user.Email,
		"avatarURL":    user.AvatarURL,
		"accessToken":  tok.AccessToken,
		"refreshToken": tok.RefreshToken,
		"expiry":       underhood.FormatTime(tok.Expiry),
		"isNew":        isNew,
		"rawUser":      user.Raw,
	}
	return res, nil
}

// checkOAuth2Form validates the sign-in form and returns the provider's
// configuration.
func (a *Service) checkOAuth2Form(c *underhood.Collection, in OAuth2Login) (*providerConfig, error) {
	fields := map[string]any{}
	required := underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}
	var cfg *providerConfig
	if in.Provider == "" {
		fields["provider"] = required
	} else if cfg = findProvider(a, c, in.Provider); cfg == nil {
		fields["provider"] = underhood.FieldError{
			Code:    "validation_invalid_provider",
			Message: fmt.Sprintf("Provider with name %q is missing or is not enabled.", in.Provider),
			Params:  map[string]any{"name": in.Provider},
		}
	}
	if in.Code == "" {
		fields["code"] = required
	}
	if in.RedirectURL == "" {
		fields["redirectURL"] = required
	}
	if len(fields) > 0 {
		return nil, underhood.Invalid(msgBadForm, fields)
	}
	return cfg, nil
}

// providerError turns a failure to talk to a provider into the client's
// 400 (or, for a configuration the server cannot use, a 500) and logs its
// cause, which never holds a secret or a token.
func (a *Service) providerError(c *underhood.Collection, provider, step, msg string, err error) error {
	if errors.Is(err, errProviderConfig) {
		return underhood.Internal(fmt.Errorf("oauth2 %s %s: %w", c.Name, provider, err))
	}
	level := "info"
	if errors.Is(err, outbound.ErrRefused) {
		level = "warn"
	}
	args := []any{"collection", c.Name, "provider", provider, "step", step, "err", err}
	if level == "warn" {
		a.log.Warn("oauth2 sign-in refused an internal address", args...)
	} else {
		a.log.Info("oauth2 sign-in failed", args...)
	}
	return &underhood.Error{Code: underhood.EInvalid, Message: msg, Err: err}
}

// oauth2Record finds, links or creates the record of user; isNew reports
// a created record.
func (a *Service) oauth2Record(ctx context.Context, c *underhood.Collection, provider string, user *OAuth2User, in OAuth2Login) (rec *underhood.Record, isNew bool, err error) {
	linked, err := a.findExternalAuth(ctx, c, provider, user.ID)
	if err != nil {
		return nil, false, err
	}
	if linked != "" {
		rec, err := a.records.FindRecord(ctx, c, linked)
		if err != nil {
			return nil, false, fmt.Errorf("oauth2: linked record: %w", err)
		}
		return rec, false, nil
	}

	var caller *underhood.Record
	if in.Request != nil && in.Request.Auth != nil && in.Request.Auth.Collection != nil && in.Request.Auth.Collection.ID == c.ID {
		caller = in.Request.Auth
	}
	switch {
	case caller != nil:
		rec, err = a.records.FindRecord(ctx, c, caller.ID())
	case user.Email != "":
		rec, err = a.records.FindByField(ctx, c, "email", user.Email)
		if underhood.ErrorCode(err) == underhood.ENotFound {
			rec, err = nil, nil
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("oauth2: find record: %w", err)
	}

	if rec == nil {
		rec, err = a.createOAuth2Record(ctx, c, user, in)
		if err != nil {
			return nil, false, err
		}
		if err := a.linkExternalAuth(ctx, c, rec, provider, user.ID); err != nil {
			// Nothing of a failed sign-in stays behind.
			if derr := a.records.Delete(ctx, a.records.SystemRequest(), c.ID, rec.ID()); derr != nil {
				a.log.Error("oauth2: remove record of a failed sign-in", "collection", c.Name, "id", rec.ID(), "err", derr)
			}
			return nil, false, err
		}
		return rec, true, nil
	}

	if rec, err = a.secureLinkedRecord(ctx, c, rec, user, caller != nil); err != nil {
		return nil, false, err
	}
	if err := a.linkExternalAuth(ctx, c, rec, provider, user.ID); err != nil {
		return nil, false, err
	}
	return rec, false, nil
}

// secureLinkedRecord prepares an existing record for its first sign-in
// with a provider, as PocketBase does: a record whose email was never
// verified gets a random password (someone may have registered the
// address before its owner), an empty email gets the provider's, and the
// record becomes verified when its email is the one the provider verified.
func (a *Service) secureLinkedRecord(ctx context.Context, c *underhood.Collection, rec *underhood.Record, user *OAuth2User, isCaller bool) (*underhood.Record, error) {
	data := map[string]any{}
	email := rec.String("email")
	if !isCaller && email != "" && !rec.Bool("verified") {
		pw := underhood.RandomString(30)
		data["password"], data["passwordConfirm"] = pw, pw
	}
	if email == "" && user.Email != "" && c.Field("email") != nil {
		data["email"] = user.Email
		email = user.Email
	}
	if !rec.Bool("verified") && c.Field("verified") != nil && (email == "" || strings.EqualFold(email, user.Email)) {
		data["verified"] = true
	}
	if len(data) == 0 {
		return rec, nil
	}
	if _, err := a.records.Update(ctx, a.records.SystemRequest(), c.ID, rec.ID(), data, ""); err != nil {
		return nil, fmt.Errorf("oauth2: update linked record: %w", err)
	}
	return a.records.FindRecord(ctx, c, rec.ID())
}

// createOAuth2Record creates the record of a new user through the create
// rule, with the client's createData, the provider's email, a random
// password unless one was given, and the mapped provider fields.
func (a *Service) createOAuth2Record(ctx context.Context, c *underhood.Collection, user *OAuth2User, in OAuth2Login) (*underhood.Record, error) {
	if c.IsSuperusers() {
		return nil, underhood.Errorf(underhood.EInvalid, msgOAuth2Superuser)
	}
	if f := c.Field("email"); user.Email == "" && f != nil && f.Required {
		// The provider gave no address it verified (or none at all); an
		// unverified one is never used, so there is no account to make.
		return nil, underhood.Invalid(msgFailedAuth, map[string]any{"email": underhood.FieldError{
			Code: "validation_required", Message: "The OAuth2 provider did not confirm a verified email address.",
		}})
	}
	data := make(map[string]any, len(in.CreateData)+6)
	for k, v := range in.CreateData {
		data[k] = v
	}
	data["email"] = user.Email
	if pw, _ := data["password"].(string); pw == "" {
		pw = underhood.RandomString(30)
		data["password"], data["passwordConfirm"] = pw, pw
	}
	mapped := c.Auth.OAuth2.MappedFields
	setMapped := func(key, value string) {
		name := mapped[key]
		if name == "" || value == "" {
			return
		}
		if _, given := data[name]; given {
			return
		}
		f := c.Field(name)
		if f == nil {
			return
		}
		if f.Type == underhood.FieldFile {
			// TODO(files issue): download the avatar through the outbound
			// client into the file field; until files exist it is skipped.
			return
		}
		data[name] = value
	}
	setMapped("id", user.ID)
	setMapped("name", user.Name)
	if name := mapped["username"]; name != "" && user.Username != "" {
		// A username taken by another record is left out rather than
		// failing the sign-up, as PocketBase does.
		if _, err := a.records.FindByField(ctx, c, name, user.Username); underhood.ErrorCode(err) == underhood.ENotFound {
			setMapped("username", user.Username)
		}
	}
	setMapped("avatarURL", user.AvatarURL)

	req := &record.Request{Context: MethodOAuth2, Method: http.MethodPost}
	if in.Request != nil {
		r := *in.Request
		req = &r
		req.Context, req.Method = MethodOAuth2, http.MethodPost
	}
	req.Body = data
	created, err := a.records.Create(ctx, req, c.ID, data, "")
	if err != nil {
		if underhood.ErrorCode(err) == underhood.EInternal || underhood.ErrorCode(err) == "" {
			return nil, fmt.Errorf("oauth2: create record: %w", err)
		}
		return nil, err
	}
	rec, err := a.records.FindRecord(ctx, c, created.ID())
	if err != nil {
		return nil, fmt.Errorf("oauth2: load created record: %w", err)
	}
	if c.Field("verified") != nil && !rec.Bool("verified") && strings.EqualFold(rec.String("email"), user.Email) {
		if _, err := a.records.Update(ctx, a.records.SystemRequest(), c.ID, rec.ID(), map[string]any{"verified": true}, ""); err != nil {
			if derr := a.records.Delete(ctx, a.records.SystemRequest(), c.ID, rec.ID()); derr != nil {
				a.log.Error("oauth2: remove record of a failed sign-in", "collection", c.Name, "id", rec.ID(), "err", derr)
			}
			return nil, fmt.Errorf("oauth2: verify created record: %w", err)
		}
		rec.Data["verified"] = true
	}
	return rec, nil
}

// findExternalAuth returns the id of the record of c linked to the
// provider identity, or "".
func (a *Service) findExternalAuth(ctx context.Context, c *underhood.Collection, provider, providerID string) (string, error) {
	linked := sqlstore.And(sqlstore.Eq("collectionRef", c.ID), sqlstore.Eq("provider", provider), sqlstore.Eq("providerId", providerID))
	list, err := a.records.FindWhere(ctx, record.ExternalAuthsName, linked, nil, 1)
	if err != nil {
		return "", fmt.Errorf("oauth2: find external auth: %w", err)
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[0].String("recordRef"), nil
}

// linkExternalAuth links the provider identity to rec. Two sign-ins of one
// new identity may race; the loser finds the winner's link.
func (a *Service) linkExternalAuth(ctx context.Context, c *underhood.Collection, rec *underhood.Record, provider, providerID string) error {
	_, err := a.records.Create(ctx, a.records.SystemRequest(), record.ExternalAuthsName, map[string]any{
		"collectionRef": c.ID, "recordRef": rec.ID(), "provider": provider, "providerId": providerID,
	}, "")
	if err == nil {
		return nil
	}
	if linked, ferr := a.findExternalAuth(ctx, c, provider, providerID); ferr == nil && linked == rec.ID() {
		return nil
	}
	if underhood.ErrorCode(err) == underhood.EInvalid {
		// The record already has another identity of this provider.
		return &underhood.Error{Code: underhood.EInvalid, Message: msgFailedAuth, Err: err}
	}
	return fmt.Errorf("oauth2: link external auth: %w", err)
}

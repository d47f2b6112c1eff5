// Package auth owns authentication: who a request comes from (record tokens,
// signed per record) and how a record proves who it is (password, one-time
// passwords, OAuth2, TOTP, and MFA combining two of them). It decides
// nothing about what a caller may do with records; record.Service does that
// with the identity auth resolves, and evaluates the auth rules auth asks
// about (RuleHolds). Its state lives in system collections that it reads
// and writes through record.Service, never the store.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/ratelimit"
	"github.com/underhood/underhood/record"
)

// Service issues and verifies record tokens and authenticates records.
type Service struct {
	records *record.Service
	log     *slog.Logger
	now     func() time.Time

	// dummyHashes (bcrypt cost → hash of a random password) are compared
	// against when no record matches an identity, so that a login for an
	// unknown account costs as much as one with a wrong password and
	// response times do not reveal which accounts exist.
	dummyHashes sync.Map

	// limiter counts attempts per identity (limits.go).
	limiter ratelimit.Store
	// checks are the password checks being evaluated (loginlimits.go).
	checks checksInFlight

	// mail sends the emails of the auth flows (email.go).
	mail mailState

	// install is the one-time token of the first superuser (install.go).
	install installState

	// oauth2 holds the HTTP client for OAuth2 providers and the documents
	// fetched from them (oauth2.go).
	oauth2 oauth2State
}

// New returns the auth service of records.
func New(records *record.Service, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	a := &Service{records: records, log: log, now: time.Now}
	a.limiter = a.newLimiter()
	return a
}

// Client-visible messages; they match PocketBase's.
const (
	msgInvalidToken     = "The request requires valid record authorization token."
	msgFailedAuth       = "Failed to authenticate."
	msgNotAuthColl      = "Missing or invalid auth collection context."
	msgPasswordDisabled = "The collection is not configured to allow password authentication."
	msgAuthRule         = "The request doesn't satisfy the collection requirements to authenticate."
	msgNotAllowed       = "The authorized record is not allowed to perform this action."
	msgBadForm          = "An error occurred while loading the submitted data."
)

// maxCredentialLength bounds identity and password, as PocketBase does.
const maxCredentialLength = 255

func errInvalidToken(cause error) error {
	return &underhood.Error{Code: underhood.EUnauthorized, Message: msgInvalidToken, Err: cause}
}

// Identify returns the record token was issued to. An empty token is a
// guest: (nil, nil). A token that is malformed, expired, signed with a key
// that is no longer the record's (revoked) or issued to a record that no
// longer exists yields an EUnauthorized error. A leading "Bearer " is
// accepted. Other errors (a failing database) are returned wrapped.
func (a *Service) Identify(ctx context.Context, token string) (_ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "auth.Identify")
	token = strings.TrimSpace(token)
	if len(token) >= 7 && strings.EqualFold(token[:7], "Bearer ") {
		token = token[7:]
	}
	return a.identifyKind(ctx, token, KindAuth)
}

// identifyKind returns the record that token, a token of kind, was issued
// to; an empty token is a guest: (nil, nil). A malformed, expired or
// revoked token, one of another kind, or a missing record is
// EUnauthorized.
func (a *Service) identifyKind(ctx context.Context, token, kind string) (*underhood.Record, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, nil
	}
	cl, err := peekClaims(token)
	if err != nil {
		return nil, errInvalidToken(err)
	}
	if cl.Type != kind {
		return nil, errInvalidToken(fmt.Errorf("token of type %q is not a %s token", cl.Type, kind))
	}
	c, err := a.records.Collection(cl.CollectionID)
	if err != nil || !c.IsAuth() || c.ID != cl.CollectionID {
		return nil, errInvalidToken(fmt.Errorf("token names unknown auth collection %q", cl.CollectionID))
	}
	rec, err := a.records.FindRecord(ctx, c, cl.RecordID)
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return nil, errInvalidToken(fmt.Errorf("token names missing record %q", cl.RecordID))
	}
	if err != nil {
		return nil, fmt.Errorf("identify %s token: %w", kind, err)
	}
	if err := verifyToken(token, rec, kind, a.now()); err != nil {
		return nil, errInvalidToken(err)
	}
	return rec, nil
}

// NewToken returns a signed token of kind (KindAuth or KindFile) for rec,
// which must be a full record of an auth collection (its tokenKey is part of
// the signing key). Its lifetime is the collection's setting for that kind.
func (a *Service) NewToken(rec *underhood.Record, kind string) (_ string, err error) {
	defer underhood.Wrap(&err, "auth.NewToken(%s)", kind)
	return signToken(rec, kind, a.now())
}

// AuthWithPassword authenticates a record of the auth collection coll by
// identity and password. identityField names the field identity is matched
// against; "" tries each of the collection's identity fields (email first
// when identity looks like one). Any mismatch is the same EInvalid "Failed
// to authenticate." with no detail, whether the account exists or not.
// mfaID continues a multi-factor login begun by another method ("" for
// none). The result is a new auth token with the record as its owner sees
// it, or, when a second factor is required, only an MFA id.
func (a *Service) AuthWithPassword(ctx context.Context, coll, identity, password, identityField, mfaID string) (_ *Result, err error) {
	defer underhood.Wrap(&err, "auth.AuthWithPassword(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return nil, err
	}
	if !c.Auth.PasswordAuth.Enabled {
		return nil, underhood.Errorf(underhood.EForbidden, msgPasswordDisabled)
	}
	if err := checkCredentials(c, identity, password, identityField); err != nil {
		return nil, err
	}
	// Only failures count, each against the account from the client's
	// address, against the address and against the account: an attacker's
	// failures never hold up the owner (loginlimits.go).
	check, err := a.admitPasswordCheck(ctx, attemptKey(c, identity), ClientIPFrom(ctx))
	if err != nil {
		return nil, err
	}
	defer check.finished(a)
	rec, err := a.findByIdentity(ctx, c, identity, identityField)
	if err != nil {
		// Not a failed guess: it must not count as one.
		check.refundAll(ctx, a)
		return nil, err
	}
	if rec == nil {
		a.equalizeTiming(c, password)
		return nil, underhood.Errorf(underhood.EInvalid, msgFailedAuth)
	}
	if !record.CheckPassword(rec.String("password"), password) {
		return nil, underhood.Errorf(underhood.EInvalid, msgFailedAuth)
	}
	check.succeeded(ctx, a)
	return a.finish(ctx, rec, MethodPassword, mfaID)
}

// Refresh returns a new auth token for caller, who must be authenticated
// as a record of coll with token (an Authorization header's value): 401
// for a guest, 403 for a record of another collection or a token issued
// as not refreshable (impersonation). The record is reloaded, so the
// response reflects its current state.
func (a *Service) Refresh(ctx context.Context, caller *underhood.Record, token, coll string) (_ string, _ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "auth.Refresh(%s)", coll)
	if caller == nil {
		return "", nil, underhood.Errorf(underhood.EUnauthorized, msgInvalidToken)
	}
	if err := checkRefreshable(token); err != nil {
		return "", nil, err
	}
	c, err := a.records.Collection(coll)
	if err != nil || caller.Collection == nil || c.ID != caller.Collection.ID {
		return "", nil, underhood.Errorf(underhood.EForbidden, msgNotAllowed)
	}
	if !c.IsAuth() || c.Auth == nil {
		return "", nil, underhood.Errorf(underhood.ENotFound, msgNotAuthColl)
	}
	rec, err := a.records.FindRecord(ctx, c, caller.ID())
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return "", nil, underhood.Errorf(underhood.EUnauthorized, msgInvalidToken)
	}
	if err != nil {
		return "", nil, fmt.Errorf("refresh: %w", err)
	}
	return a.issue(ctx, rec, "default")
}

// issue checks the collection's auth rule for rec and returns a new auth
// token with the record as its owner sees it.
func (a *Service) issue(ctx context.Context, rec *underhood.Record, reqContext string) (string, *underhood.Record, error) {
	if err := a.checkAuthRule(ctx, rec, reqContext); err != nil {
		return "", nil, err
	}
	token, err := a.NewToken(rec, KindAuth)
	if err != nil {
		return "", nil, underhood.Internal(err)
	}
	return token, a.records.Present(&record.Request{Context: reqContext, Method: "POST", Auth: rec}, rec), nil
}

func (a *Service) authCollection(coll string) (*underhood.Collection, error) {
	c, err := a.records.Collection(coll)
	if err != nil || !c.IsAuth() || c.Auth == nil {
		return nil, underhood.Errorf(underhood.ENotFound, msgNotAuthColl)
	}
	return c, nil
}

// checkCredentials validates the shape of a login form; it reveals nothing
// about accounts.
func checkCredentials(c *underhood.Collection, identity, password, identityField string) error {
	fields := map[string]any{}
	for name, v := range map[string]string{"identity": identity, "password": password} {
		switch {
		case v == "":
			fields[name] = underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}
		case len(v) > maxCredentialLength:
			fields[name] = underhood.FieldError{
				Code: "validation_length_out_of_range", Message: fmt.Sprintf("The length must be between 1 and %d.", maxCredentialLength),
				Params: map[string]any{"min": 1, "max": maxCredentialLength},
			}
		}
	}
	if identityField != "" && !slices.Contains(c.Auth.PasswordAuth.IdentityFields, identityField) {
		fields["identityField"] = underhood.FieldError{Code: "validation_in_invalid", Message: "Must be a valid value."}
	}
	if len(fields) > 0 {
		return underhood.Invalid(msgBadForm, fields)
	}
	return nil
}

// findByIdentity returns the record whose identity field equals identity,
// or nil when there is none.
func (a *Service) findByIdentity(ctx context.Context, c *underhood.Collection, identity, identityField string) (*underhood.Record, error) {
	var try []string
	if identityField != "" {
		try = []string{identityField}
	} else {
		isEmail := looksLikeEmail(identity)
		if isEmail && slices.Contains(c.Auth.PasswordAuth.IdentityFields, "email") {
			try = append(try, "email")
		}
		for _, f := range c.Auth.PasswordAuth.IdentityFields {
			if f != "email" {
				try = append(try, f)
			}
		}
	}
	for _, name := range try {
		if c.Field(name) == nil {
			continue
		}
		rec, err := a.records.FindByField(ctx, c, name, identity)
		switch underhood.ErrorCode(err) {
		case "":
			return rec, nil
		case underhood.ENotFound:
			continue
		default:
			return nil, fmt.Errorf("find record by %s: %w", name, err)
		}
	}
	return nil, nil
}

func looksLikeEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s
}

// equalizeTiming spends about as long as checking password against a
// hash of c's password field.
func (a *Service) equalizeTiming(c *underhood.Collection, password string) {
	cost := record.DefaultPasswordCost
	if f := c.Field("password"); f != nil && f.Cost > 0 {
		cost = f.Cost
	}
	h, ok := a.dummyHashes.Load(cost)
	if !ok {
		b, err := bcrypt.GenerateFromPassword([]byte(underhood.RandomString(20)), cost)
		if err != nil {
			return
		}
		h, _ = a.dummyHashes.LoadOrStore(cost, string(b))
	}
	record.CheckPassword(h.(string), password)
}

// checkAuthRule enforces the collection's authRule for rec, as PocketBase
// does before issuing a token: null lets no one but superusers in, "" lets
// everyone in, an expression must hold for rec with rec as @request.auth.
// A rule that fails to compile denies.
func (a *Service) checkAuthRule(ctx context.Context, rec *underhood.Record, reqContext string) error {
	c := rec.Collection
	if rec.IsSuperuser() {
		return nil
	}
	rule := c.Auth.AuthRule
	if rule == nil {
		return underhood.Errorf(underhood.EForbidden, msgAuthRule)
	}
	if strings.TrimSpace(*rule) == "" {
		return nil
	}
	ok, err := a.records.RuleHolds(ctx, rec, *rule, reqContext)
	if err != nil {
		var ue *underhood.Error
		if errors.As(err, &ue) && ue.Code != underhood.EInternal {
			a.log.Error("auth rule does not compile; denying", "collection", c.Name, "err", err)
			return underhood.Errorf(underhood.EForbidden, msgAuthRule)
		}
		return fmt.Errorf("check auth rule: %w", err)
	}
	if !ok {
		return underhood.Errorf(underhood.EForbidden, msgAuthRule)
	}
	return nil
}

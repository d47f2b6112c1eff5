package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// maxImpersonateDuration bounds the lifetime a superuser may ask for.
const maxImpersonateDuration = 365 * 24 * time.Hour

const msgNotRefreshable = "The current auth token is not refreshable."

// Impersonate returns an auth token for record id of the auth collection
// coll, for a superuser only, with the record as the superuser sees it.
// The token lasts duration (0: the collection's auth token lifetime) and
// cannot be refreshed; no auth rule or second factor applies, as in
// PocketBase. The token works until it expires or the record's tokens are
// revoked.
func (a *Service) Impersonate(ctx context.Context, caller *underhood.Record, coll, id string, duration time.Duration) (_ string, _ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "auth.Impersonate(%s, %s)", coll, id)
	if caller == nil {
		return "", nil, underhood.Errorf(underhood.EUnauthorized, msgInvalidToken)
	}
	if !caller.IsSuperuser() {
		return "", nil, underhood.Errorf(underhood.EForbidden, "Only superusers can perform this action.")
	}
	c, err := a.authCollection(coll)
	if err != nil {
		return "", nil, err
	}
	if duration < 0 || duration > maxImpersonateDuration {
		return "", nil, underhood.Invalid(msgBadForm, map[string]any{"duration": underhood.FieldError{
			Code:    "validation_out_of_range",
			Message: fmt.Sprintf("Must be between 0 and %d.", int(maxImpersonateDuration.Seconds())),
		}})
	}
	rec, err := a.records.FindRecord(ctx, c, id)
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return "", nil, underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
	}
	if err != nil {
		return "", nil, fmt.Errorf("impersonate: %w", err)
	}
	if duration == 0 {
		if duration, _, err = tokenConfig(c, KindAuth); err != nil {
			return "", nil, underhood.Internal(err)
		}
	}
	token, err := signStaticToken(rec, a.now().Add(duration))
	if err != nil {
		return "", nil, underhood.Internal(err)
	}
	a.log.InfoContext(ctx, "impersonation token issued", "collection", c.Name, "record", rec.ID(),
		"by", caller.ID(), "duration", duration)
	return token, a.records.Present(&record.Request{Context: "default", Method: "POST", Auth: caller}, rec), nil
}

// signStaticToken returns an auth token for rec that expires at exp and is
// not refreshable.
func signStaticToken(rec *underhood.Record, exp time.Time) (string, error) {
	_, secret, err := tokenConfig(rec.Collection, KindAuth)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	key, err := signingKey(rec, secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	cl := claims{
		RecordID:         rec.ID(),
		Type:             KindAuth,
		CollectionID:     rec.Collection.ID,
		Refreshable:      false,
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(exp)},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// checkRefreshable refuses, with 403, to refresh token when it was issued
// as not refreshable (an impersonation token), as PocketBase does. It is
// for a token the caller was already identified with.
func checkRefreshable(token string) error {
	cl, err := peekClaims(bearer(token))
	if err != nil {
		return errInvalidToken(err)
	}
	if !cl.Refreshable {
		return underhood.Errorf(underhood.EForbidden, msgNotRefreshable)
	}
	return nil
}

// bearer strips an optional "Bearer " from an Authorization header value.
func bearer(token string) string {
	token = strings.TrimSpace(token)
	if len(token) >= 7 && strings.EqualFold(token[:7], "Bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	return token
}

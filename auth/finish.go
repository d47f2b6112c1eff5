package auth

import (
	"context"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// Authentication methods, as multi-factor authentication counts them; each
// is also the @request.context an authRule sees for it.
const (
	MethodPassword = "password"
	MethodOTP      = "otp"
	MethodOAuth2   = "oauth2"
	MethodTOTP     = "totp"
)

// Result is the outcome of an authentication method. Either Token is set,
// with Record as its owner sees it, or, when the collection requires
// multi-factor authentication and this was the first factor, only MFAID:
// the client completes the login by passing it to a second, different
// method. Meta carries what a method adds to the response (OAuth2's
// provider data).
type Result struct {
	Token  string
	Record *underhood.Record
	MFAID  string
	Meta   map[string]any
}

// finish completes the authentication of rec by method. mfaID is the id
// the client received from an earlier factor ("" when none). Every method
// ends here, so the auth rule and multi-factor authentication apply to all
// of them alike: the rule first (a record it refuses learns nothing about
// MFA), then the MFA gate (mfa.go), which either asks for another factor
// or lets the token be issued.
func (a *Service) finish(ctx context.Context, rec *underhood.Record, method, mfaID string) (*Result, error) {
	if err := a.checkAuthRule(ctx, rec, method); err != nil {
		return nil, err
	}
	pending, err := a.checkMFA(ctx, rec, method, mfaID)
	if err != nil {
		return nil, err
	}
	if pending != "" {
		return &Result{MFAID: pending}, nil
	}
	token, err := a.NewToken(rec, KindAuth)
	if err != nil {
		return nil, underhood.Internal(err)
	}
	presented := a.records.Present(&record.Request{Context: method, Method: "POST", Auth: rec}, rec)
	return &Result{Token: token, Record: presented}, nil
}

package auth

import (
	"context"

	"github.com/underhood/underhood"
)

// Methods are the ways a record of an auth collection may sign in, as GET
// auth-methods lists them. Its JSON is PocketBase's; the fields are in the
// order of their names.
type Methods struct {
	MFA      TimedMethod    `json:"mfa"`
	OAuth2   OAuth2Method   `json:"oauth2"`
	OTP      TimedMethod    `json:"otp"`
	Password PasswordMethod `json:"password"`
}

// TimedMethod is a method whose proof lasts Duration seconds: a second
// factor's window, or a one-time password's life.
type TimedMethod struct {
	Duration int  `json:"duration"`
	Enabled  bool `json:"enabled"`
}

// OAuth2Method lists the providers a client may start a sign-in with.
type OAuth2Method struct {
	Enabled   bool             `json:"enabled"`
	Providers []OAuth2Provider `json:"providers"`
}

// PasswordMethod names the fields a password login may identify by.
type PasswordMethod struct {
	Enabled        bool     `json:"enabled"`
	IdentityFields []string `json:"identityFields"`
}

// Methods returns the sign-in methods of the auth collection coll, to
// anyone: they are what a sign-in page shows. Each OAuth2 provider comes
// with a new state and PKCE pair (OAuth2Providers). A missing collection
// or one that is not an auth collection is 404.
func (a *Service) Methods(ctx context.Context, coll string) (_ *Methods, err error) {
	defer underhood.Wrap(&err, "auth.Methods(%s)", coll)
	c, err := a.records.Collection(coll)
	if err != nil {
		return nil, err
	}
	if !c.IsAuth() || c.Auth == nil {
		return nil, underhood.Errorf(underhood.ENotFound, msgNotAuthColl)
	}
	fields := c.Auth.PasswordAuth.IdentityFields
	if fields == nil {
		fields = []string{}
	}
	return &Methods{
		MFA:      TimedMethod{Duration: c.Auth.MFA.Duration, Enabled: c.Auth.MFA.Enabled},
		OAuth2:   OAuth2Method{Enabled: c.Auth.OAuth2.Enabled, Providers: a.OAuth2Providers(ctx, c)},
		OTP:      TimedMethod{Duration: c.Auth.OTP.Duration, Enabled: c.Auth.OTP.Enabled},
		Password: PasswordMethod{Enabled: c.Auth.PasswordAuth.Enabled, IdentityFields: fields},
	}, nil
}

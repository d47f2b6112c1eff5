package auth

import (
	"context"

	"github.com/underhood/underhood"
)

// IdentifyFile returns the record a file token (KindFile, from NewToken)
// was issued to: the identity a protected file is checked for. An empty
// token is a guest: (nil, nil). A malformed, expired or revoked token, an
// auth token in its place, or a missing record is EUnauthorized.
func (a *Service) IdentifyFile(ctx context.Context, token string) (_ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "auth.IdentifyFile")
	return a.identifyKind(ctx, token, KindFile)
}

// NewFileToken returns a short-lived file token (KindFile) for caller, the
// identity its protected files are checked for; a guest has none (401).
func (a *Service) NewFileToken(caller *underhood.Record) (_ string, err error) {
	defer underhood.Wrap(&err, "auth.NewFileToken")
	if caller == nil {
		return "", underhood.Errorf(underhood.EUnauthorized, msgInvalidToken)
	}
	token, err := a.NewToken(caller, KindFile)
	if err != nil {
		return "", underhood.Internal(err)
	}
	return token, nil
}

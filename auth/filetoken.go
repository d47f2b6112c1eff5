package auth

import (
	"context"

	"github.com/underhood/underhood"
)

// IdentifyFile returns the record a file token (KindFile, from NewToken)
// was issued to: the identity a protected file is checked for. An empty
// token is a guest: (nil, nil). A malformed, expired or revoked token, an
// auth token in its place, or a missing record is EUnauthorized.
func (a *Service) IdentifyFile(ctx context.Context, token string) (*underhood.Record, error) {
	return a.identifyKind(ctx, token, KindFile)
}

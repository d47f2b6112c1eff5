package auth

import (
	"context"
	"fmt"
	"strings"

	"github.com/underhood/underhood"
)

// IdentifyFile returns the record a file token (KindFile, from NewToken)
// was issued to: the identity a protected file is checked for. An empty
// token is a guest: (nil, nil). A malformed, expired or revoked token, an
// auth token in its place, or a missing record is EUnauthorized.
func (a *Service) IdentifyFile(ctx context.Context, token string) (*underhood.Record, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, nil
	}
	cl, err := peekClaims(token)
	if err != nil {
		return nil, errInvalidToken(err)
	}
	if cl.Type != KindFile {
		return nil, errInvalidToken(fmt.Errorf("token of type %q is not a file token", cl.Type))
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
		return nil, fmt.Errorf("identify file token: %w", err)
	}
	if err := verifyToken(token, rec, KindFile, a.now()); err != nil {
		return nil, errInvalidToken(err)
	}
	return rec, nil
}

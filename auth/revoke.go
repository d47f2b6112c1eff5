package auth

import (
	"context"

	"github.com/underhood/underhood"
)

// Revoke invalidates every token of a record of the auth collection coll
// issued so far ("sign out everywhere"): the record gets a new tokenKey,
// which its tokens are signed with. recordID "" is the caller itself, who
// must then belong to coll; naming another record takes a superuser. It
// answers 401 to a guest, 403 to a record revoking another's tokens, 404
// for an unknown collection or record.
func (a *Service) Revoke(ctx context.Context, caller *underhood.Record, coll, recordID string) (err error) {
	defer underhood.Wrap(&err, "auth.Revoke(%s)", coll)
	if caller == nil {
		return underhood.Errorf(underhood.EUnauthorized, msgInvalidToken)
	}
	c, err := a.authCollection(coll)
	if err != nil {
		return err
	}
	self := caller.Collection != nil && caller.Collection.ID == c.ID
	if !caller.IsSuperuser() && (!self || (recordID != "" && recordID != caller.ID())) {
		return underhood.Errorf(underhood.EForbidden, msgNotAllowed)
	}
	if recordID == "" {
		if !self {
			return underhood.Invalid(msgBadForm, map[string]any{
				"recordId": underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."},
			})
		}
		recordID = caller.ID()
	}
	if err := a.records.RotateTokenKey(ctx, c.ID, recordID); err != nil {
		if underhood.ErrorCode(err) == underhood.ENotFound {
			return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
		}
		return err
	}
	a.log.InfoContext(ctx, "auth tokens revoked", "collection", c.Name, "record", recordID,
		"by_collection", caller.Collection.Name, "by", caller.ID())
	return nil
}

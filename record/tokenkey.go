package record

import (
	"context"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// RotateTokenKey gives record id of the auth collection coll a new random
// tokenKey, which every token of the record is signed with: every token
// issued before stops working. No rule applies; the caller (auth) decides
// who may revoke whose tokens.
func (s *Service) RotateTokenKey(ctx context.Context, coll, id string) error {
	c, err := s.Collection(coll)
	if err != nil {
		return err
	}
	if !c.IsAuth() {
		return underhood.Errorf(underhood.ENotFound, "Missing or invalid auth collection context.")
	}
	return s.store.Write(ctx, func(q sqlstore.Querier) error {
		old, err := s.findVisible(ctx, q, s.SystemRequest(), c, nil, id)
		if err != nil {
			return err
		}
		r := old.Clone()
		r.Data["tokenKey"] = Autogenerate(defaultTokenKeyAutogenerate)
		return s.store.UpdateRecord(ctx, q, r)
	})
}

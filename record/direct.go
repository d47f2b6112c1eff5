package record

import (
	"context"
	"fmt"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
)

// This file holds the reads and writes the system makes on behalf of no
// client (the auth flows' own rows: one-time passwords, MFA sessions,
// TOTP secrets, external identities): no rule applies, no event is sent,
// and the caller, not a client, decides what they select. They are the
// only way other packages reach the tables; none of them gets the store.

// FindWhere returns the records of the collection coll that where selects,
// in order (none: insertion order), at most limit of them (0: all), with no
// rule applied.
func (s *Service) FindWhere(ctx context.Context, coll string, where sqlstore.Cond, order []sqlstore.Order, limit int) ([]*underhood.Record, error) {
	c, err := s.Collection(coll)
	if err != nil {
		return nil, err
	}
	var list []*underhood.Record
	err = s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		list, err = s.store.Find(ctx, q, sqlstore.Query{Collection: c, Where: where, Order: order, Limit: limit})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record.FindWhere(%s): %w", coll, err)
	}
	return list, nil
}

// CountWhere returns how many records of the collection coll where
// selects, as the database holds them now (no cached answer), with no
// rule applied.
func (s *Service) CountWhere(ctx context.Context, coll string, where sqlstore.Cond) (int, error) {
	c, err := s.Collection(coll)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		n, err = s.store.Count(ctx, q, sqlstore.Query{Collection: c, Where: where})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("record.CountWhere(%s): %w", coll, err)
	}
	return n, nil
}

// UpdateWhere sets the fields in set on the records of the collection coll
// that where selects and returns how many changed, with no rule,
// validation or event: for the system's own rows. A condition on the
// current value of a field makes it a compare-and-set, which is how a
// one-time code is spent once when two requests present it together.
func (s *Service) UpdateWhere(ctx context.Context, coll string, set map[string]any, where sqlstore.Cond) (int64, error) {
	c, err := s.Collection(coll)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		var err error
		n, err = s.store.UpdateWhere(ctx, q, c, set, where)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("record.UpdateWhere(%s): %w", coll, err)
	}
	return n, nil
}

// RuleHolds reports whether rule holds for the stored record rec with rec
// as @request.auth and reqContext as @request.context: the rules about
// the record being authenticated (a collection's authRule, its MFA rule).
// A rule that does not parse or compile is an error with the code
// EInvalid, so the caller decides whether that denies or demands more.
func (s *Service) RuleHolds(ctx context.Context, rec *underhood.Record, rule, reqContext string) (bool, error) {
	if strings.TrimSpace(rule) == "" {
		return true, nil
	}
	e, err := s.parseRule(rule)
	if err != nil {
		return false, err
	}
	o := s.filterOptions(rec.Collection, &Request{Context: reqContext, Method: "POST", Auth: rec})
	o.Superuser = false
	x, err := filter.Compile(e, o)
	if err != nil {
		return false, err
	}
	var n int
	err = s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		n, err = s.store.Count(ctx, q, sqlstore.Query{Collection: rec.Collection,
			Where: sqlstore.And(sqlstore.Eq("id", rec.ID()), sqlstore.Filter(x))})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record.RuleHolds(%s): %w", rec.Collection.Name, err)
	}
	return n > 0, nil
}

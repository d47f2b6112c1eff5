package record

import (
	"context"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
)

// This file answers rule questions about records that are already in
// memory, such as the record of a change event, with the filter language's
// Match: the same rules as the SQL path, for realtime and other listeners.

// maxLoaded bounds how many records one in-memory check may read through
// @collection joins.
const maxLoaded = 10000

// CanSee reports whether the caller of req may see r under rule (a
// collection's list or view rule) and, when clientFilter is not empty,
// whether r also matches that client filter. Superusers pass every rule
// but not the client filter. A rule that fails to compile denies.
func (s *Service) CanSee(ctx context.Context, req *Request, r *underhood.Record, rule underhood.Rule, clientFilter string) (bool, error) {
	c := r.Collection
	if !isSuperuser(req) {
		if rule == nil {
			return false, nil
		}
		if strings.TrimSpace(*rule) != "" {
			e, err := s.parseRule(*rule)
			if err != nil {
				s.log.Error("access rule does not parse; denying", "collection", c.Name, "err", err)
				return false, nil
			}
			ok, err := filter.Match(ctx, e, s.filterOptions(c, req), r, s.loader())
			if err != nil {
				if underhood.ErrorCode(err) == underhood.EInternal {
					return false, err
				}
				s.log.Error("access rule does not compile; denying", "collection", c.Name, "err", err)
				return false, nil
			}
			if !ok {
				return false, nil
			}
		}
	}
	if strings.TrimSpace(clientFilter) == "" {
		return true, nil
	}
	e, err := s.parseRule(clientFilter)
	if err != nil {
		return false, filterError(err)
	}
	o := s.filterOptions(c, req)
	o.Client = true
	ok, err := filter.Match(ctx, e, o, r, s.loader())
	if err != nil && underhood.ErrorCode(err) != underhood.EInternal {
		return false, filterError(err)
	}
	return ok, err
}

// CheckFilter reports whether src is a filter a client may use on
// collection c, without running it.
func (s *Service) CheckFilter(req *Request, c *underhood.Collection, src string) error {
	var w where
	return s.addClientFilter(&w, c, src, req)
}

// ExpandRecord returns a copy of r, presented for the caller, with the
// relations in expand loaded under their collections' view rules, for a
// realtime message. An expand past the realtime limit is refused with an
// error that ExpandTooLarge recognises, before it is built.
func (s *Service) ExpandRecord(ctx context.Context, req *Request, r *underhood.Record, expand string) (*underhood.Record, error) {
	n := r.Clone()
	if strings.TrimSpace(expand) != "" {
		if err := checkExpand(expand); err != nil {
			return nil, err
		}
		err := s.store.Read(ctx, func(q sqlstore.Querier) error {
			return s.expandWithin(ctx, q, req, r.Collection, []*underhood.Record{n}, expand, s.realtimeBudget())
		})
		if err != nil {
			return nil, err
		}
	}
	s.presentInPlace(req, n)
	return n, nil
}

// loader reads related records for Match.
func (s *Service) loader() filter.Loader { return storeLoader{s} }

type storeLoader struct{ s *Service }

func (l storeLoader) Get(ctx context.Context, c *underhood.Collection, ids []string) ([]*underhood.Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []*underhood.Record
	err := l.s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		out, err = l.s.store.Find(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.In("id", ids)})
		return err
	})
	return out, err
}

func (l storeLoader) Via(ctx context.Context, c *underhood.Collection, f *underhood.Field, id string) ([]*underhood.Record, error) {
	var out []*underhood.Record
	err := l.s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		out, err = l.s.referencing(ctx, q, c, f, id)
		return err
	})
	return out, err
}

func (l storeLoader) All(ctx context.Context, c *underhood.Collection) ([]*underhood.Record, error) {
	var out []*underhood.Record
	err := l.s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		out, err = l.s.store.Find(ctx, q, sqlstore.Query{Collection: c, Limit: maxLoaded})
		return err
	})
	return out, err
}

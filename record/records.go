package record

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// ListParams are the query parameters of a list request.
type ListParams struct {
	Page      int    // 1-based; 0 means 1
	PerPage   int    // 0 means 30; capped at MaxPerPage
	Sort      string // "-created,title", "@random"
	Filter    string // the filter language
	Expand    string // "author,comments_via_post.author"
	SkipTotal bool   // do not count; totals are -1
}

// ListResult is one page of records.
type ListResult struct {
	Page       int
	PerPage    int
	TotalItems int
	TotalPages int
	Items      []*underhood.Record
}

// Page size limits of List.
const (
	DefaultPerPage = 30
	MaxPerPage     = 1000
)

// List returns the page of c's records that the caller may see and that
// match the filter. Records the list rule hides are simply absent.
func (s *Service) List(ctx context.Context, req *Request, coll string, p ListParams) (_ *ListResult, err error) {
	defer underhood.Wrap(&err, "record.List")
	c, err := s.Collection(coll)
	if err != nil {
		return nil, err
	}
	if p.Page < 1 {
		p.Page = 1
	}
	if p.PerPage <= 0 {
		p.PerPage = DefaultPerPage
	}
	if p.PerPage > MaxPerPage {
		p.PerPage = MaxPerPage
	}
	var w where
	if err := s.addRule(&w, c, c.ListRule, req); err != nil {
		return nil, err
	}
	if err := s.addClientFilter(&w, c, p.Filter, req); err != nil {
		return nil, err
	}
	order, err := s.clientSort(c, p.Sort, req)
	if err != nil {
		return nil, err
	}
	if err := checkExpand(p.Expand); err != nil {
		return nil, err
	}
	res := &ListResult{Page: p.Page, PerPage: p.PerPage, TotalItems: -1, TotalPages: -1}
	// The version is read before the read transaction starts, so a result
	// cached under it can only be newer than the version, never older.
	version := s.store.Version()
	page := sqlstore.Query{Collection: c, Where: w.cond(), Order: order, Limit: p.PerPage, Offset: (p.Page - 1) * p.PerPage}
	pageKey, cacheable := s.cacheKey("list", page, callerKey(req))
	cacheable = cacheable && p.Expand == "" && !strings.Contains(p.Sort, "@random")
	if cacheable {
		if e, ok := s.cache.get(pageKey, version); ok {
			res.Items = cloneRecords(e.recs)
			if !p.SkipTotal {
				if err := s.store.ClientRead(ctx, func(q sqlstore.Querier) error {
					n, err := s.count(ctx, q, version, c, w.cond())
					res.TotalItems, res.TotalPages = n, (n+p.PerPage-1)/p.PerPage
					return err
				}); err != nil {
					return nil, err
				}
			}
			return res, nil
		}
	}
	err = s.store.ClientRead(ctx, func(q sqlstore.Querier) error {
		items, err := s.store.Find(ctx, q, page)
		if err != nil {
			return err
		}
		res.Items = items
		if !p.SkipTotal {
			n, err := s.count(ctx, q, version, c, w.cond())
			if err != nil {
				return err
			}
			res.TotalItems = n
			res.TotalPages = (n + p.PerPage - 1) / p.PerPage
		}
		return s.expand(ctx, q, req, c, res.Items, p.Expand)
	})
	if err != nil {
		return nil, err
	}
	for _, r := range res.Items {
		s.presentInPlace(req, r)
	}
	if cacheable {
		s.cache.put(pageKey, version, cacheEntry{recs: cloneRecords(res.Items)})
	}
	return res, nil
}

// View returns one record, or ENotFound when it is missing or the view rule
// hides it from the caller.
func (s *Service) View(ctx context.Context, req *Request, coll, id string, expand string) (_ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "record.View")
	c, err := s.Collection(coll)
	if err != nil {
		return nil, err
	}
	if err := checkExpand(expand); err != nil {
		return nil, err
	}
	if expand == "" && s.cache != nil {
		return s.viewCached(ctx, req, c, id)
	}
	var r *underhood.Record
	err = s.store.ClientRead(ctx, func(q sqlstore.Querier) error {
		var err error
		r, err = s.findVisible(ctx, q, req, c, c.ViewRule, id)
		if err != nil {
			return err
		}
		return s.expand(ctx, q, req, c, []*underhood.Record{r}, expand)
	})
	if err != nil {
		return nil, err
	}
	s.presentInPlace(req, r)
	return r, nil
}

// viewCached is View without expand, through the result cache.
func (s *Service) viewCached(ctx context.Context, req *Request, c *underhood.Collection, id string) (*underhood.Record, error) {
	version := s.store.Version()
	w := where{sqlstore.Eq("id", id)}
	if err := s.addRule(&w, c, c.ViewRule, req); err != nil {
		return nil, err
	}
	one := sqlstore.Query{Collection: c, Where: w.cond(), Limit: 1}
	key, cacheable := s.cacheKey("view", one, callerKey(req))
	if cacheable {
		if e, ok := s.cache.get(key, version); ok {
			if len(e.recs) == 0 {
				return nil, errNotFound()
			}
			return e.recs[0].Clone(), nil
		}
	}
	var list []*underhood.Record
	err := s.store.ClientRead(ctx, func(q sqlstore.Querier) error {
		var err error
		list, err = s.store.Find(ctx, q, one)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, r := range list {
		s.presentInPlace(req, r)
	}
	if cacheable {
		s.cache.put(key, version, cacheEntry{recs: cloneRecords(list)})
	}
	if len(list) == 0 {
		return nil, errNotFound()
	}
	return list[0], nil
}

// findVisible loads record id of c if rule lets req see it.
func (s *Service) findVisible(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, rule underhood.Rule, id string) (*underhood.Record, error) {
	w := where{sqlstore.Eq("id", id)}
	if err := s.addRule(&w, c, rule, req); err != nil {
		return nil, err
	}
	list, err := s.store.Find(ctx, q, sqlstore.Query{Collection: c, Where: w.cond(), Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errNotFound()
	}
	return list[0], nil
}

func errNotFound() error {
	return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
}

// Create validates data against c's schema, writes the record and checks
// the create rule against it in the same transaction: a record the rule
// rejects is never committed.
func (s *Service) Create(ctx context.Context, req *Request, coll string, data map[string]any, expand string) (_ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "record.Create")
	c, err := s.Collection(coll)
	if err != nil {
		return nil, err
	}
	if err := checkExpand(expand); err != nil {
		return nil, err
	}
	r, errs, err := s.newRecord(req, c, data, prehashPasswords(c, data))
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		err := s.store.Read(ctx, func(q sqlstore.Querier) error { return s.invalidRecord(ctx, q, r, errs) })
		return nil, err
	}
	ctx, ch := withChanges(ctx)
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		if err := s.insert(ctx, q, req, r, data); err != nil {
			return err
		}
		return s.expand(ctx, q, req, c, []*underhood.Record{r}, expand)
	})
	if err != nil {
		return nil, err
	}
	s.publish(ch)
	s.presentInPlace(req, r)
	return r, nil
}

// Update applies data to a record the caller's update rule lets it change.
func (s *Service) Update(ctx context.Context, req *Request, coll, id string, data map[string]any, expand string) (_ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "record.Update")
	c, err := s.Collection(coll)
	if err != nil {
		return nil, err
	}
	if err := checkExpand(expand); err != nil {
		return nil, err
	}
	pre := prehashPasswords(c, data)
	var r *underhood.Record
	ctx, ch := withChanges(ctx)
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		var err error
		r, err = s.update(ctx, q, req, c, id, data, pre)
		if err != nil {
			return err
		}
		return s.expand(ctx, q, req, c, []*underhood.Record{r}, expand)
	})
	if err != nil {
		return nil, err
	}
	s.publish(ch)
	s.presentInPlace(req, r)
	return r, nil
}

// Delete removes a record the caller's delete rule lets it remove, with
// the cascade its collection's relations ask for.
func (s *Service) Delete(ctx context.Context, req *Request, coll, id string) (err error) {
	defer underhood.Wrap(&err, "record.Delete")
	c, err := s.Collection(coll)
	if err != nil {
		return err
	}
	ctx, ch := withChanges(ctx)
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		return s.delete(ctx, q, req, c, id)
	})
	if err != nil {
		return err
	}
	s.publish(ch)
	return nil
}

// FindRecord returns record id of c without applying any rule. It is for
// capabilities such as auth that decide access themselves.
func (s *Service) FindRecord(ctx context.Context, c *underhood.Collection, id string) (*underhood.Record, error) {
	var r *underhood.Record
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		var err error
		r, err = s.findVisible(ctx, q, s.SystemRequest(), c, nil, id)
		return err
	})
	return r, err
}

// FindByField returns the first record of c whose field equals value,
// without applying any rule. Emails compare case-insensitively.
func (s *Service) FindByField(ctx context.Context, c *underhood.Collection, field, value string) (*underhood.Record, error) {
	f := c.Field(field)
	if f == nil {
		return nil, underhood.Errorf(underhood.EInvalid, "Unknown field %q.", field)
	}
	if c.IsAuth() && f.Name == "email" {
		return s.findByEmail(ctx, c, value)
	}
	cond := sqlstore.Eq(f.Name, value)
	if f.Type == underhood.FieldEmail {
		cond = sqlstore.EqFold(f.Name, value)
	}
	var r *underhood.Record
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		list, err := s.store.Find(ctx, q, sqlstore.Query{Collection: c, Where: cond, Limit: 1})
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return errNotFound()
		}
		r = list[0]
		return nil
	})
	return r, err
}

// Present returns a copy of r as req may see it: hidden fields, password
// hashes and token keys removed, and an auth record's email removed unless
// it is visible to the caller.
func (s *Service) Present(req *Request, r *underhood.Record) *underhood.Record {
	n := r.Clone()
	n.Expand = r.Expand
	s.presentInPlace(req, n)
	return n
}

func (s *Service) presentInPlace(req *Request, r *underhood.Record) {
	c := r.Collection
	su := isSuperuser(req)
	for _, f := range c.Fields {
		if f.Type == underhood.FieldPassword || (f.Hidden && !su) {
			delete(r.Data, f.Name)
		}
	}
	if c.IsAuth() {
		delete(r.Data, "tokenKey")
		if !su && !r.Bool("emailVisibility") && !isSelf(req, r) {
			delete(r.Data, "email")
		}
	}
}

func isSelf(req *Request, r *underhood.Record) bool {
	return req != nil && req.Auth != nil && req.Auth.Collection != nil &&
		req.Auth.Collection.ID == r.Collection.ID && req.Auth.ID() == r.ID()
}

// checkExpand refuses expand paths deeper than six relations.
func checkExpand(expand string) error {
	for _, p := range strings.Split(expand, ",") {
		p = strings.TrimSpace(p)
		if n := strings.Count(p, ".") + 1; n > maxExpandDepth {
			msg := fmt.Sprintf("Expand path %q follows %d relations; at most %d are allowed.", p, n, maxExpandDepth)
			return underhood.Invalid(msg, map[string]any{"expand": underhood.FieldError{
				Code: "validation_expand_too_deep", Message: msg, Params: map[string]any{"max": maxExpandDepth},
			}})
		}
	}
	return nil
}

// withMessage replaces the message of a validation error so that it names
// the operation that failed, as clients expect ("Failed to create record.").
func withMessage(err error, msg string) error {
	var ue *underhood.Error
	if errors.As(err, &ue) && ue.Code == underhood.EInvalid {
		n := *ue
		n.Message = msg
		return &n
	}
	return err
}

// count returns how many records of c match where, from the count cache
// when no write has committed since it was computed.
func (s *Service) count(ctx context.Context, q sqlstore.Querier, version uint64, c *underhood.Collection, where sqlstore.Cond) (int, error) {
	all := sqlstore.Query{Collection: c, Where: where}
	key, cacheable := s.cacheKey("count", all)
	if cacheable {
		if e, ok := s.cache.get(key, version); ok {
			return e.n, nil
		}
	}
	n, err := s.store.Count(ctx, q, all)
	if err != nil {
		return 0, err
	}
	if cacheable {
		s.cache.put(key, version, cacheEntry{n: n})
	}
	return n, nil
}

package record

import (
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
)

// Request is the caller of a service method: who asks (Auth, nil for a
// guest) and everything a rule may read through @request.*.
type Request = filter.Request

func isSuperuser(req *Request) bool { return req != nil && req.Auth.IsSuperuser() }

// SystemRequest returns a request that bypasses every rule, for the CLI and
// for the service's own bookkeeping. It never comes from a client.
func (s *Service) SystemRequest() *Request {
	su, _ := s.Collection(underhood.SuperusersName)
	return &Request{Context: "default", Method: "POST", Auth: &underhood.Record{Collection: su, Data: map[string]any{"id": ""}}}
}

// errSuperusersOnly is what a caller meets when a rule is null.
func errSuperusersOnly() error {
	return underhood.Errorf(underhood.EForbidden, "Only superusers can perform this action.")
}

// where collects the conditions of one query, all of which must hold.
type where []sqlstore.Cond

func (w *where) add(c sqlstore.Cond) { *w = append(*w, c) }

// cond is the conjunction of w's conditions (nil for none).
func (w where) cond() sqlstore.Cond { return sqlstore.And(w...) }

// filterOptions are the options every compile of a rule or filter on c shares.
func (s *Service) filterOptions(c *underhood.Collection, req *Request) filter.Options {
	return filter.Options{
		Schema:     s.schema.Load(),
		Collection: c,
		Alias:      sqlstore.Alias,
		Dialect:    s.dialect,
		Request:    req,
		Now:        s.now(),
		Superuser:  isSuperuser(req),
	}
}

// addRule adds to w the condition of rule for req. It reports an error
// when the rule is null and the caller is not a superuser. A rule that
// fails to compile denies access: it never fails open.
func (s *Service) addRule(w *where, c *underhood.Collection, rule underhood.Rule, req *Request) error {
	if isSuperuser(req) {
		return nil
	}
	if rule == nil {
		return errSuperusersOnly()
	}
	if strings.TrimSpace(*rule) == "" {
		return nil
	}
	e, err := s.parseRule(*rule)
	if err != nil {
		s.log.Error("access rule does not parse; denying", "collection", c.Name, "err", err)
		return errSuperusersOnly()
	}
	x, err := filter.Compile(e, s.filterOptions(c, req))
	if err != nil {
		s.log.Error("access rule does not compile; denying", "collection", c.Name, "err", err)
		return errSuperusersOnly()
	}
	w.add(sqlstore.Filter(x))
	return nil
}

// addClientFilter adds a client-supplied filter to w. Unlike a rule, it
// may not read @request.*, @collection.*, hidden fields, or collections the
// caller cannot list.
func (s *Service) addClientFilter(w *where, c *underhood.Collection, src string, req *Request) error {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	if len(src) > 3500 {
		return underhood.Errorf(underhood.EInvalid, "The filter is too long (max 3500 characters).")
	}
	e, err := s.parseRule(src)
	if err != nil {
		return filterError(err)
	}
	o := s.filterOptions(c, req)
	o.Client = true
	x, err := filter.Compile(e, o)
	if err != nil {
		return filterError(err)
	}
	w.add(sqlstore.Filter(x))
	return nil
}

// clientSort compiles a client-supplied sort.
func (s *Service) clientSort(c *underhood.Collection, src string, req *Request) ([]sqlstore.Order, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	o := s.filterOptions(c, req)
	o.Client = true
	sorted, err := filter.CompileSort(src, o)
	if err != nil {
		return nil, filterError(err)
	}
	return []sqlstore.Order{{Sorted: sorted}}, nil
}

// filterError makes sure a bad client filter is reported as a client error.
func filterError(err error) error {
	switch underhood.ErrorCode(err) {
	case underhood.EInvalid, underhood.EForbidden:
		return err
	}
	return underhood.Errorf(underhood.EInvalid, "Invalid filter: %s", underhood.ErrorMessage(err))
}

// maxParsed bounds the parse cache, which client filters also go through.
const maxParsed = 4096

// parseRule parses a rule or filter, caching the AST per source text.
func (s *Service) parseRule(src string) (filter.Expr, error) {
	s.parsedMu.Lock()
	e, ok := s.parsed[src]
	s.parsedMu.Unlock()
	if ok {
		return e, nil
	}
	e, err := filter.Parse(src)
	if err != nil {
		return nil, err
	}
	s.parsedMu.Lock()
	if len(s.parsed) >= maxParsed {
		clear(s.parsed)
	}
	s.parsed[src] = e
	s.parsedMu.Unlock()
	return e, nil
}

// ruleRequest returns req with the Body a rule of a write reads through
// @request.body: data as the write will apply it to cur (the stored record
// on update, nil on create). Every modifier key of a field ("credits+",
// "+roles", "roles-") is resolved into the field's final value under the
// field's plain name, so a rule judges what a field becomes however the
// client spelled the change; without this, {"roles+": "admin"} would pass
// a rule that forbids setting roles. Create, update and the batch's
// upsert all come through here, whatever adapter the write came from.
func ruleRequest(req *Request, c *underhood.Collection, cur *underhood.Record, data map[string]any) *Request {
	if req == nil || isSuperuser(req) {
		return req
	}
	n := *req
	n.Body = resolveModifiers(c, cur, data)
	return &n
}

// resolveModifiers returns a copy of data in which the modifier keys of
// c's fields are replaced by the value each field will have, computed as
// assignValues computes it: plain values first, then the modifiers in
// order, starting from cur's value (a new record's zero value when cur is
// nil). Keys that name no field, and plain keys, stay as they are. A
// modifier that cannot be applied leaves its raw value under the plain
// name: the field still counts as set, and the write itself refuses it.
func resolveModifiers(c *underhood.Collection, cur *underhood.Record, data map[string]any) map[string]any {
	out := make(map[string]any, len(data))
	failed := map[string]bool{}
	for _, key := range orderedKeys(data) {
		name, mod := splitModifier(key)
		f := c.Field(name)
		if mod == "" || f == nil {
			out[key] = data[key]
			continue
		}
		if failed[name] {
			continue
		}
		base, seen := out[name]
		switch {
		case seen:
			if v, err := NormalizeValue(f, base); err == nil {
				base = v
			}
		case cur != nil:
			base = cur.Data[name]
		default:
			base = ZeroValue(f)
		}
		v, err := ApplyModifier(f, base, mod, data[key])
		if err != nil {
			failed[name] = true
			v = data[key]
		}
		out[name] = v
	}
	return out
}

// hasModifiers reports whether data holds a modifier key of a field of c.
func hasModifiers(c *underhood.Collection, data map[string]any) bool {
	for key := range data {
		if name, mod := splitModifier(key); mod != "" && c.Field(name) != nil {
			return true
		}
	}
	return false
}

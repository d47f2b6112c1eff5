package record

import (
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
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

// where accumulates the conditions of one query, numbering placeholders
// in the order they are added.
type where struct {
	parts []string
	args  []any
}

func (w *where) add(sql string, args ...any) {
	w.parts = append(w.parts, sql)
	w.args = append(w.args, args...)
}

func (w *where) addSQL(x *filter.SQL) {
	if x == nil || x.Where == "" {
		return
	}
	w.add("("+x.Where+")", x.Args...)
}

func (w *where) String() string { return strings.Join(w.parts, " AND ") }

// filterOptions are the options every compile of a rule or filter on c shares.
func (s *Service) filterOptions(c *underhood.Collection, req *Request, argOffset int) filter.Options {
	return filter.Options{
		Schema:     s.schema.Load(),
		Collection: c,
		Alias:      "r",
		Dialect:    s.dialect,
		Request:    req,
		Now:        s.now(),
		Superuser:  isSuperuser(req),
		ArgOffset:  argOffset,
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
	x, err := filter.Compile(e, s.filterOptions(c, req, len(w.args)))
	if err != nil {
		s.log.Error("access rule does not compile; denying", "collection", c.Name, "err", err)
		return errSuperusersOnly()
	}
	w.addSQL(x)
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
	o := s.filterOptions(c, req, len(w.args))
	o.Client = true
	x, err := filter.Compile(e, o)
	if err != nil {
		return filterError(err)
	}
	w.addSQL(x)
	return nil
}

// clientSort compiles a client-supplied sort.
func (s *Service) clientSort(c *underhood.Collection, src string, req *Request, argOffset int) (string, []any, error) {
	if strings.TrimSpace(src) == "" {
		return "", nil, nil
	}
	o := s.filterOptions(c, req, argOffset)
	o.Client = true
	order, args, err := filter.CompileSort(src, o)
	if err != nil {
		return "", nil, filterError(err)
	}
	return order, args, nil
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

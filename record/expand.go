package record

import (
	"context"
	"regexp"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// maxExpandDepth is how many relations an expand path may follow.
const maxExpandDepth = 6

// maxBackRelations caps the records one back-relation expand loads.
const maxBackRelations = 1000

// expandTree is a parsed expand parameter: each key is a relation field
// (or "coll_via_field" back-relation) and its value the paths below it.
type expandTree map[string]expandTree

func parseExpand(src string) expandTree {
	tree := expandTree{}
	for _, p := range strings.Split(src, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		node := tree
		for i, name := range strings.Split(p, ".") {
			if i >= maxExpandDepth {
				break
			}
			next, ok := node[name]
			if !ok {
				next = expandTree{}
				node[name] = next
			}
			node = next
		}
	}
	return tree
}

// expand loads the relations named by paths into recs' Expand maps. Each
// expanded record passes its own collection's view rule for req (with
// @request.context = "expand"); records it hides are left out.
func (s *Service) expand(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, recs []*underhood.Record, paths string) error {
	if strings.TrimSpace(paths) == "" || len(recs) == 0 {
		return nil
	}
	ereq := &Request{Context: "expand"}
	if req != nil {
		r := *req
		r.Context = "expand"
		ereq = &r
	}
	return s.expandLevel(ctx, q, ereq, c, recs, parseExpand(paths))
}

func (s *Service) expandLevel(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, recs []*underhood.Record, tree expandTree) error {
	for name, sub := range tree {
		if f := c.Field(name); f != nil {
			if f.Type != underhood.FieldRelation {
				continue
			}
			if err := s.expandRelation(ctx, q, req, f, recs, name, sub); err != nil {
				return err
			}
			continue
		}
		if err := s.expandBackRelation(ctx, q, req, c, recs, name, sub); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) expandRelation(ctx context.Context, q sqlstore.Querier, req *Request, f *underhood.Field, recs []*underhood.Record, name string, sub expandTree) error {
	target := s.schema.Load().FindCollection(f.CollectionID)
	if target == nil {
		return nil
	}
	var ids []string
	seen := map[string]bool{}
	for _, r := range recs {
		for _, id := range r.Strings(f.Name) {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	cond, args := s.idIn(ids, 0)
	loaded, err := s.loadVisible(ctx, q, req, target, cond, args, 0)
	if err != nil || len(loaded) == 0 {
		return err
	}
	if err := s.expandLevel(ctx, q, req, target, loaded, sub); err != nil {
		return err
	}
	byID := make(map[string]*underhood.Record, len(loaded))
	for _, r := range loaded {
		s.presentInPlace(req, r)
		byID[r.ID()] = r
	}
	for _, r := range recs {
		if f.IsMulti() {
			var list []*underhood.Record
			for _, id := range r.Strings(f.Name) {
				if e := byID[id]; e != nil {
					list = append(list, e)
				}
			}
			if len(list) > 0 {
				setExpand(r, name, list)
			}
			continue
		}
		if e := byID[r.String(f.Name)]; e != nil {
			setExpand(r, name, e)
		}
	}
	return nil
}

// expandBackRelation expands "coll_via_field": the records of coll whose
// relation field points to each of recs.
func (s *Service) expandBackRelation(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, recs []*underhood.Record, name string, sub expandTree) error {
	i := strings.LastIndex(name, "_via_")
	if i <= 0 {
		return nil
	}
	target := s.schema.Load().FindCollection(name[:i])
	if target == nil {
		return nil
	}
	f := target.Field(name[i+len("_via_"):])
	if f == nil || f.Type != underhood.FieldRelation || f.CollectionID != c.ID {
		return nil
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID()
	}
	cond, args, err := s.containsID(target, f, ids)
	if err != nil {
		return err
	}
	loaded, err := s.loadVisible(ctx, q, req, target, cond, args, maxBackRelations)
	if err != nil || len(loaded) == 0 {
		return err
	}
	if err := s.expandLevel(ctx, q, req, target, loaded, sub); err != nil {
		return err
	}
	for _, e := range loaded {
		s.presentInPlace(req, e)
	}
	single := hasUniqueIndex(target, f.Name)
	for _, r := range recs {
		var list []*underhood.Record
		for _, e := range loaded {
			for _, id := range e.Strings(f.Name) {
				if id == r.ID() {
					list = append(list, e)
					break
				}
			}
		}
		switch {
		case len(list) == 0:
		case single:
			setExpand(r, name, list[0])
		default:
			setExpand(r, name, list)
		}
	}
	return nil
}

// loadVisible returns the records of c matching cond that req's view rule
// lets it see. A collection only superusers may view yields nothing.
func (s *Service) loadVisible(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, cond string, args []any, limit int) ([]*underhood.Record, error) {
	w := where{parts: []string{cond}, args: args}
	if err := s.addRule(&w, c, c.ViewRule, req); err != nil {
		if underhood.ErrorCode(err) == underhood.EForbidden {
			return nil, nil
		}
		return nil, err
	}
	return s.store.Find(ctx, q, sqlstore.Query{Collection: c, Alias: "r", Where: w.String(), Args: w.args, Limit: limit})
}

func setExpand(r *underhood.Record, name string, v any) {
	if r.Expand == nil {
		r.Expand = map[string]any{}
	}
	r.Expand[name] = v
}

var uniqueIndexColumns = regexp.MustCompile(`(?is)^\s*CREATE\s+UNIQUE\s+INDEX\s+.*?\(\s*(.*?)\s*\)`)

// hasUniqueIndex reports whether field alone is covered by a unique index
// of c, which makes a back-relation through it single-valued.
func hasUniqueIndex(c *underhood.Collection, field string) bool {
	for _, idx := range c.Indexes {
		m := uniqueIndexColumns.FindStringSubmatch(idx)
		if m == nil {
			continue
		}
		words := strings.Fields(m[1])
		if len(words) == 0 || strings.Contains(m[1], ",") {
			continue
		}
		if strings.EqualFold(strings.Trim(words[0], "`\"[]"), field) {
			return true
		}
	}
	return false
}

package record

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// maxExpandDepth is how many relations an expand path may follow.
const maxExpandDepth = 6

// maxBackRelations caps the records one back-relation expand loads.
const maxBackRelations = 1000

// Default expand limits: how many expanded records one response and one
// realtime message may hold. Every reference counts, as the JSON repeats
// a record at each place it is referenced.
const (
	DefaultMaxExpandRecords         = 5000
	DefaultMaxRealtimeExpandRecords = 1000
)

// codeExpandTooLarge is data.expand.code of an expand refused by its limit.
const codeExpandTooLarge = "validation_expand_too_large"

// ExpandLimits bound the expanded records of one response (a batch's
// operations share one) and of one realtime message, counted per
// reference. A value below 1 means the default.
type ExpandLimits struct {
	Response int // serve --max-expand-records
	Realtime int // serve --max-realtime-expand-records
}

// UseExpandLimits sets the expand limits. Call it before serving.
func (s *Service) UseExpandLimits(l ExpandLimits) {
	if l.Response < 1 {
		l.Response = DefaultMaxExpandRecords
	}
	if l.Realtime < 1 {
		l.Realtime = DefaultMaxRealtimeExpandRecords
	}
	s.expandLimits.Store(&l)
}

func (s *Service) currentExpandLimits() ExpandLimits {
	if l := s.expandLimits.Load(); l != nil {
		return *l
	}
	return ExpandLimits{Response: DefaultMaxExpandRecords, Realtime: DefaultMaxRealtimeExpandRecords}
}

// expandBudget counts the expanded records of one response or realtime
// message against its limit.
type expandBudget struct {
	limit    int
	realtime bool
	used     int
}

func (s *Service) responseBudget() *expandBudget {
	return &expandBudget{limit: s.currentExpandLimits().Response}
}

func (s *Service) realtimeBudget() *expandBudget {
	return &expandBudget{limit: s.currentExpandLimits().Realtime, realtime: true}
}

// remaining is how many more references fit.
func (b *expandBudget) remaining() int { return b.limit - b.used }

// add returns x + y, or limit + 1 when that passes the limit, so that
// reference counts that multiply level by level never overflow.
func (b *expandBudget) add(x, y int) int {
	if x+y > b.limit {
		return b.limit + 1
	}
	return x + y
}

// spend counts the references of loaded, weight(r) each, and returns
// their weights, or the error of a too large expand as soon as the
// count passes the limit.
func (b *expandBudget) spend(loaded []*underhood.Record, weight func(*underhood.Record) int) ([]int, error) {
	if len(loaded) > b.remaining() {
		return nil, b.tooLarge()
	}
	weights := make([]int, len(loaded))
	for i, r := range loaded {
		weights[i] = weight(r)
		b.used += weights[i]
		if b.used > b.limit {
			return nil, b.tooLarge()
		}
	}
	return weights, nil
}

func (b *expandBudget) tooLarge() error {
	msg := fmt.Sprintf("The expand would return more than %d related records (limit --max-expand-records); expand fewer relations or request fewer records.", b.limit)
	if b.realtime {
		msg = fmt.Sprintf("The expand would send more than %d related records in one realtime message (limit --max-realtime-expand-records); subscribe with fewer relations.", b.limit)
	}
	return underhood.Invalid(msg, map[string]any{"expand": underhood.FieldError{
		Code: codeExpandTooLarge, Message: msg, Params: map[string]any{"limit": b.limit},
	}})
}

// ExpandTooLarge returns the data.expand error of err when err refuses an
// expand that passes its limit (code validation_expand_too_large, the
// client's message, and the limit in Params), and nil otherwise.
func ExpandTooLarge(err error) *underhood.FieldError {
	var ue *underhood.Error
	if !errors.As(err, &ue) || ue.Code != underhood.EInvalid {
		return nil
	}
	if fe, ok := ue.Data["expand"].(underhood.FieldError); ok && fe.Code == codeExpandTooLarge {
		return &fe
	}
	return nil
}

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

// expansion is one expand in progress: the request it runs for (with
// @request.context = "expand") and the budget it spends.
type expansion struct {
	req    *Request
	budget *expandBudget
}

// expand loads the relations named by paths into recs' Expand maps,
// within the limit of one response. Each expanded record passes its own
// collection's view rule for req (with @request.context = "expand");
// records it hides are left out, and so are hidden relation fields unless
// req is a superuser's.
func (s *Service) expand(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, recs []*underhood.Record, paths string) error {
	return s.expandWithin(ctx, q, req, c, recs, paths, s.responseBudget())
}

// expandWithin is expand spending budget. The references are counted
// level by level before the level below is loaded, and no query loads more
// records than the budget has left, so an expand past the limit stops
// with its error having read at most about the limit's worth of records.
func (s *Service) expandWithin(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, recs []*underhood.Record, paths string, budget *expandBudget) error {
	if strings.TrimSpace(paths) == "" || len(recs) == 0 {
		return nil
	}
	ereq := &Request{Context: "expand"}
	if req != nil {
		r := *req
		r.Context = "expand"
		ereq = &r
	}
	weights := make([]int, len(recs))
	for i := range weights {
		weights[i] = 1
	}
	return s.expandLevel(ctx, q, &expansion{req: ereq, budget: budget}, c, recs, weights, parseExpand(paths))
}

// expandLevel expands tree on recs, where weights[i] is how many times
// the response shows recs[i].
func (s *Service) expandLevel(ctx context.Context, q sqlstore.Querier, e *expansion, c *underhood.Collection, recs []*underhood.Record, weights []int, tree expandTree) error {
	for name, sub := range tree {
		if f := c.Field(name); f != nil {
			if f.Type != underhood.FieldRelation || !mayExpand(e.req, f) {
				continue
			}
			if err := s.expandRelation(ctx, q, e, f, recs, weights, name, sub); err != nil {
				return err
			}
			continue
		}
		if err := s.expandBackRelation(ctx, q, e, c, recs, weights, name, sub); err != nil {
			return err
		}
	}
	return nil
}

// mayExpand reports whether req may expand relation field f: a hidden
// field only a superuser sees, so only a superuser expands it; anyone
// else's expand of it is ignored like that of an unknown field.
func mayExpand(req *Request, f *underhood.Field) bool {
	return !f.Hidden || isSuperuser(req)
}

func (s *Service) expandRelation(ctx context.Context, q sqlstore.Querier, e *expansion, f *underhood.Field, recs []*underhood.Record, weights []int, name string, sub expandTree) error {
	target := s.schema.Load().FindCollection(f.CollectionID)
	if target == nil {
		return nil
	}
	// refs is how many times the response will show each related id.
	refs := map[string]int{}
	var ids []string
	for i, r := range recs {
		for _, id := range r.Strings(f.Name) {
			n, seen := refs[id]
			if !seen {
				ids = append(ids, id)
			}
			refs[id] = e.budget.add(n, weights[i])
		}
	}
	if len(ids) == 0 {
		return nil
	}
	loaded, err := s.loadVisible(ctx, q, e.req, target, sqlstore.In("id", ids), e.budget.remaining()+1)
	if err != nil || len(loaded) == 0 {
		return err
	}
	loadedWeights, err := e.budget.spend(loaded, func(r *underhood.Record) int { return refs[r.ID()] })
	if err != nil {
		return err
	}
	if err := s.expandLevel(ctx, q, e, target, loaded, loadedWeights, sub); err != nil {
		return err
	}
	byID := make(map[string]*underhood.Record, len(loaded))
	for _, r := range loaded {
		s.presentInPlace(e.req, r)
		byID[r.ID()] = r
	}
	for _, r := range recs {
		if f.IsMulti() {
			var list []*underhood.Record
			for _, id := range r.Strings(f.Name) {
				if x := byID[id]; x != nil {
					list = append(list, x)
				}
			}
			if len(list) > 0 {
				setExpand(r, name, list)
			}
			continue
		}
		if x := byID[r.String(f.Name)]; x != nil {
			setExpand(r, name, x)
		}
	}
	return nil
}

// expandBackRelation expands "coll_via_field": the records of coll whose
// relation field points to each of recs.
func (s *Service) expandBackRelation(ctx context.Context, q sqlstore.Querier, e *expansion, c *underhood.Collection, recs []*underhood.Record, weights []int, name string, sub expandTree) error {
	i := strings.LastIndex(name, "_via_")
	if i <= 0 {
		return nil
	}
	target := s.schema.Load().FindCollection(name[:i])
	if target == nil {
		return nil
	}
	f := target.Field(name[i+len("_via_"):])
	if f == nil || f.Type != underhood.FieldRelation || f.CollectionID != c.ID || !mayExpand(e.req, f) {
		return nil
	}
	ids := make([]string, len(recs))
	// refs is how many times the response shows each of recs' ids.
	refs := make(map[string]int, len(recs))
	for i, r := range recs {
		ids[i] = r.ID()
		refs[r.ID()] = e.budget.add(refs[r.ID()], weights[i])
	}
	cond, err := s.containsID(target, f, ids)
	if err != nil {
		return err
	}
	limit := min(maxBackRelations, e.budget.remaining()+1)
	loaded, err := s.loadVisible(ctx, q, e.req, target, cond, limit)
	if err != nil || len(loaded) == 0 {
		return err
	}
	// pointsTo lists, for each loaded record, the distinct ids of recs it
	// points to (read before presenting, which may remove the field).
	pointsTo := make(map[*underhood.Record][]string, len(loaded))
	for _, x := range loaded {
		for _, id := range x.Strings(f.Name) {
			if _, ok := refs[id]; ok && !slices.Contains(pointsTo[x], id) {
				pointsTo[x] = append(pointsTo[x], id)
			}
		}
	}
	loadedWeights, err := e.budget.spend(loaded, func(x *underhood.Record) int {
		n := 0
		for _, id := range pointsTo[x] {
			n = e.budget.add(n, refs[id])
		}
		return n
	})
	if err != nil {
		return err
	}
	if err := s.expandLevel(ctx, q, e, target, loaded, loadedWeights, sub); err != nil {
		return err
	}
	byParent := make(map[string][]*underhood.Record, len(recs))
	for _, x := range loaded {
		for _, id := range pointsTo[x] {
			byParent[id] = append(byParent[id], x)
		}
		s.presentInPlace(e.req, x)
	}
	single := hasUniqueIndex(target, f.Name)
	for _, r := range recs {
		list := byParent[r.ID()]
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
// lets it see, at most limit of them (0: all). A collection only
// superusers may view yields nothing.
func (s *Service) loadVisible(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, cond sqlstore.Cond, limit int) ([]*underhood.Record, error) {
	w := where{cond}
	if err := s.addRule(&w, c, c.ViewRule, req); err != nil {
		if underhood.ErrorCode(err) == underhood.EForbidden {
			return nil, nil
		}
		return nil, err
	}
	return s.store.Find(ctx, q, sqlstore.Query{Collection: c, Where: w.cond(), Limit: limit})
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

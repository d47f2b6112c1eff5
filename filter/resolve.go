package filter

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood"
)

// This file checks a parsed expression against the schema and the request
// and turns it into a typed tree that both the SQL compiler and Match walk,
// so the two cannot disagree about what an identifier means.

// kind is the static type of a value.
type kind int

const (
	kAny    kind = iota // decided at run time (JSON values, unknown body keys)
	kText               // text, dates, single select/relation/file, emails
	kNumber             // numbers, :length, geoDistance
	kBool               // bool fields, :isset, :changed
	kArray              // a multi-value field compared as its JSON array text
	kJSON               // a json or geoPoint field compared as its JSON text
)

// affinity mirrors SQLite's column affinity, which decides how a column
// compares with a value of another type. Match applies the same rules.
type affinity = Affinity

const (
	affNone    = AffinityNone
	affText    = AffinityText
	affNumeric = AffinityNumeric
)

// node is a resolved boolean expression: *logic or *cmp.
type node interface{}

type logic struct {
	or   bool
	l, r node
}

type cmp struct {
	op   string
	any  bool
	l, r *value
}

// MaxRelationDepth is the most relations one path of a filter, sort or
// rule may go through, as in PocketBase: "author.team.name" goes through
// two, "@request.auth.team.name" too (the relation the caller's record
// holds counts). Each relation joins another table, so a path through
// many multi-value relations costs rows to the power of its depth.
const MaxRelationDepth = 6

// hop is one relation step of a path.
type hop struct {
	field  *underhood.Field      // the relation field (in the target, for back-relations)
	target *underhood.Collection // the collection the hop arrives at
	back   bool
	multi  bool
	// rule is the target's list rule, which the rows reached by a client
	// filter must satisfy; nil when none applies.
	rule *resolved
}

type rootKind int

const (
	rootRecord     rootKind = iota // the record being filtered
	rootIDs                        // known ids of a relation (from @request.auth or @request.body)
	rootCollection                 // a row of an @collection join
)

// collAlias is one @collection join.
type collAlias struct {
	name string
	coll *underhood.Collection
}

// path is a column reached from a root through relation hops.
type path struct {
	root   rootKind
	coll   *underhood.Collection // collection at the root
	ids    []string              // rootIDs: the ids of coll to start from
	multiI bool                  // rootIDs: the ids came from a multi-value relation
	alias  *collAlias            // rootCollection
	hops   []hop
	field  *underhood.Field      // the final field
	owner  *underhood.Collection // the collection of field
	json   []string              // keys inside a json or geoPoint field
	each   bool
	length bool
	// guardEmail hides the email of auth records whose owner has not made
	// it visible, for client filters. authID is the caller's id when the
	// caller is a record of owner, whose own email is never hidden from
	// it; "" otherwise, since ids repeat across collections (M1).
	guardEmail bool
	authID     string
}

// multi reports whether the path yields many values.
func (p *path) multi() bool {
	if p.each || p.root == rootIDs && p.multiI {
		return true
	}
	for _, h := range p.hops {
		if h.multi {
			return true
		}
	}
	return false
}

// value is a resolved operand. Exactly one of constant, list, path, call
// and changed is set.
type value struct {
	kind     kind
	pos      int
	constant bool
	v        any   // constant: nil, string, float64 or bool
	list     []any // each over a constant array
	path     *path
	call     *call
	changed  *changed
	lower    bool
}

type call struct {
	name string
	args []*value
}

// changed is @request.body.X:changed: X is in the body with a value other
// than the record's.
type changed struct {
	isset bool
	body  *value
	field *path
}

// multi reports whether v has many values.
func (v *value) multi() bool {
	return v.list != nil || v.path != nil && v.path.multi()
}

// resolved is a whole resolved expression.
type resolved struct {
	root    node
	aliases []*collAlias
}

type resolver struct {
	o       Options
	key     string // "filter" or "sort", for errors
	aliases []*collAlias
	at      *Ident // the identifier being resolved, for errors
}

func newResolver(o Options, key string) *resolver {
	if o.Alias == "" {
		o.Alias = "r"
	}
	if o.Request == nil {
		o.Request = &Request{}
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC()
	return &resolver{o: o, key: key}
}

func resolve(e Expr, o Options) (*resolved, error) {
	if o.Collection == nil {
		return nil, errAt("filter", 1, "no collection")
	}
	r := newResolver(o, "filter")
	n, err := r.expr(e, 0)
	if err != nil {
		return nil, err
	}
	return &resolved{root: n, aliases: r.aliases}, nil
}

func (r *resolver) fail(pos int, format string, args ...any) error {
	return errAt(r.key, pos, format, args...)
}

// maxTreeDepth bounds the depth of a resolved expression. The parser
// bounds parentheses, but each term of a chain of && or || nests one level
// deeper: a client listing records by id ("id='…' || id='…' || …") fits
// about 160 ids in a filter of 3500 characters. The compiled SQL must stay
// within SQLite's limit of 1000 levels.
const maxTreeDepth = 500

func (r *resolver) expr(e Expr, depth int) (node, error) {
	if depth > maxTreeDepth {
		return nil, r.fail(e.Pos(), "too deeply nested")
	}
	switch e := e.(type) {
	case *Logical:
		l, err := r.expr(e.L, depth+1)
		if err != nil {
			return nil, err
		}
		rr, err := r.expr(e.R, depth+1)
		if err != nil {
			return nil, err
		}
		return &logic{or: e.Op == "||", l: l, r: rr}, nil
	case *Compare:
		l, err := r.operand(e.L)
		if err != nil {
			return nil, err
		}
		rv, err := r.operand(e.R)
		if err != nil {
			return nil, err
		}
		if e.Op != "~" && e.Op != "!~" {
			coerce(l, rv)
			coerce(rv, l)
		}
		return &cmp{op: e.Op, any: e.Any, l: l, r: rv}, nil
	}
	return nil, r.fail(e.Pos(), "unexpected expression")
}

// coerce converts the constant c to the kind of the other side, so that
// "views > '5'" compares numbers and "title = 5" compares text.
func coerce(c, other *value) {
	if !c.constant || c.v == nil || other.constant {
		return
	}
	switch other.kind {
	case kNumber:
		switch x := c.v.(type) {
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				c.v, c.kind = f, kNumber
			}
		case bool:
			c.v, c.kind = boolNumber(x), kNumber
		}
	case kBool:
		switch x := c.v.(type) {
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true", "1":
				c.v, c.kind = true, kBool
			case "false", "0", "":
				c.v, c.kind = false, kBool
			}
		case float64:
			c.v, c.kind = x != 0, kBool
		}
	case kText:
		switch x := c.v.(type) {
		case float64:
			c.v, c.kind = formatNumber(x), kText
		case bool:
			c.v, c.kind = strconv.FormatBool(x), kText
		}
	}
}

func boolNumber(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// formatNumber renders a number as SQLite renders an integral or real
// value as text.
func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func constValue(v any, pos int) *value {
	x := &value{constant: true, v: v, pos: pos}
	switch v.(type) {
	case string:
		x.kind = kText
	case float64:
		x.kind = kNumber
	case bool:
		x.kind = kBool
	default:
		x.kind = kAny
	}
	return x
}

func (r *resolver) operand(op Operand) (*value, error) {
	switch op := op.(type) {
	case *Literal:
		return constValue(op.Value, op.pos), nil
	case *Call:
		return r.call(op)
	case *Ident:
		return r.ident(op)
	}
	return nil, r.fail(op.Pos(), "unexpected operand")
}

func (r *resolver) call(c *Call) (*value, error) {
	args := make([]*value, len(c.Args))
	for i, a := range c.Args {
		v, err := r.operand(a)
		if err != nil {
			return nil, err
		}
		if v.multi() {
			return nil, r.fail(a.Pos(), "%s() takes single values", c.Name)
		}
		args[i] = v
	}
	switch c.Name {
	case "geoDistance":
		if len(args) != 4 {
			return nil, r.fail(c.pos, "geoDistance(lonA, latA, lonB, latB) takes 4 arguments")
		}
		for _, a := range args {
			coerce(a, &value{kind: kNumber})
		}
		return &value{kind: kNumber, pos: c.pos, call: &call{name: c.Name, args: args}}, nil
	case "strftime":
		if len(args) < 2 || len(args) > 10 {
			return nil, r.fail(c.pos, "strftime(format, time, modifiers...) takes 2 to 10 arguments")
		}
		return &value{kind: kText, pos: c.pos, call: &call{name: c.Name, args: args}}, nil
	}
	return nil, r.fail(c.pos, "unknown function %q", c.Name)
}

// modifiers of an identifier
type mods struct {
	isset, changed, length, each, lower bool
}

func (r *resolver) modifiers(id *Ident) (mods, error) {
	var m mods
	for _, s := range id.Modifiers {
		switch s {
		case "isset":
			m.isset = true
		case "changed":
			m.changed = true
		case "length":
			m.length = true
		case "each":
			m.each = true
		case "lower":
			m.lower = true
		default:
			return m, r.fail(id.pos, "unknown modifier %q", s)
		}
	}
	if m.length && (m.each || m.lower) {
		return m, r.fail(id.pos, ":length cannot be combined with :each or :lower")
	}
	return m, nil
}

func (r *resolver) ident(id *Ident) (*value, error) {
	m, err := r.modifiers(id)
	if err != nil {
		return nil, err
	}
	r.at = id
	name := id.Name
	if r.o.Client && (strings.HasPrefix(name, "@request") || strings.HasPrefix(name, "@collection")) {
		return nil, r.fail(id.pos, "%s is only allowed in rules, not in a client filter or sort", strings.SplitN(name, ".", 2)[0])
	}
	if (m.isset || m.changed) && !strings.HasPrefix(name, "@request.body.") {
		return nil, r.fail(id.pos, ":isset and :changed apply to @request.body fields only")
	}
	var v *value
	switch {
	case strings.HasPrefix(name, "@request."):
		v, err = r.request(id, m)
	case strings.HasPrefix(name, "@collection."):
		v, err = r.collection(id, m)
	case strings.HasPrefix(name, "@"):
		if len(id.Modifiers) > 0 {
			return nil, r.fail(id.pos, "macros take no modifiers")
		}
		return r.macro(id)
	default:
		var p *path
		p, err = r.walk(id.pos, &path{root: rootRecord, coll: r.o.Collection}, r.o.Collection, strings.Split(name, "."))
		if err == nil {
			v, err = r.pathValue(id, p, m)
		}
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// macro resolves the datetime macros against Options.Now.
func (r *resolver) macro(id *Ident) (*value, error) {
	now := r.o.Now
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	year := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	var v any
	switch id.Name {
	case "@now":
		v = underhood.FormatTime(now)
	case "@yesterday":
		v = underhood.FormatTime(now.AddDate(0, 0, -1))
	case "@tomorrow":
		v = underhood.FormatTime(now.AddDate(0, 0, 1))
	case "@todayStart":
		v = underhood.FormatTime(day)
	case "@todayEnd":
		v = underhood.FormatTime(day.AddDate(0, 0, 1).Add(-ms))
	case "@monthStart":
		v = underhood.FormatTime(month)
	case "@monthEnd":
		v = underhood.FormatTime(month.AddDate(0, 1, 0).Add(-ms))
	case "@yearStart":
		v = underhood.FormatTime(year)
	case "@yearEnd":
		v = underhood.FormatTime(year.AddDate(1, 0, 0).Add(-ms))
	case "@second":
		v = float64(now.Second())
	case "@minute":
		v = float64(now.Minute())
	case "@hour":
		v = float64(now.Hour())
	case "@day":
		v = float64(now.Day())
	case "@month":
		v = float64(now.Month())
	case "@weekday":
		v = float64(now.Weekday())
	case "@year":
		v = float64(now.Year())
	default:
		return nil, r.fail(id.pos, "unknown macro %q", id.Name)
	}
	return constValue(v, id.pos), nil
}

// viaField splits "posts_via_author" into its collection and field.
func viaField(seg string) (coll, field string, ok bool) {
	i := strings.LastIndex(seg, "_via_")
	if i <= 0 || i+5 >= len(seg) {
		return "", "", false
	}
	return seg[:i], seg[i+5:], true
}

// checkField applies the restrictions on what an expression may read.
func (r *resolver) checkField(pos int, f *underhood.Field) error {
	if f.Type == underhood.FieldPassword {
		return r.fail(pos, "field %q cannot be filtered", f.Name)
	}
	if r.o.Client && !r.o.Superuser && (f.Hidden || f.Name == "tokenKey") {
		return r.fail(pos, "unknown field %q", f.Name)
	}
	return nil
}

// hopRule decides whether a client filter may go through a relation into
// c, and returns the list rule the rows it reaches must satisfy: without
// it a filter could probe, through counts, rows the caller cannot list.
// Rules themselves are trusted and reach anything.
func (r *resolver) hopRule(pos int, c *underhood.Collection) (*resolved, error) {
	if !r.o.Client || r.o.Superuser {
		return nil, nil
	}
	refuse := &underhood.Error{Code: underhood.EForbidden, Message: "The filter reaches into collection " + strconv.Quote(c.Name) + ", which you are not allowed to list."}
	if r.o.CanList != nil && !r.o.CanList(c) || c.ListRule == nil {
		return nil, refuse
	}
	if strings.TrimSpace(*c.ListRule) == "" {
		return nil, nil
	}
	e, err := Parse(*c.ListRule)
	if err != nil {
		return nil, refuse // a broken rule denies
	}
	o := r.o
	o.Collection, o.Client, o.CanList = c, false, nil
	res, err := resolve(e, o)
	if err != nil {
		return nil, refuse
	}
	return res, nil
}

// checkDepth refuses a path that has gone through more than
// MaxRelationDepth relations, counting the one a rootIDs path starts from.
func (r *resolver) checkDepth(pos int, p *path) error {
	n := len(p.hops)
	if p.root == rootIDs {
		n++
	}
	if n <= MaxRelationDepth {
		return nil
	}
	name := "?"
	if r.at != nil {
		name = r.at.Name
	}
	return r.fail(pos, "path %q goes through more than %d relations, the most allowed", name, MaxRelationDepth)
}

// walk follows segs from collection c, adding hops to p, and sets the
// final field.
func (r *resolver) walk(pos int, p *path, c *underhood.Collection, segs []string) (*path, error) {
	for i, seg := range segs {
		last := i == len(segs)-1
		f := c.Field(seg)
		if f == nil {
			cn, fn, ok := viaField(seg)
			if !ok {
				return nil, r.fail(pos, "unknown field %q", seg)
			}
			src := r.o.Schema.FindCollection(cn)
			if src == nil {
				return nil, r.fail(pos, "unknown collection %q in %q", cn, seg)
			}
			bf := src.Field(fn)
			if bf == nil || bf.Type != underhood.FieldRelation || bf.CollectionID != c.ID {
				return nil, r.fail(pos, "%q is not a relation field of %q pointing to %q", fn, cn, c.Name)
			}
			if err := r.checkField(pos, bf); err != nil {
				return nil, err
			}
			rule, err := r.hopRule(pos, src)
			if err != nil {
				return nil, err
			}
			p.hops = append(p.hops, hop{field: bf, target: src, back: true, multi: true, rule: rule})
			if err := r.checkDepth(pos, p); err != nil {
				return nil, err
			}
			c = src
			if last {
				p.field, p.owner = src.Field("id"), src
				return p, nil
			}
			continue
		}
		if err := r.checkField(pos, f); err != nil {
			return nil, err
		}
		if last {
			p.field, p.owner = f, c
			return p, nil
		}
		switch f.Type {
		case underhood.FieldRelation:
			t := r.o.Schema.FindCollection(f.CollectionID)
			if t == nil {
				return nil, r.fail(pos, "relation %q points to a missing collection", f.Name)
			}
			rule, err := r.hopRule(pos, t)
			if err != nil {
				return nil, err
			}
			p.hops = append(p.hops, hop{field: f, target: t, multi: f.IsMulti(), rule: rule})
			if err := r.checkDepth(pos, p); err != nil {
				return nil, err
			}
			c = t
		case underhood.FieldJSON:
			p.field, p.owner, p.json = f, c, segs[i+1:]
			return p, nil
		case underhood.FieldGeoPoint:
			rest := segs[i+1:]
			if len(rest) != 1 || rest[0] != "lon" && rest[0] != "lat" {
				return nil, r.fail(pos, "a geoPoint field has only .lon and .lat")
			}
			p.field, p.owner, p.json = f, c, rest
			return p, nil
		default:
			return nil, r.fail(pos, "field %q has no sub-fields", f.Name)
		}
	}
	return nil, r.fail(pos, "empty path")
}

// pathValue applies modifiers to a walked path.
func (r *resolver) pathValue(id *Ident, p *path, m mods) (*value, error) {
	f := p.field
	v := &value{pos: id.pos, path: p, lower: m.lower}
	if p.json != nil {
		v.kind = kAny
		if m.each || m.length {
			return nil, r.fail(id.pos, ":each and :length need a multi-value field")
		}
		return v, nil
	}
	if (m.each || m.length) && !f.IsMulti() {
		return nil, r.fail(id.pos, ":each and :length need a multi-value field, %q is not one", f.Name)
	}
	p.each, p.length = m.each, m.length
	switch {
	case m.length:
		v.kind = kNumber
	case m.each:
		v.kind = kText
	default:
		v.kind = fieldKind(f)
	}
	if m.lower {
		v.kind = kText
	}
	if r.o.Client && !r.o.Superuser && f.Name == "email" && p.owner.IsAuth() {
		p.guardEmail = true
		if a := r.o.Request.Auth; a != nil && a.Collection != nil && a.Collection.ID == p.owner.ID {
			p.authID = a.ID()
		}
	}
	return v, nil
}

func fieldKind(f *underhood.Field) kind {
	switch {
	case f.Type == underhood.FieldNumber:
		return kNumber
	case f.Type == underhood.FieldBool:
		return kBool
	case f.Type == underhood.FieldJSON, f.Type == underhood.FieldGeoPoint:
		return kJSON
	case f.IsMulti():
		return kArray
	}
	return kText
}

// storedAffinity is the SQLite affinity of f's column.
func storedAffinity(f *underhood.Field) affinity {
	if fieldKind(f) == kText {
		return affText
	}
	return affNumeric
}

// collection resolves @collection.name[:alias].field...
func (r *resolver) collection(id *Ident, m mods) (*value, error) {
	rest := strings.TrimPrefix(id.Name, "@collection.")
	i := strings.IndexByte(rest, '.')
	if i < 0 {
		return nil, r.fail(id.pos, "@collection needs a field: @collection.name.field")
	}
	head, segs := rest[:i], strings.Split(rest[i+1:], ".")
	name, alias := head, head
	if j := strings.IndexByte(head, ':'); j >= 0 {
		name, alias = head[:j], head[j+1:]
		if alias == "" {
			return nil, r.fail(id.pos, "empty alias in %q", id.Name)
		}
	}
	c := r.o.Schema.FindCollection(name)
	if c == nil {
		return nil, r.fail(id.pos, "unknown collection %q", name)
	}
	var a *collAlias
	for _, x := range r.aliases {
		if x.name == alias {
			if x.coll != c {
				return nil, r.fail(id.pos, "alias %q already names collection %q", alias, x.coll.Name)
			}
			a = x
		}
	}
	if a == nil {
		a = &collAlias{name: alias, coll: c}
		r.aliases = append(r.aliases, a)
	}
	p, err := r.walk(id.pos, &path{root: rootCollection, coll: c, alias: a}, c, segs)
	if err != nil {
		return nil, err
	}
	return r.pathValue(id, p, m)
}

// request resolves @request.*.
func (r *resolver) request(id *Ident, m mods) (*value, error) {
	req := r.o.Request
	segs := strings.Split(strings.TrimPrefix(id.Name, "@request."), ".")
	plain := func(v any) (*value, error) {
		if m.length || m.each {
			return nil, r.fail(id.pos, ":each and :length need a multi-value field")
		}
		return lowered(constValue(v, id.pos), m.lower), nil
	}
	switch segs[0] {
	case "context":
		if len(segs) != 1 {
			break
		}
		ctx := req.Context
		if ctx == "" {
			ctx = "default"
		}
		return plain(ctx)
	case "method":
		if len(segs) != 1 {
			break
		}
		return plain(req.Method)
	case "headers", "query":
		if len(segs) != 2 {
			break
		}
		src, k := req.Query, segs[1]
		if segs[0] == "headers" {
			src, k = req.Headers, strings.ToLower(strings.ReplaceAll(k, "-", "_"))
		}
		if s, ok := src[k]; ok {
			return plain(s)
		}
		return plain(nil)
	case "body":
		if len(segs) < 2 {
			break
		}
		return r.body(id, segs[1:], m)
	case "auth":
		if len(segs) < 2 {
			break
		}
		return r.auth(id, segs[1:], m)
	}
	return nil, r.fail(id.pos, "unknown request property %q", id.Name)
}

func lowered(v *value, lower bool) *value {
	if !lower {
		return v
	}
	switch x := v.v.(type) {
	case string:
		v.v = asciiLower(x)
	case float64:
		v.v = formatNumber(x)
	case bool:
		v.v = formatNumber(boolNumber(x))
	}
	if v.v != nil {
		v.kind = kText
	}
	return v
}

// body resolves @request.body.X[...], with X coerced to the type of the
// collection's field X when there is one.
func (r *resolver) body(id *Ident, segs []string, m mods) (*value, error) {
	c := r.o.Collection
	raw, present := r.o.Request.Body[segs[0]]
	f := c.Field(segs[0])
	if f != nil && f.Type == underhood.FieldPassword && !(m.isset && len(segs) == 1) {
		return nil, r.fail(id.pos, "field %q cannot be filtered", f.Name)
	}
	if m.isset {
		if len(segs) != 1 || m.changed || m.each || m.length || m.lower {
			return nil, r.fail(id.pos, ":isset applies to a top-level body field and stands alone")
		}
		return constValue(present, id.pos), nil
	}
	if m.changed {
		if len(segs) != 1 || f == nil || m.each || m.length || m.lower {
			return nil, r.fail(id.pos, ":changed applies to a field of the collection and stands alone")
		}
		bv := constValue(bodyConst(f, raw), id.pos)
		p := &path{root: rootRecord, coll: c, field: f, owner: c}
		return &value{kind: kBool, pos: id.pos, changed: &changed{isset: present, body: bv, field: p}}, nil
	}
	return r.known(id, c, f, raw, segs, m)
}

// auth resolves @request.auth.X[...] from the caller's record.
func (r *resolver) auth(id *Ident, segs []string, m mods) (*value, error) {
	a := r.o.Request.Auth
	if a == nil || a.Collection == nil {
		// a guest: every property is empty, and the id is ""
		if segs[0] == "id" && len(segs) == 1 {
			return lowered(constValue("", id.pos), m.lower), nil
		}
		if m.length {
			return constValue(float64(0), id.pos), nil
		}
		if m.each {
			return &value{kind: kText, pos: id.pos, list: []any{}}, nil
		}
		return constValue(nil, id.pos), nil
	}
	switch segs[0] {
	case "collectionId":
		return lowered(constValue(a.Collection.ID, id.pos), m.lower), nil
	case "collectionName":
		return lowered(constValue(a.Collection.Name, id.pos), m.lower), nil
	}
	f := a.Collection.Field(segs[0])
	if f == nil {
		return nil, r.fail(id.pos, "unknown field %q of @request.auth", segs[0])
	}
	if f.Type == underhood.FieldPassword {
		return nil, r.fail(id.pos, "field %q cannot be filtered", f.Name)
	}
	return r.known(id, a.Collection, f, a.Data[f.Name], segs, m)
}

// known resolves a path whose first field f (of c, possibly nil) has the
// known value raw: the first hop of a relation starts from its ids.
func (r *resolver) known(id *Ident, c *underhood.Collection, f *underhood.Field, raw any, segs []string, m mods) (*value, error) {
	if f != nil {
		raw = bodyConst(f, raw)
	}
	if len(segs) > 1 {
		switch {
		case f != nil && f.Type == underhood.FieldRelation:
			t := r.o.Schema.FindCollection(f.CollectionID)
			if t == nil {
				return nil, r.fail(id.pos, "relation %q points to a missing collection", f.Name)
			}
			ids := stringList(raw)
			p := &path{root: rootIDs, coll: t, ids: ids, multiI: f.IsMulti()}
			p, err := r.walk(id.pos, p, t, segs[1:])
			if err != nil {
				return nil, err
			}
			return r.pathValue(id, p, m)
		case f == nil || f.Type == underhood.FieldJSON:
			v, ok := extractConst(raw, segs[1:])
			if !ok {
				v = nil
			}
			return r.constMods(id, v, m)
		}
		return nil, r.fail(id.pos, "field %q has no sub-fields", segs[0])
	}
	return r.constMods(id, raw, m)
}

// constMods applies :each, :length and :lower to a known value.
func (r *resolver) constMods(id *Ident, raw any, m mods) (*value, error) {
	switch {
	case m.length:
		list, ok := arrayOf(raw)
		if !ok {
			return nil, r.fail(id.pos, ":length needs a multi-value field")
		}
		return constValue(float64(len(list)), id.pos), nil
	case m.each:
		list, ok := arrayOf(raw)
		if !ok {
			return nil, r.fail(id.pos, ":each needs a multi-value field")
		}
		out := make([]any, len(list))
		for i, x := range list {
			out[i] = lowered(constValue(sqlConst(x), id.pos), m.lower).v
		}
		return &value{kind: kAny, pos: id.pos, list: out}, nil
	}
	v := constValue(sqlConst(raw), id.pos)
	if _, isArray := raw.([]string); isArray {
		v.kind = kArray
	}
	return lowered(v, m.lower), nil
}

// bodyConst normalises a submitted or stored value to the Go form of f's
// type, as far as it can; anything else is returned unchanged.
func bodyConst(f *underhood.Field, raw any) any {
	switch {
	case raw == nil:
		if f.IsMulti() {
			return []string{}
		}
		return nil
	case f.IsMulti():
		return stringList(raw)
	case f.Type == underhood.FieldNumber:
		switch x := raw.(type) {
		case string:
			if n, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return n
			}
		case json.Number:
			if n, err := x.Float64(); err == nil {
				return n
			}
		case int:
			return float64(x)
		case int64:
			return float64(x)
		}
	case f.Type == underhood.FieldBool:
		if s, ok := raw.(string); ok {
			switch strings.ToLower(s) {
			case "true", "1", "on":
				return true
			case "false", "0", "", "off":
				return false
			}
		}
	case f.Type == underhood.FieldJSON:
		if b, ok := raw.(json.RawMessage); ok {
			var x any
			if json.Unmarshal(b, &x) == nil {
				return x
			}
		}
	case f.Type == underhood.FieldGeoPoint:
		if g, ok := raw.(underhood.GeoPoint); ok {
			return map[string]any{"lon": g.Lon, "lat": g.Lat}
		}
	case f.Type != underhood.FieldJSON:
		if l, ok := raw.([]any); ok && len(l) > 0 {
			return sqlConst(l[len(l)-1])
		}
		if l, ok := raw.([]string); ok && len(l) > 0 {
			return l[len(l)-1]
		}
	}
	return raw
}

// stringList reads a relation or select value as a list of strings.
func stringList(raw any) []string {
	switch x := raw.(type) {
	case nil:
		return nil
	case string:
		if x == "" {
			return nil
		}
		if strings.HasPrefix(x, "[") {
			var l []string
			if json.Unmarshal([]byte(x), &l) == nil {
				return l
			}
		}
		return []string{x}
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func arrayOf(raw any) ([]any, bool) {
	switch x := raw.(type) {
	case []any:
		return x, true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case nil:
		return []any{}, true
	}
	return nil, false
}

// sqlConst converts a Go value to the value the SQL side binds: nil,
// string, float64 or bool; arrays and objects become compact JSON text.
func sqlConst(raw any) any {
	switch x := raw.(type) {
	case nil, string, float64, bool:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case json.RawMessage:
		var v any
		if json.Unmarshal(x, &v) != nil {
			return string(x)
		}
		return sqlConst(v)
	case underhood.GeoPoint:
		b, _ := json.Marshal(x)
		return string(b)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	return string(b)
}

// extractConst walks keys into a decoded JSON value.
func extractConst(raw any, keys []string) (any, bool) {
	cur := raw
	if b, ok := cur.(json.RawMessage); ok {
		if json.Unmarshal(b, &cur) != nil {
			return nil, false
		}
	}
	for _, k := range keys {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[k]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// asciiLower lower-cases ASCII letters only, as SQLite's lower() does.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

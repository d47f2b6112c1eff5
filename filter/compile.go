package filter

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
)

// Compile compiles e for the collection and caller in o into a condition
// on the collection's table. Every value from the expression or the
// request is a bind parameter; the SQL text holds only identifiers,
// keywords and placeholders. Relations become correlated subqueries, so the
// condition can be ANDed into any query on the table.
func Compile(e Expr, o Options) (*SQL, error) {
	if o.Dialect == nil {
		return nil, errAt("filter", 1, "no SQL dialect")
	}
	res, err := resolve(e, o)
	if err != nil {
		return nil, err
	}
	c := newCompiler(o)
	where := c.resolved(res)
	return &SQL{where: where, Args: c.args}, nil
}

// resolved compiles a whole resolved expression.
func (c *compiler) resolved(res *resolved) string {
	where := c.node(res.root)
	if len(res.aliases) == 0 {
		return where
	}
	// PocketBase joins @collection tables to the record: conditions on one
	// alias talk about the same row. EXISTS over a LEFT JOIN of every alias
	// does the same without duplicating records.
	var b strings.Builder
	b.WriteString("EXISTS (SELECT NULL FROM (SELECT NULL AS x) AS ")
	b.WriteString(c.d.Quote("uh_d"))
	for _, a := range res.aliases {
		b.WriteString(" LEFT JOIN ")
		b.WriteString(c.d.Quote(a.coll.Name))
		b.WriteString(" AS ")
		b.WriteString(c.aliasSQL(a))
		b.WriteString(" ON TRUE")
	}
	b.WriteString(" WHERE ")
	b.WriteString(where)
	b.WriteString(")")
	return b.String()
}

// nested compiles a resolved rule about the row aliased alias (a list
// rule applied to the rows a relation hop reaches), numbering its
// placeholders after c's.
func (c *compiler) nested(res *resolved, alias string) string {
	child := &compiler{o: c.o, d: c.d, args: c.args, n: c.n, aliases: map[*collAlias]string{}, empty: c.empty, root: alias}
	where := child.resolved(res)
	c.args, c.n, c.empty = child.args, child.n, child.empty
	return where
}

type compiler struct {
	o       Options
	d       Dialect
	args    []any
	n       int
	aliases map[*collAlias]string
	empty   string // placeholder bound to ""
	root    string // the SQL alias of the record; "" is Options.Alias
}

// rootAlias is the SQL alias of the record the expression is about.
func (c *compiler) rootAlias() string {
	if c.root != "" {
		return c.root
	}
	return c.d.Quote(c.o.Alias)
}

func newCompiler(o Options) *compiler {
	if o.Alias == "" {
		o.Alias = "r"
	}
	return &compiler{o: o, d: o.Dialect, aliases: map[*collAlias]string{}}
}

// bind adds a bind parameter and returns its placeholder. Integral
// numbers are bound as integers, as SQLite stores them.
func (c *compiler) bind(v any) string {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		v = int64(f)
	}
	c.args = append(c.args, v)
	return paramMark(len(c.args) - 1)
}

// constType is the SQL type of a bound constant.
func constType(v any) Type {
	switch v.(type) {
	case string:
		return TypeText
	case float64, int64:
		return TypeNumber
	case bool:
		return TypeBool
	}
	return TypeAny
}

// fieldType is the SQL type of f's column.
func fieldType(f *underhood.Field) Type {
	switch fieldKind(f) {
	case kText:
		return TypeText
	case kNumber:
		return TypeNumber
	case kBool:
		return TypeBool
	}
	return TypeJSON
}

func (c *compiler) emptyString() string {
	if c.empty == "" {
		c.empty = c.bind("")
	}
	return c.empty
}

// alias returns a new table alias.
func (c *compiler) alias(prefix string) string {
	c.n++
	return c.d.Quote("uh_" + prefix + strconv.Itoa(c.n))
}

func (c *compiler) aliasSQL(a *collAlias) string {
	s, ok := c.aliases[a]
	if !ok {
		s = c.alias("c")
		c.aliases[a] = s
	}
	return s
}

func (c *compiler) col(alias, name string) string { return alias + "." + c.d.Quote(name) }

func (c *compiler) node(n node) string {
	switch n := n.(type) {
	case *logic:
		op := " AND "
		if n.or {
			op = " OR "
		}
		return "(" + c.node(n.l) + op + c.node(n.r) + ")"
	case *cmp:
		return c.compare(n)
	}
	return ""
}

// source is the FROM items of a multi-valued operand and its value.
type source struct {
	from  []string
	where []string
	val   string
}

// sqlValue is a compiled operand.
type sqlValue struct {
	expr     string
	src      *source // set for a multi-valued operand; expr is src.val
	typ      Type
	aff      affinity
	nullable bool
}

// operand is v as a Dialect sees it.
func (v sqlValue) operand() SQLValue {
	return SQLValue{SQL: v.expr, Type: v.typ, Affinity: v.aff}
}

func (c *compiler) value(v *value) sqlValue {
	aff, nullable := v.info()
	out := sqlValue{aff: aff, nullable: nullable}
	switch {
	case v.constant:
		out.expr = c.bind(v.v)
		out.typ = constType(v.v)
	case v.list != nil:
		b, _ := json.Marshal(v.list)
		j := c.alias("j")
		out.src = &source{from: []string{c.d.JSONValues(c.bind(string(b)), j)}, val: j + ".value"}
		out.expr = out.src.val
	case v.call != nil:
		out.expr, out.typ = c.call(v.call)
	case v.changed != nil:
		ch := v.changed
		out.typ = TypeBool
		if !ch.isset {
			out.expr = c.bind(false)
			break
		}
		col := SQLValue{SQL: c.col(c.rootAlias(), ch.field.field.Name), Type: fieldType(ch.field.field)}
		empty := c.emptyString()
		cur := c.d.Coalesce(col, empty)
		// sqlConst: a multi-value or json body value is compared as the
		// JSON text the column holds (and a driver cannot bind a slice).
		body := sqlConst(ch.body.v)
		next := c.d.Coalesce(SQLValue{SQL: c.bind(body), Type: constType(body)}, empty)
		out.expr = "(" + c.d.Compare("<>", cur, next) + ")"
	default:
		out = c.path(v.path, aff, nullable)
		if v.lower {
			out.expr = c.d.Lower(out.operand())
			out.typ = TypeText
			if out.src != nil {
				out.src.val = out.expr
			}
		}
	}
	return out
}

// path compiles a column reached through relation hops.
func (c *compiler) path(p *path, aff affinity, nullable bool) sqlValue {
	var from, where []string
	var cur string
	switch p.root {
	case rootRecord:
		cur = c.rootAlias()
	case rootCollection:
		cur = c.aliasSQL(p.alias)
	case rootIDs:
		t := c.alias("t")
		if p.multiI {
			b, _ := json.Marshal(p.ids)
			if p.ids == nil {
				b = []byte("[]")
			}
			j := c.alias("j")
			from = append(from, c.d.JSONEach(c.bind(string(b)), j), c.d.Quote(p.coll.Name)+" AS "+t)
			where = append(where, c.col(t, "id")+" = "+j+".value")
		} else {
			id := ""
			if len(p.ids) > 0 {
				id = p.ids[0]
			}
			from = append(from, c.d.Quote(p.coll.Name)+" AS "+t)
			where = append(where, c.col(t, "id")+" = "+c.bind(id))
		}
		cur = t
	}
	for _, h := range p.hops {
		t := c.alias("t")
		table := c.d.Quote(h.target.Name) + " AS " + t
		switch {
		case h.back && h.field.IsMulti():
			j := c.alias("j")
			from = append(from, table)
			where = append(where, "EXISTS (SELECT NULL FROM "+c.d.JSONEach(c.col(t, h.field.Name), j)+" WHERE "+j+".value = "+c.col(cur, "id")+")")
		case h.back:
			from = append(from, table)
			where = append(where, c.col(t, h.field.Name)+" = "+c.col(cur, "id"))
		case h.multi:
			j := c.alias("j")
			from = append(from, c.d.JSONEach(c.col(cur, h.field.Name), j), table)
			where = append(where, c.col(t, "id")+" = "+j+".value")
		default:
			from = append(from, table)
			where = append(where, c.col(t, "id")+" = "+c.col(cur, h.field.Name))
		}
		if h.rule != nil {
			where = append(where, "("+c.nested(h.rule, t)+")")
		}
		cur = t
	}
	col := c.col(cur, p.field.Name)
	val, typ := col, fieldType(p.field)
	switch {
	case p.guardEmail:
		// The caller sees its own email: a record of the same collection
		// (p.authID is empty otherwise) with the same id.
		visible := c.col(cur, "emailVisibility")
		if p.authID != "" {
			visible += " OR " + c.col(cur, "id") + " = " + c.bind(p.authID)
		}
		val = "(CASE WHEN " + visible + " THEN " + col + " ELSE NULL END)"
	case p.json != nil:
		val, typ = c.d.JSONExtract(col, c.bind(c.d.JSONPath(p.json))), TypeAny
	case p.length:
		val, typ = c.d.JSONArrayLength(col), TypeNumber
	case p.each:
		j := c.alias("j")
		from = append(from, c.d.JSONEach(col, j))
		val, typ = j+".value", TypeText
	}
	out := sqlValue{typ: typ, aff: aff, nullable: nullable}
	switch {
	case len(from) == 0:
		out.expr = val
	case p.multi():
		out.src = &source{from: from, where: where, val: val}
		out.expr = val
	default:
		out.expr = "(SELECT " + val + " FROM " + strings.Join(from, ", ") + whereClause(where) + ")"
	}
	return out
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// geoRadius is the mean radius of the Earth in kilometres.
const geoRadius = 6371.0

// call compiles a function call and returns its SQL type.
func (c *compiler) call(x *call) (string, Type) {
	args := make([]SQLValue, len(x.args))
	for i, a := range x.args {
		args[i] = c.value(a).operand()
	}
	if x.name == "strftime" {
		return c.d.Strftime(args), TypeText
	}
	// haversine distance in kilometres
	lonA, latA, lonB, latB := c.d.Number(args[0]), c.d.Number(args[1]), c.d.Number(args[2]), c.d.Number(args[3])
	two := c.bind(2)
	rad := func(s string) string { return "radians(" + s + ")" }
	return "(" + c.bind(geoRadius) + " * " + two + " * asin(sqrt(power(sin((" + rad(latB) + " - " + rad(latA) + ") / " + two + "), " + two +
		") + cos(" + rad(latA) + ") * cos(" + rad(latB) + ") * power(sin((" + rad(lonB) + " - " + rad(lonA) + ") / " + two + "), " + two + "))))", TypeNumber
}

// compare compiles one comparison, with the ALL/ANY semantics of
// multi-valued operands and of @collection joins.
func (c *compiler) compare(x *cmp) string {
	out := c.compareRows(x)
	if x.any {
		return out
	}
	// A plain operator on an @collection field must hold for every row of
	// that collection, not only for the joined one.
	for _, a := range cmpAliases(x) {
		saved := c.aliases[a]
		mm := c.alias("m")
		c.aliases[a] = mm
		cond := c.compareRows(x)
		c.aliases[a] = saved
		out = "(" + out + " AND NOT EXISTS (SELECT NULL FROM " + c.d.Quote(a.coll.Name) + " AS " + mm + " WHERE (" + cond + ") IS NOT TRUE))"
	}
	return out
}

func (c *compiler) compareRows(x *cmp) string {
	l := c.value(x.l)
	var r sqlValue
	if like := x.op == "~" || x.op == "!~"; !like || !x.r.constant {
		// The constant right side of "~" is bound as a pattern instead:
		// binding it too would leave a parameter the SQL never uses.
		r = c.value(x.r)
	}
	cond := c.condition(x, l, r)
	if l.src == nil && r.src == nil {
		return cond
	}
	var from, where []string
	for _, s := range []*source{l.src, r.src} {
		if s != nil {
			from = append(from, s.from...)
			where = append(where, s.where...)
		}
	}
	items := strings.Join(from, ", ")
	if x.any {
		return "EXISTS (SELECT NULL FROM " + items + whereClause(append(where, cond)) + ")"
	}
	// ALL: every value matches; no values compare as one NULL.
	nl, nr := l, r
	if l.src != nil {
		nl = sqlValue{expr: "NULL", typ: TypeAny, nullable: true}
	}
	if r.src != nil {
		nr = sqlValue{expr: "NULL", typ: TypeAny, nullable: true}
	}
	return "(CASE WHEN EXISTS (SELECT NULL FROM " + items + whereClause(where) + ") THEN NOT EXISTS (SELECT NULL FROM " + items +
		whereClause(append(where, "("+cond+") IS NOT TRUE")) + ") ELSE " + c.condition(x, nl, nr) + " END)"
}

// condition compiles "l op r" for single values.
func (c *compiler) condition(x *cmp, l, r sqlValue) string {
	switch x.op {
	case "=", "!=":
		lo, ro := l.operand(), r.operand()
		if l.nullable || r.nullable {
			lo = c.d.Coalesce(lo, c.emptyString())
			ro = c.d.Coalesce(ro, c.emptyString())
		}
		if x.op == "=" {
			return c.d.Compare("=", lo, ro)
		}
		return c.d.Compare("<>", lo, ro)
	case "~", "!~":
		lo := l.operand()
		if l.nullable {
			lo = c.d.Coalesce(lo, c.emptyString())
		}
		var pattern string
		if x.r.constant {
			pattern = c.bind(likePattern(textOf(x.r.v)))
		} else {
			ro := r.operand()
			if r.nullable {
				ro = c.d.Coalesce(ro, c.emptyString())
			}
			pct := c.bind("%")
			pattern = "(" + pct + " || " + c.d.Text(ro) + " || " + pct + ")"
		}
		return c.d.Like(c.d.Text(lo), pattern, c.bind(`\`), x.op == "!~")
	}
	return c.d.Compare(x.op, l.operand(), r.operand())
}

// textOf renders a constant as SQLite renders it as text.
func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return formatNumber(x)
	case bool:
		return formatNumber(boolNumber(x))
	}
	return ""
}

// CompileSort compiles a comma-separated sort ("-created,title",
// "@random", "@rowid") into an ORDER BY list (without the keywords). Each term is a single-valued
// field path, optionally with :lower; at most 8 terms.
func CompileSort(src string, o Options) (*SQL, error) {
	if o.Dialect == nil {
		return nil, errAt("sort", 1, "no SQL dialect")
	}
	if o.Collection == nil {
		return nil, errAt("sort", 1, "no collection")
	}
	r := newResolver(o, "sort")
	c := newCompiler(o)
	var terms []string
	pos := 1
	for i, raw := range strings.Split(src, ",") {
		start := pos + len(raw) - len(strings.TrimLeft(raw, " \t\n"))
		pos += len(raw) + 1
		term := strings.TrimSpace(raw)
		if i >= 8 {
			return nil, errAt("sort", start, "at most 8 sort terms are allowed")
		}
		if term == "" {
			return nil, errAt("sort", start, "empty sort term")
		}
		dir := " ASC"
		switch term[0] {
		case '-':
			dir, term = " DESC", term[1:]
		case '+':
			term = term[1:]
		}
		switch term {
		case "@random":
			terms = append(terms, c.d.Random())
			continue
		case "@rowid":
			terms = append(terms, c.d.RowID(c.d.Quote(c.o.Alias))+dir)
			continue
		}
		for j := 0; j < len(term); j++ {
			if !isIdentPart(term[j]) {
				return nil, errAt("sort", start, "invalid sort field %q", term)
			}
		}
		if term == "" || !isIdentStart(term[0]) {
			return nil, errAt("sort", start, "invalid sort field %q", term)
		}
		id, err := parseIdent(token{kind: tIdent, text: term, pos: start})
		if err != nil {
			return nil, errAt("sort", start, "invalid sort field %q", term)
		}
		v, err := r.ident(id)
		if err != nil {
			return nil, err
		}
		if v.multi() || v.constant || v.list != nil {
			return nil, errAt("sort", start, "cannot sort by %q: it is not a single field value", term)
		}
		if len(r.aliases) > 0 {
			return nil, errAt("sort", start, "cannot sort by an @collection field")
		}
		val := c.value(v)
		terms = append(terms, c.d.Order(val.operand(), val.nullable, dir == " DESC"))
	}
	return &SQL{where: strings.Join(terms, ", "), Args: c.args}, nil
}

// errNoLoader is returned by Match when an expression needs related
// records and no Loader was given.
var errNoLoader = &underhood.Error{Code: underhood.EInternal, Message: "filter: related records are needed but no loader was given"}

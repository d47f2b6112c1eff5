package filter

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/underhood/underhood"
)

// Match reports whether record r satisfies e for the caller in o, with the
// semantics of the SQL Compile produces (SQLite's comparison and affinity
// rules included). Related records and @collection rows come from l, which
// may be nil when e reads neither.
func Match(ctx context.Context, e Expr, o Options, r *underhood.Record, l Loader) (bool, error) {
	res, err := resolve(e, o)
	if err != nil {
		return false, err
	}
	m := &matcher{ctx: ctx, o: res, l: l, rec: r, rows: map[*collAlias]*underhood.Record{}, all: map[*collAlias][]*underhood.Record{}}
	if a := o.Request; a != nil && a.Auth != nil {
		m.authID = a.Auth.ID()
	}
	if len(res.aliases) == 0 {
		return m.node(res.root)
	}
	for _, a := range res.aliases {
		if _, err := m.allRows(a); err != nil {
			return false, err
		}
	}
	return m.product(res.aliases, res.root)
}

type matcher struct {
	ctx    context.Context
	o      *resolved
	l      Loader
	rec    *underhood.Record
	authID string
	rows   map[*collAlias]*underhood.Record // the current @collection row of each alias
	all    map[*collAlias][]*underhood.Record
}

func (m *matcher) allRows(a *collAlias) ([]*underhood.Record, error) {
	if rows, ok := m.all[a]; ok {
		return rows, nil
	}
	if m.l == nil {
		return nil, errNoLoader
	}
	rows, err := m.l.All(m.ctx, a.coll)
	if err != nil {
		return nil, err
	}
	m.all[a] = rows
	return rows, nil
}

// product tries every combination of @collection rows (a missing row
// when a collection is empty, as a LEFT JOIN gives).
func (m *matcher) product(aliases []*collAlias, n node) (bool, error) {
	if len(aliases) == 0 {
		return m.node(n)
	}
	a := aliases[0]
	rows := m.all[a]
	if len(rows) == 0 {
		rows = []*underhood.Record{nil}
	}
	for _, row := range rows {
		m.rows[a] = row
		ok, err := m.product(aliases[1:], n)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func (m *matcher) node(n node) (bool, error) {
	switch n := n.(type) {
	case *logic:
		l, err := m.node(n.l)
		if err != nil {
			return false, err
		}
		if l == n.or {
			return l, nil
		}
		return m.node(n.r)
	case *cmp:
		return m.compare(n)
	}
	return false, nil
}

func (m *matcher) compare(x *cmp) (bool, error) {
	ok, err := m.compareRows(x)
	if err != nil || !ok || x.any {
		return ok, err
	}
	for _, a := range cmpAliases(x) {
		rows, err := m.allRows(a)
		if err != nil {
			return false, err
		}
		saved := m.rows[a]
		for _, row := range rows {
			m.rows[a] = row
			ok, err := m.compareRows(x)
			if err != nil || !ok {
				m.rows[a] = saved
				return false, err
			}
		}
		m.rows[a] = saved
	}
	return true, nil
}

// operand is an evaluated value: one value, or many.
type operand struct {
	vals     []any // nil, float64 or string each
	multi    bool
	aff      affinity
	nullable bool
}

func (m *matcher) compareRows(x *cmp) (bool, error) {
	l, err := m.value(x.l)
	if err != nil {
		return false, err
	}
	r, err := m.value(x.r)
	if err != nil {
		return false, err
	}
	if !l.multi && !r.multi {
		return m.test(x, l, r, l.vals[0], r.vals[0]), nil
	}
	if x.any {
		for _, a := range l.vals {
			for _, b := range r.vals {
				if m.test(x, l, r, a, b) {
					return true, nil
				}
			}
		}
		return false, nil
	}
	if len(l.vals) == 0 || len(r.vals) == 0 {
		nl, nr := l, r
		var a, b any
		if l.multi {
			nl = operand{nullable: true}
		} else {
			a = l.vals[0]
		}
		if r.multi {
			nr = operand{nullable: true}
		} else {
			b = r.vals[0]
		}
		return m.test(x, nl, nr, a, b), nil
	}
	for _, a := range l.vals {
		for _, b := range r.vals {
			if !m.test(x, l, r, a, b) {
				return false, nil
			}
		}
	}
	return true, nil
}

// test evaluates "a op b" as the compiled SQL does.
func (m *matcher) test(x *cmp, l, r operand, a, b any) bool {
	switch x.op {
	case "=", "!=":
		la, ra := l.aff, r.aff
		if l.nullable || r.nullable {
			la, ra = affNone, affNone
			if a == nil {
				a = ""
			}
			if b == nil {
				b = ""
			}
		}
		c, ok := sqlCompare(a, b, la, ra)
		if !ok {
			return false
		}
		return (c == 0) == (x.op == "=")
	case "~", "!~":
		if a == nil && l.nullable {
			a = ""
		}
		if a == nil {
			return false
		}
		var pattern string
		if x.r.constant {
			pattern = likePattern(textOf(x.r.v))
		} else {
			if b == nil && r.nullable {
				b = ""
			}
			if b == nil {
				return false
			}
			pattern = "%" + sqlText(b) + "%"
		}
		return like(sqlText(a), pattern) == (x.op == "~")
	}
	c, ok := sqlCompare(a, b, l.aff, r.aff)
	if !ok {
		return false
	}
	switch x.op {
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	}
	return false
}

func (m *matcher) value(v *value) (operand, error) {
	aff, nullable := v.info()
	out := operand{aff: aff, nullable: nullable}
	switch {
	case v.constant:
		out.vals = []any{sqlScalar(v.v)}
	case v.list != nil:
		out.multi = true
		out.vals = make([]any, len(v.list))
		for i, x := range v.list {
			out.vals[i] = sqlScalar(x)
		}
	case v.call != nil:
		x, err := m.call(v.call)
		if err != nil {
			return out, err
		}
		out.vals = []any{x}
	case v.changed != nil:
		ch := v.changed
		if !ch.isset {
			out.vals = []any{float64(0)}
			break
		}
		cur := storedValue(m.rec, ch.field.field)
		if cur == nil {
			cur = ""
		}
		body := sqlScalar(ch.body.v)
		if body == nil {
			body = ""
		}
		c, _ := sqlCompare(cur, body, affNone, affNone)
		out.vals = []any{boolNumber(c != 0)}
	default:
		vals, err := m.path(v.path)
		if err != nil {
			return out, err
		}
		if v.lower {
			for i, x := range vals {
				if x != nil {
					vals[i] = asciiLower(sqlText(x))
				}
			}
		}
		out.multi = v.path.multi()
		if !out.multi && len(vals) == 0 {
			vals = []any{nil}
		}
		out.vals = vals
	}
	return out, nil
}

// path evaluates a path to its values (at most one unless it is multi).
func (m *matcher) path(p *path) ([]any, error) {
	var recs []*underhood.Record
	switch p.root {
	case rootRecord:
		recs = []*underhood.Record{m.rec}
	case rootCollection:
		recs = []*underhood.Record{m.rows[p.alias]}
	case rootIDs:
		ids := p.ids
		if !p.multiI && len(ids) > 1 {
			ids = ids[:1]
		}
		var err error
		if recs, err = m.get(p.coll, ids); err != nil {
			return nil, err
		}
	}
	for _, h := range p.hops {
		var next []*underhood.Record
		for _, r := range recs {
			if r == nil {
				continue
			}
			var got []*underhood.Record
			var err error
			if h.back {
				if m.l == nil {
					return nil, errNoLoader
				}
				got, err = m.l.Via(m.ctx, h.target, h.field, r.ID())
			} else {
				got, err = m.get(h.target, r.Strings(h.field.Name))
			}
			if err != nil {
				return nil, err
			}
			for _, g := range got {
				if h.rule != nil {
					ok, err := m.matchRule(h.rule, g)
					if err != nil {
						return nil, err
					}
					if !ok {
						continue
					}
				}
				next = append(next, g)
			}
		}
		recs = next
	}
	var out []any
	for _, r := range recs {
		if r == nil {
			out = append(out, nil)
			continue
		}
		v := storedValue(r, p.field)
		switch {
		case p.guardEmail:
			// p.authID is set only for a caller of the same collection.
			if !r.Bool("emailVisibility") && (p.authID == "" || r.ID() != p.authID) {
				v = nil
			}
			out = append(out, v)
		case p.json != nil:
			out = append(out, extractJSON(r.Data[p.field.Name], p.json))
		case p.length:
			out = append(out, float64(len(r.Strings(p.field.Name))))
		case p.each:
			for _, s := range r.Strings(p.field.Name) {
				out = append(out, s)
			}
		default:
			out = append(out, v)
		}
	}
	if !p.multi() && len(out) > 1 {
		out = out[:1]
	}
	return out, nil
}

// matchRule reports whether rec satisfies a resolved rule.
func (m *matcher) matchRule(res *resolved, rec *underhood.Record) (bool, error) {
	child := &matcher{ctx: m.ctx, o: res, l: m.l, rec: rec, authID: m.authID, rows: map[*collAlias]*underhood.Record{}, all: map[*collAlias][]*underhood.Record{}}
	if len(res.aliases) == 0 {
		return child.node(res.root)
	}
	for _, a := range res.aliases {
		if _, err := child.allRows(a); err != nil {
			return false, err
		}
	}
	return child.product(res.aliases, res.root)
}

func (m *matcher) get(c *underhood.Collection, ids []string) ([]*underhood.Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if m.l == nil {
		return nil, errNoLoader
	}
	return m.l.Get(m.ctx, c, ids)
}

func (m *matcher) call(x *call) (any, error) {
	args := make([]any, len(x.args))
	for i, a := range x.args {
		v, err := m.value(a)
		if err != nil {
			return nil, err
		}
		args[i] = v.vals[0]
	}
	if x.name == "strftime" {
		return strftime(args[0], args[1], args[2:]), nil
	}
	var f [4]float64
	for i, a := range args {
		n, ok := mathArg(a)
		if !ok {
			return nil, nil
		}
		f[i] = n * math.Pi / 180
	}
	lonA, latA, lonB, latB := f[0], f[1], f[2], f[3]
	h := math.Pow(math.Sin((latB-latA)/2), 2) + math.Cos(latA)*math.Cos(latB)*math.Pow(math.Sin((lonB-lonA)/2), 2)
	return geoRadius * 2 * math.Asin(math.Sqrt(h)), nil
}

// mathArg converts a value as SQLite's math functions do.
func mathArg(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		if f, ok := numericText(x); ok {
			return f, true
		}
	}
	return 0, false
}

// storedValue is f's value in r as the database holds it: nil, float64
// (numbers and booleans) or string (text, JSON).
func storedValue(r *underhood.Record, f *underhood.Field) any {
	v := r.Data[f.Name]
	if f.IsMulti() {
		b, _ := json.Marshal(r.Strings(f.Name))
		if len(r.Strings(f.Name)) == 0 {
			b = []byte("[]")
		}
		return string(b)
	}
	switch x := v.(type) {
	case nil:
		switch f.Type {
		case underhood.FieldJSON:
			return nil
		case underhood.FieldNumber, underhood.FieldBool:
			return float64(0)
		}
		return ""
	case json.RawMessage:
		if len(x) == 0 || string(x) == "null" {
			return nil
		}
		return string(x)
	case []string:
		if len(x) == 0 {
			return ""
		}
		return x[len(x)-1]
	}
	return sqlScalar(v)
}

// sqlScalar converts a Go value to what SQL would hold: booleans as 1/0,
// integers as numbers, arrays and objects as JSON text.
func sqlScalar(v any) any {
	switch x := v.(type) {
	case nil, string, float64:
		return x
	case bool:
		return boolNumber(x)
	}
	return sqlConst(v)
}

// extractJSON mirrors json_extract on a stored JSON value.
func extractJSON(raw any, keys []string) any {
	var b []byte
	switch x := raw.(type) {
	case json.RawMessage:
		b = x
	case string:
		b = []byte(x)
	case underhood.GeoPoint:
		b, _ = json.Marshal(x)
	case nil:
		return nil
	default:
		b, _ = json.Marshal(x)
	}
	cur := json.RawMessage(b)
	for _, k := range keys {
		cur = bytes.TrimSpace(cur)
		if len(cur) == 0 {
			return nil
		}
		switch cur[0] {
		case '{':
			var obj map[string]json.RawMessage
			if json.Unmarshal(cur, &obj) != nil {
				return nil
			}
			next, ok := obj[k]
			if !ok {
				return nil
			}
			cur = next
		case '[':
			i, err := strconv.Atoi(k)
			if err != nil || strings.HasPrefix(k, "-") {
				return nil
			}
			var arr []json.RawMessage
			if json.Unmarshal(cur, &arr) != nil || i >= len(arr) {
				return nil
			}
			cur = arr[i]
		default:
			return nil
		}
	}
	cur = bytes.TrimSpace(cur)
	if len(cur) == 0 {
		return nil
	}
	switch cur[0] {
	case '{', '[':
		var out bytes.Buffer
		if json.Compact(&out, cur) != nil {
			return nil
		}
		return out.String()
	case '"':
		var s string
		if json.Unmarshal(cur, &s) != nil {
			return nil
		}
		return s
	case 't':
		return float64(1)
	case 'f':
		return float64(0)
	case 'n':
		return nil
	}
	f, err := strconv.ParseFloat(string(cur), 64)
	if err != nil {
		return nil
	}
	return f
}

// sqlText renders a value as SQLite's CAST(x AS TEXT) does.
func sqlText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', 15, 64)
	}
	return ""
}

// numericText reports whether s reads as a number, as SQLite's numeric
// affinity decides.
func numericText(s string) (float64, bool) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// sqlCompare compares a and b as SQLite does, after applying the
// affinities of their expressions. ok is false when either is NULL.
func sqlCompare(a, b any, la, ra affinity) (int, bool) {
	if a == nil || b == nil {
		return 0, false
	}
	switch {
	case la == affNumeric && ra != affNumeric:
		b = numericAffinity(b)
	case ra == affNumeric && la != affNumeric:
		a = numericAffinity(a)
	case la == affText && ra == affNone:
		b = textAffinity(b)
	case ra == affText && la == affNone:
		a = textAffinity(a)
	}
	an, aNum := a.(float64)
	bn, bNum := b.(float64)
	switch {
	case aNum && bNum:
		switch {
		case an < bn:
			return -1, true
		case an > bn:
			return 1, true
		}
		return 0, true
	case aNum:
		return -1, true // numbers sort before text
	case bNum:
		return 1, true
	}
	return strings.Compare(a.(string), b.(string)), true
}

func numericAffinity(v any) any {
	if s, ok := v.(string); ok {
		if f, ok := numericText(s); ok {
			return f
		}
	}
	return v
}

func textAffinity(v any) any {
	if f, ok := v.(float64); ok {
		return sqlText(f)
	}
	return v
}

// like reports whether s matches a LIKE pattern with "\" as the escape
// character, ignoring the case of ASCII letters as SQLite does.
func like(s, pattern string) bool {
	// Iterative matching with backtracking to the last "%".
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(pattern) {
			pc, pw := utf8.DecodeRuneInString(pattern[pi:])
			switch {
			case pc == '%':
				star, mark = pi+pw, si
				pi += pw
				continue
			case pc == '_':
				_, sw := utf8.DecodeRuneInString(s[si:])
				si += sw
				pi += pw
				continue
			case pc == '\\' && pi+pw < len(pattern):
				ec, ew := utf8.DecodeRuneInString(pattern[pi+pw:])
				sc, sw := utf8.DecodeRuneInString(s[si:])
				if foldASCII(sc) == foldASCII(ec) {
					si += sw
					pi += pw + ew
					continue
				}
			default:
				sc, sw := utf8.DecodeRuneInString(s[si:])
				if foldASCII(sc) == foldASCII(pc) {
					si += sw
					pi += pw
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		_, sw := utf8.DecodeRuneInString(s[mark:])
		mark += sw
		si, pi = mark, star
	}
	for pi < len(pattern) && pattern[pi] == '%' {
		pi++
	}
	return pi == len(pattern)
}

func foldASCII(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

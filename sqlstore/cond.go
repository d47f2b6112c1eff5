package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
)

// This file owns the conditions and orders of a Query. Callers describe
// what they want (a field equal to a value, a compiled filter, both); the
// store writes the SQL: it quotes the columns, binds every value as a
// parameter and numbers the parameters in statement order. Nothing outside
// sqlstore and filter writes SQL text.

// Alias is the name by which a Query's conditions, and the filters
// compiled for it (filter.Options.Alias), refer to the collection's table.
const Alias = "r"

// Cond is a condition on the records of a Query's collection.
type Cond interface {
	writeCond(w *sqlWriter)
}

// sqlWriter accumulates a statement and its parameters.
type sqlWriter struct {
	d    Dialect
	b    strings.Builder
	args []any
}

// bind writes the placeholder of a new parameter v.
func (w *sqlWriter) bind(v any) {
	w.args = append(w.args, v)
	w.b.WriteString(w.d.Placeholder(len(w.args)))
}

// column writes the quoted column of field on the query's table.
func (w *sqlWriter) column(field string) {
	w.b.WriteString(w.d.Quote(Alias))
	w.b.WriteByte('.')
	w.b.WriteString(w.d.Quote(field))
}

// The comparison operators of Compare.
const (
	OpEq = "="
	OpNe = "<>"
	OpLt = "<"
	OpLe = "<="
	OpGt = ">"
	OpGe = ">="
)

type compare struct {
	field, op string
	v         any
	fold      bool
}

func (c compare) writeCond(w *sqlWriter) {
	switch c.op {
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
	default:
		panic("sqlstore: unknown comparison operator " + strconv.Quote(c.op))
	}
	if c.fold {
		w.b.WriteString("LOWER(")
		w.column(c.field)
		w.b.WriteString(") " + c.op + " LOWER(")
		w.bind(c.v)
		w.b.WriteByte(')')
		return
	}
	w.column(c.field)
	w.b.WriteString(" " + c.op + " ")
	w.bind(c.v)
}

// Eq is field = v.
func Eq(field string, v any) Cond { return compare{field: field, op: OpEq, v: v} }

// Compare is field op v, for op one of the Op constants.
func Compare(field, op string, v any) Cond { return compare{field: field, op: op, v: v} }

// EqFold is field = v with the case of ASCII letters ignored on both sides
// (SQL's LOWER), for a text field.
func EqFold(field string, v string) Cond { return compare{field: field, op: OpEq, v: v, fold: true} }

type in struct {
	field  string
	values []string
}

func (c in) writeCond(w *sqlWriter) {
	if len(c.values) == 0 {
		w.b.WriteString("1 = 0")
		return
	}
	w.column(c.field)
	w.b.WriteString(" IN (")
	for i, v := range c.values {
		if i > 0 {
			w.b.WriteString(", ")
		}
		w.bind(v)
	}
	w.b.WriteByte(')')
}

// In is field equal to one of values; no values selects nothing.
func In(field string, values []string) Cond { return in{field: field, values: values} }

type junction struct {
	op    string // " AND " or " OR "
	conds []Cond
}

func (j junction) writeCond(w *sqlWriter) {
	var parts []Cond
	for _, c := range j.conds {
		if !isTrue(c) {
			parts = append(parts, c)
		}
	}
	for i, c := range parts {
		if i > 0 {
			w.b.WriteString(j.op)
		}
		w.b.WriteByte('(')
		c.writeCond(w)
		w.b.WriteByte(')')
	}
}

// And holds when every one of conds holds; nil conditions are skipped, and
// And of none is no condition at all.
func And(conds ...Cond) Cond {
	var out []Cond
	for _, c := range conds {
		if !isTrue(c) {
			out = append(out, c)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return junction{op: " AND ", conds: out}
}

// Or holds when one of conds holds; it needs at least one condition, and
// a nil one (no condition) makes the whole Or hold.
func Or(conds ...Cond) Cond {
	if len(conds) == 0 {
		return In("id", nil)
	}
	for _, c := range conds {
		if isTrue(c) {
			return nil
		}
	}
	if len(conds) == 1 {
		return conds[0]
	}
	return junction{op: " OR ", conds: conds}
}

// isTrue reports whether c is no condition: nil, or an empty compiled
// filter.
func isTrue(c Cond) bool {
	switch c := c.(type) {
	case nil:
		return true
	case compiled:
		return c.x.Empty()
	case junction:
		for _, p := range c.conds {
			if !isTrue(p) {
				return false
			}
		}
		return c.op == " AND "
	}
	return false
}

type compiled struct{ x *filter.SQL }

func (c compiled) writeCond(w *sqlWriter) {
	w.b.WriteString(c.x.Text(w.d, len(w.args)))
	w.args = append(w.args, c.x.Args...)
}

// Filter is a rule or filter compiled for the query's collection, with
// Alias as its filter.Options.Alias. A nil or empty x is no condition.
func Filter(x *filter.SQL) Cond {
	if x.Empty() {
		return nil
	}
	return compiled{x}
}

// Order is one term of a Query's order: a field, or a client's sort
// compiled by filter.CompileSort.
type Order struct {
	Field  string
	Desc   bool
	Sorted *filter.SQL // a compiled sort; Field and Desc are then unused
	raw    string      // RawOrder
}

// render writes the WHERE clause (when c is a condition) and returns it
// with its parameters, numbered from 1.
func (s *Store) render(c Cond) (string, []any) {
	if isTrue(c) {
		return "", nil
	}
	w := &sqlWriter{d: s.dialect}
	c.writeCond(w)
	return w.b.String(), w.args
}

// Key returns a text that is equal for two queries of one collection
// exactly when the store would run the same statement with the same
// parameters for them, for caching results; ok is false when a parameter
// cannot be encoded. It renders only what varies between queries (the
// condition, the order, the page), not the whole statement: a cached view
// is answered with little more work than this.
func (s *Store) Key(qq Query) (key string, ok bool) {
	where, args := s.render(qq.Where)
	var b strings.Builder
	b.Grow(len(where) + 64)
	b.WriteString(qq.Collection.Name)
	b.WriteByte(0)
	b.WriteString(where)
	for _, o := range qq.Order {
		b.WriteByte(0)
		switch {
		case o.raw != "":
			b.WriteString(o.raw)
		case o.Sorted != nil:
			b.WriteString(o.Sorted.Text(s.dialect, len(args)))
			args = append(args, o.Sorted.Args...)
		default:
			b.WriteString(o.Field)
			if o.Desc {
				b.WriteString(" DESC")
			}
		}
	}
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(qq.Limit))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(qq.Offset))
	b.WriteByte(0)
	enc, err := json.Marshal(args)
	if err != nil {
		return "", false
	}
	b.Write(enc)
	return b.String(), true
}

type raw func(bind func(v any) string) string

func (r raw) writeCond(w *sqlWriter) {
	w.b.WriteString(r(func(v any) string {
		w.args = append(w.args, v)
		return w.d.Placeholder(len(w.args))
	}))
}

// Raw is a condition written in SQL by fn, which binds each value it
// needs with bind, writing the placeholder bind returns. It is for the
// store's own packages (its conformance tests need conditions no filter
// writes, such as a deliberately slow one); the layer test keeps SQL text
// out of every other package.
func Raw(fn func(bind func(v any) string) string) Cond { return raw(fn) }

// RawOrder is an order written in SQL, as Raw is a condition.
func RawOrder(sql string) Order { return Order{raw: sql} }

// DeleteWhere deletes the records of c that cond selects, without the
// checks of DeleteRecord's callers (it is for system rows that go with
// another record), and returns how many it deleted.
func (s *Store) DeleteWhere(ctx context.Context, q Querier, c *underhood.Collection, cond Cond) (int64, error) {
	if c.IsView() {
		return 0, underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	where, args := s.render(cond)
	query := `DELETE FROM ` + s.quote(c.Name) + ` AS ` + s.quote(Alias)
	if where != "" {
		query += ` WHERE ` + where
	}
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("delete records of %s: %w", c.Name, err)
	}
	return res.RowsAffected()
}

// UpdateWhere sets the fields in set (their Go form, encoded as
// InsertRecord encodes them) on the records of c that cond selects, and
// returns how many it changed. A condition on the current values makes it
// a compare-and-set: of two concurrent updates that read the same value,
// one changes nothing.
func (s *Store) UpdateWhere(ctx context.Context, q Querier, c *underhood.Collection, set map[string]any, cond Cond) (int64, error) {
	if c.IsView() {
		return 0, underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	if len(set) == 0 {
		return 0, errors.New("sqlstore: UpdateWhere with nothing to set")
	}
	w := &sqlWriter{d: s.dialect}
	w.b.WriteString(`UPDATE ` + s.quote(c.Name) + ` AS ` + s.quote(Alias) + ` SET `)
	for i, name := range slices.Sorted(maps.Keys(set)) {
		f := c.Field(name)
		if f == nil {
			return 0, fmt.Errorf("update records of %s: no field %q", c.Name, name)
		}
		if i > 0 {
			w.b.WriteString(", ")
		}
		w.b.WriteString(s.quote(name) + " = ")
		w.bind(encodeValue(f, set[name]))
	}
	if !isTrue(cond) {
		w.b.WriteString(" WHERE ")
		cond.writeCond(w)
	}
	res, err := q.ExecContext(ctx, w.b.String(), w.args...)
	if err != nil {
		return 0, s.writeError(c, "update records", err)
	}
	return res.RowsAffected()
}

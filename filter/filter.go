// Package filter is the filter and rule language: a hand-written lexer and
// parser, a check of every identifier against the collection schema, a
// compiler to SQL through a Dialect (values only ever as placeholders) and
// an in-memory evaluator, Match, that gives the same answers for realtime.
// It does no I/O of its own: Match reads related records through a Loader.
package filter

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood"
)

// Schema finds collections by name or id.
type Schema interface {
	FindCollection(nameOrID string) *underhood.Collection
}

// Dialect renders the SQL shapes of the language for one database engine.
// Every method receives SQL expressions already rendered and returns one;
// none of them may embed a value from a filter in the SQL text.
//
// The language has SQLite's semantics (its comparison and affinity rules,
// LIKE ignoring the case of ASCII letters only); a dialect of an engine with
// static types reproduces them from the Type and Affinity of each SQLValue.
type Dialect interface {
	// Name is the engine name, e.g. "sqlite".
	Name() string
	// Quote quotes an identifier.
	Quote(ident string) string
	// Placeholder is the n-th (1-based) bind parameter. It may appear more
	// than once in a statement.
	Placeholder(n int) string
	// Param is the n-th bind parameter where it is bound to v (a string,
	// int64, float64, bool, nil or a JSONPath result); an engine with
	// static types casts it to v's type.
	Param(n int, v any) string
	// Compare is "l op r" for op one of = <> < <= > >=, with SQLite's
	// comparison rules: NULL when either side is NULL, affinities applied,
	// numbers before text, text compared byte by byte.
	Compare(op string, l, r SQLValue) string
	// Coalesce is o with NULL replaced by empty, a placeholder bound to "".
	// The result has no affinity.
	Coalesce(o SQLValue, empty string) SQLValue
	// Text is o as text, as SQLite's CAST(o AS TEXT).
	Text(o SQLValue) string
	// Number is o as a number for a math function: NULL unless it is a
	// number or text that reads as one.
	Number(o SQLValue) string
	// Lower is o as text with ASCII letters in lower case (SQLite's LOWER).
	Lower(o SQLValue) string
	// Like is expr matching pattern with the case of ASCII letters
	// ignored, with esc as the escape character; not negates it. expr and
	// pattern are text.
	Like(expr, pattern, esc string, not bool) string
	// JSONEach is a FROM item yielding the elements of expr, a JSON array
	// of strings, as text in the column alias.value.
	JSONEach(expr, alias string) string
	// JSONValues is a FROM item yielding the elements of expr, a JSON
	// array of any values, as values of TypeAny in the column alias.value.
	JSONValues(expr, alias string) string
	// JSONArrayLength is the number of elements of the JSON array expr.
	JSONArrayLength(expr string) string
	// JSONExtract is the value (of TypeAny) at path in the JSON expr,
	// where path is a placeholder bound to JSONPath's result: strings as
	// text, numbers as numbers, booleans as 1/0, null as NULL, objects and
	// arrays as compact JSON text.
	JSONExtract(expr, path string) string
	// JSONPath is the bind value of a path of object keys and array
	// indexes (keys that are decimal numbers index arrays).
	JSONPath(keys []string) any
	// Strftime is SQLite's strftime(format, time, modifiers...), text.
	Strftime(args []SQLValue) string
	// Order is a term of an ORDER BY on o, ascending or descending, in
	// SQLite's order: NULL first, then numbers, then text byte by byte.
	// nullable tells whether o can be NULL.
	Order(o SQLValue, nullable, desc bool) string
	// Random is an expression that orders rows randomly.
	Random() string
	// RowID is the insertion order of the rows of the table aliased alias.
	RowID(alias string) string
}

// Type is the SQL type of a compiled operand, which engines with static
// types need; SQLite ignores it.
type Type int

const (
	// TypeAny is known at run time only (a JSON value, a request value of
	// any type, NULL): the engine's dynamic value.
	TypeAny Type = iota
	TypeText
	TypeNumber
	TypeBool
	// TypeJSON is a stored JSON document (json, geoPoint and multi-value
	// fields), which compares as its JSON text.
	TypeJSON
)

// Affinity is SQLite's affinity of an operand, which decides how values
// of different types compare.
type Affinity int

const (
	AffinityNone Affinity = iota
	AffinityText
	AffinityNumeric
)

// SQLValue is a compiled value handed to a Dialect.
type SQLValue struct {
	SQL      string
	Type     Type
	Affinity Affinity
}

// Request is what a rule may read through @request.*: the caller (Auth,
// nil for a guest) and the parts of the request.
type Request struct {
	// Context is one of default, expand, realtime, protectedFile, batch,
	// oauth2, otp and password.
	Context string
	Method  string
	// Headers are keyed in lower case with "-" replaced by "_".
	Headers map[string]string
	Query   map[string]string
	// Body is the submitted data, before validation.
	Body map[string]any
	Auth *underhood.Record
	// Uploads are the stored names of the files uploaded with a create or
	// update: its file fields may name only these and the files the record
	// already holds. No rule reads them.
	Uploads []string
}

// Options are the context in which an expression is compiled or matched.
type Options struct {
	Schema     Schema
	Collection *underhood.Collection
	// Alias is the alias of Collection's table in the query ("r" if empty).
	Alias   string
	Dialect Dialect
	Request *Request
	// Now is the time the datetime macros are relative to (UTC).
	Now time.Time
	// Client marks a filter or sort from a client rather than a rule: it
	// may not use @request.* or @collection.*, hidden fields (unless
	// Superuser) or reach into a collection CanList refuses.
	Client bool
	// Superuser lifts the client restrictions on hidden fields and emails.
	Superuser bool
	// CanList reports whether a client filter may go through a relation
	// into t. Nil allows every collection.
	CanList func(t *underhood.Collection) bool
}

// Loader reads the related records Match needs. Records come back with
// their Collection set; missing ids are simply absent.
type Loader interface {
	// Get returns the records of c with the given ids.
	Get(ctx context.Context, c *underhood.Collection, ids []string) ([]*underhood.Record, error)
	// Via returns the records of c whose relation field f holds id.
	Via(ctx context.Context, c *underhood.Collection, f *underhood.Field, id string) ([]*underhood.Record, error)
	// All returns every record of c.
	All(ctx context.Context, c *underhood.Collection) ([]*underhood.Record, error)
}

// SQL is a compiled condition or sort. Its text refers to the
// collection's table by the alias in Options; every value is a bind
// parameter, bound to Args in order. The text marks where each parameter
// goes rather than numbering it: the statement that embeds the condition
// decides the numbers, with Text.
type SQL struct {
	where string // with paramMark for each parameter
	Args  []any
}

// Text is the SQL text with the parameters numbered from offset+1 (offset
// parameters precede it in its statement), in d's form. x may be nil.
func (x *SQL) Text(d Dialect, offset int) string {
	if x == nil {
		return ""
	}
	s := x.where
	if strings.IndexByte(s, markStart) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4*len(x.Args))
	for {
		i := strings.IndexByte(s, markStart)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, markEnd)
		n, _ := strconv.Atoi(s[:j])
		s = s[j+1:]
		b.WriteString(d.Param(offset+n+1, x.Args[n]))
	}
}

// String is the text with the parameters written ?1, ?2…, for messages.
func (x *SQL) String() string { return x.Text(questionMarks{}, 0) }

// questionMarks is the Param of SQLite, for String.
type questionMarks struct{ Dialect }

func (questionMarks) Param(n int, _ any) string { return "?" + strconv.Itoa(n) }

// Empty reports whether x is no condition at all.
func (x *SQL) Empty() bool { return x == nil || x.where == "" }

// The mark of parameter n (0-based) in SQL text: bytes no identifier,
// keyword or operator holds.
const (
	markStart = '\x00'
	markEnd   = '\x01'
)

func paramMark(n int) string {
	return string(rune(markStart)) + strconv.Itoa(n) + string(rune(markEnd))
}

// renumber returns where with its parameter marks moved up by by.
func renumber(where string, by int) string {
	if by == 0 || strings.IndexByte(where, markStart) < 0 {
		return where
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(where, markStart)
		if i < 0 {
			b.WriteString(where)
			return b.String()
		}
		j := i + strings.IndexByte(where[i:], markEnd)
		n, _ := strconv.Atoi(where[i+1 : j])
		b.WriteString(where[:i])
		b.WriteString(paramMark(n + by))
		where = where[j+1:]
	}
}

// And combines two conditions, either of which may be nil.
func And(a, b *SQL) *SQL {
	switch {
	case a.Empty():
		return b
	case b.Empty():
		return a
	}
	return &SQL{
		where: "(" + a.where + ") AND (" + renumber(b.where, len(a.Args)) + ")",
		Args:  append(append([]any(nil), a.Args...), b.Args...),
	}
}

// errAt returns a 400 error about the filter (key "filter") or sort at a
// 1-based position in the source. The message names what is wrong.
func errAt(key string, pos int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	label := "filter"
	if key == "sort" {
		label = "sort"
	}
	return &underhood.Error{
		Code:    underhood.EInvalid,
		Message: fmt.Sprintf("Invalid %s: %s (position %d).", label, msg, pos),
		Data: map[string]any{key: underhood.FieldError{
			Code:    "validation_invalid_" + label,
			Message: msg,
			Params:  map[string]any{"position": pos},
		}},
	}
}

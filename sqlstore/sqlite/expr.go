package sqlite

import (
	"strconv"
	"strings"

	"github.com/underhood/underhood/filter"
)

// This file is the filter side of the dialect (filter.Dialect): how the
// filter language's shapes are spelled in SQLite.

// Quote double-quotes an identifier.
func (Dialect) Quote(ident string) string { return ddlQuote(ident) }

// Placeholder returns the numbered parameter ?n, which may be repeated.
func (Dialect) Placeholder(n int) string { return "?" + strconv.Itoa(n) }

// Param is Placeholder: SQLite's values carry their own types.
func (d Dialect) Param(n int, v any) string { return d.Placeholder(n) }

// Compare is SQLite's own comparison, which the language's semantics are.
func (Dialect) Compare(op string, l, r filter.SQLValue) string {
	return l.SQL + " " + op + " " + r.SQL
}

// Coalesce is COALESCE(o, empty).
func (Dialect) Coalesce(o filter.SQLValue, empty string) filter.SQLValue {
	return filter.SQLValue{SQL: "COALESCE(" + o.SQL + ", " + empty + ")", Type: o.Type}
}

// Text is o itself: LIKE and || read any value as text.
func (Dialect) Text(o filter.SQLValue) string { return o.SQL }

// Number is o itself: math functions read numeric text as numbers.
func (Dialect) Number(o filter.SQLValue) string { return o.SQL }

// Lower is LOWER, which folds ASCII letters only.
func (Dialect) Lower(o filter.SQLValue) string { return "LOWER(" + o.SQL + ")" }

// Like uses SQLite's LIKE, which ignores the case of ASCII letters.
func (Dialect) Like(expr, pattern, esc string, not bool) string {
	op := " LIKE "
	if not {
		op = " NOT LIKE "
	}
	return expr + op + pattern + " ESCAPE " + esc
}

// The JSON functions below guard their input with json_valid: a stored
// value is always JSON, but SQLite's constant propagation may hand them the
// constant of an equality elsewhere in the condition ("tags = 'x' AND
// json_array_length(tags) = 0" becomes json_array_length('x')), and
// malformed JSON is an error, not NULL.

// JSONEach is the json_each table-valued function.
func (Dialect) JSONEach(expr, alias string) string {
	return "json_each(CASE WHEN json_valid(" + expr + ") THEN " + expr + " ELSE json_array() END) AS " + alias
}

// JSONValues is JSONEach: json_each's values keep their JSON types.
func (d Dialect) JSONValues(expr, alias string) string { return d.JSONEach(expr, alias) }

// JSONArrayLength is json_array_length.
func (Dialect) JSONArrayLength(expr string) string {
	return "json_array_length(CASE WHEN json_valid(" + expr + ") THEN " + expr + " END)"
}

// JSONExtract is json_extract, which returns SQL values for scalars.
func (Dialect) JSONExtract(expr, path string) string {
	return "json_extract(CASE WHEN json_valid(" + expr + ") THEN " + expr + " END, " + path + ")"
}

// JSONPath renders keys as a SQLite JSON path: $."key"[0]...
func (Dialect) JSONPath(keys []string) any {
	var b strings.Builder
	b.WriteByte('$')
	for _, k := range keys {
		if _, err := strconv.Atoi(k); err == nil && !strings.HasPrefix(k, "-") {
			b.WriteString("[" + k + "]")
			continue
		}
		b.WriteString(`."`)
		b.WriteString(strings.ReplaceAll(k, `"`, `\"`))
		b.WriteByte('"')
	}
	return b.String()
}

// Strftime is SQLite's own strftime.
func (Dialect) Strftime(args []filter.SQLValue) string {
	list := make([]string, len(args))
	for i, a := range args {
		list[i] = a.SQL
	}
	return "strftime(" + strings.Join(list, ", ") + ")"
}

// Order is SQLite's own ORDER BY term.
func (Dialect) Order(o filter.SQLValue, nullable, desc bool) string {
	if desc {
		return o.SQL + " DESC"
	}
	return o.SQL + " ASC"
}

// Random orders rows randomly.
func (Dialect) Random() string { return "RANDOM()" }

// RowID is the table's rowid.
func (Dialect) RowID(alias string) string { return alias + ".rowid" }

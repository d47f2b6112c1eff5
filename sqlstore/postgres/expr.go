package postgres

import (
	"strconv"
	"strings"

	"github.com/underhood/underhood/filter"
)

// This file is the filter side of the dialect (filter.Dialect): how the
// filter language's shapes are spelled in PostgreSQL. Values whose type is
// known only at run time are jsonb scalars in normal form (functions.go).

// Quote double-quotes an identifier.
func (Dialect) Quote(ident string) string { return quote(ident) }

// Placeholder returns $n, which may be repeated.
func (Dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// Param returns $n cast to the type of v, so that PostgreSQL never has to
// guess it from the context.
func (d Dialect) Param(n int, v any) string {
	p := d.Placeholder(n)
	switch v.(type) {
	case string:
		return p + "::text"
	case int64, float64, int:
		return p + "::double precision"
	case bool:
		return p + "::boolean"
	case []string:
		return p + "::text[]"
	}
	return p + "::jsonb"
}

// dynamic is o as a value in normal form (jsonb).
func dynamic(o filter.SQLValue) string {
	switch o.Type {
	case filter.TypeText:
		return "to_jsonb((" + o.SQL + ")::text)"
	case filter.TypeNumber:
		return "to_jsonb((" + o.SQL + ")::double precision)"
	case filter.TypeBool:
		return "to_jsonb((" + o.SQL + ")::integer)"
	case filter.TypeJSON:
		return "to_jsonb(uh_json_text(" + o.SQL + "))"
	}
	if o.SQL == "NULL" {
		return "NULL::jsonb"
	}
	return o.SQL
}

// Compare compares with SQLite's rules. Values of one static type compare
// in plain SQL (text in the "C" collation); anything else goes through
// uh_cmp after SQLite's affinities are applied.
func (Dialect) Compare(op string, l, r filter.SQLValue) string {
	switch {
	case l.Type == r.Type && (l.Type == filter.TypeNumber || l.Type == filter.TypeBool):
		return l.SQL + " " + op + " " + r.SQL
	case l.Type == filter.TypeNumber && r.Type == filter.TypeBool:
		return l.SQL + " " + op + " (" + r.SQL + ")::integer"
	case l.Type == filter.TypeBool && r.Type == filter.TypeNumber:
		return "(" + l.SQL + ")::integer " + op + " " + r.SQL
	case l.Type == filter.TypeText && r.Type == filter.TypeText:
		if op == "=" || op == "<>" {
			return l.SQL + " " + op + " " + r.SQL
		}
		return l.SQL + " " + op + " (" + r.SQL + `) COLLATE "C"`
	}
	a, b := dynamic(l), dynamic(r)
	switch {
	case l.Affinity == filter.AffinityNumeric && r.Affinity != filter.AffinityNumeric:
		b = "uh_num_aff(" + b + ")"
	case r.Affinity == filter.AffinityNumeric && l.Affinity != filter.AffinityNumeric:
		a = "uh_num_aff(" + a + ")"
	case l.Affinity == filter.AffinityText && r.Affinity == filter.AffinityNone:
		b = "uh_text_aff(" + b + ")"
	case r.Affinity == filter.AffinityText && l.Affinity == filter.AffinityNone:
		a = "uh_text_aff(" + a + ")"
	}
	return "uh_cmp(" + a + ", " + b + ") " + op + " 0"
}

// Coalesce keeps text as text and turns anything else into a value in
// normal form, with NULL as "".
func (Dialect) Coalesce(o filter.SQLValue, empty string) filter.SQLValue {
	if o.Type == filter.TypeText {
		return filter.SQLValue{SQL: "COALESCE(" + o.SQL + ", " + empty + ")", Type: filter.TypeText}
	}
	return filter.SQLValue{SQL: "COALESCE(" + dynamic(o) + ", to_jsonb((" + empty + ")::text))", Type: filter.TypeAny}
}

// Text renders o as SQLite's CAST(o AS TEXT) does.
func (Dialect) Text(o filter.SQLValue) string {
	switch o.Type {
	case filter.TypeText:
		return o.SQL
	case filter.TypeNumber:
		return "uh_num_text(" + o.SQL + ")"
	case filter.TypeBool:
		return "(" + o.SQL + ")::integer::text"
	case filter.TypeJSON:
		return "uh_json_text(" + o.SQL + ")"
	}
	return "uh_any_text(" + dynamic(o) + ")"
}

// Number reads o as SQLite's math functions do.
func (Dialect) Number(o filter.SQLValue) string {
	switch o.Type {
	case filter.TypeNumber:
		return "(" + o.SQL + ")::double precision"
	case filter.TypeBool:
		return "(" + o.SQL + ")::integer"
	case filter.TypeText:
		return "uh_text_num(" + o.SQL + ")"
	case filter.TypeJSON:
		return "uh_text_num(uh_json_text(" + o.SQL + "))"
	}
	return "uh_any_num(" + dynamic(o) + ")"
}

// Lower folds ASCII letters only, as SQLite's LOWER: the "C" collation's
// lower().
func (d Dialect) Lower(o filter.SQLValue) string {
	return "lower((" + d.Text(o) + `) COLLATE "C")`
}

// Like is ILIKE in the "C" collation, which ignores the case of ASCII
// letters only, as SQLite's LIKE. A pattern ending in a lone escape
// character matches that character, as on SQLite, rather than failing.
func (Dialect) Like(expr, pattern, esc string, not bool) string {
	op := " ILIKE "
	if not {
		op = " NOT ILIKE "
	}
	return "(" + expr + `) COLLATE "C"` + op + "uh_like_pattern(" + pattern + ") ESCAPE " + esc
}

// JSONEach yields the strings of a JSON array as text.
func (Dialect) JSONEach(expr, alias string) string {
	return "jsonb_array_elements_text((" + expr + ")::jsonb) AS " + alias + "(value)"
}

// JSONValues yields the elements of a JSON array in normal form.
func (Dialect) JSONValues(expr, alias string) string {
	return "uh_values((" + expr + ")::jsonb) AS " + alias + "(value)"
}

// JSONArrayLength is the length of a JSON array (0 for other JSON).
func (Dialect) JSONArrayLength(expr string) string {
	return "uh_array_length(" + expr + ")"
}

// JSONExtract is uh_extract, json_extract's twin.
func (Dialect) JSONExtract(expr, path string) string {
	return "uh_extract(" + expr + ", " + path + ")"
}

// JSONPath is the keys themselves, bound as text[].
func (Dialect) JSONPath(keys []string) any {
	return append([]string{}, keys...)
}

// Strftime is uh_strftime over the arguments in normal form.
func (Dialect) Strftime(args []filter.SQLValue) string {
	list := make([]string, len(args))
	for i, a := range args {
		list[i] = dynamic(a)
	}
	return "uh_strftime(" + strings.Join(list, ", ") + ")"
}

// Order sorts as SQLite does: NULL before everything (PostgreSQL puts it
// last), values of run-time type numbers before text, and whole JSON
// documents by their text. Columns that cannot be NULL get a plain term,
// which an index can serve.
func (Dialect) Order(o filter.SQLValue, nullable, desc bool) string {
	dir, nulls := " ASC", " NULLS FIRST"
	if desc {
		dir, nulls = " DESC", " NULLS LAST"
	}
	if !nullable {
		nulls = ""
	}
	switch o.Type {
	case filter.TypeAny:
		v := dynamic(o)
		return "(jsonb_typeof(" + v + ") = 'string')" + dir + nulls +
			", (CASE WHEN jsonb_typeof(" + v + ") = 'number' THEN (" + v + ")::double precision END)" + dir +
			", (" + v + ` #>> '{}') COLLATE "C"` + dir
	case filter.TypeJSON:
		return `(uh_json_text(` + o.SQL + `)) COLLATE "C"` + dir + nulls
	case filter.TypeText:
		if nullable { // a subquery or expression: the collation spelled out
			return "(" + o.SQL + `) COLLATE "C"` + dir + nulls
		}
	}
	return o.SQL + dir + nulls
}

// Random orders rows randomly.
func (Dialect) Random() string { return "random()" }

// RowID is the hidden identity column every table has (rowIDColumn).
func (Dialect) RowID(alias string) string { return alias + "." + quote(rowIDColumn) }

// quote double-quotes an identifier.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

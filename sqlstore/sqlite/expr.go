package sqlite

import (
	"strconv"
	"strings"
)

// This file is the filter side of the dialect (filter.Dialect): how the
// filter language's shapes are spelled in SQLite.

// Quote double-quotes an identifier.
func (Dialect) Quote(ident string) string { return ddlQuote(ident) }

// Placeholder returns the numbered parameter ?n, which may be repeated.
func (Dialect) Placeholder(n int) string { return "?" + strconv.Itoa(n) }

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
func (Dialect) Strftime(format, time string, modifiers []string) string {
	args := append([]string{format, time}, modifiers...)
	return "strftime(" + strings.Join(args, ", ") + ")"
}

// Random orders rows randomly.
func (Dialect) Random() string { return "RANDOM()" }

// RowID is the table's rowid.
func (Dialect) RowID(alias string) string { return alias + ".rowid" }

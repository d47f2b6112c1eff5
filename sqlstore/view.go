package sqlstore

import (
	"context"
	"strings"

	"github.com/underhood/underhood"
)

// ViewFields runs the view query without reading rows and infers one field
// per result column, in order:
//
//   - a column taken straight from a table of the FROM clause (p.title,
//     title, p.title AS name) copies that collection's field (keeping its
//     id and options, renamed to the column's name);
//   - count(…), total(…), sum(…), avg(…), numeric literals and
//     CAST(… AS INTEGER/REAL/NUMERIC) are numbers; CAST(… AS TEXT) and
//     string literals are text; CAST(… AS BOOLEAN), TRUE and FALSE are bools;
//   - anything else is json.
//
// With * in the result list the columns are matched by name instead. The
// query must be one SELECT and must have an "id" column, which becomes a
// text primary key field. Errors are EInvalid on "viewQuery".
func (s *Store) ViewFields(ctx context.Context, q Querier, query string, all []*underhood.Collection) ([]*underhood.Field, error) {
	sel, err := parseSelect(query)
	if err != nil {
		return nil, viewQueryError("Invalid view query: " + err.Error() + ".")
	}
	clean, err := checkViewQuery(query)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT * FROM (`+clean+`) AS _view LIMIT 0`)
	if err != nil {
		return nil, viewQueryError("Invalid view query: " + err.Error())
	}
	cols, err := rows.Columns()
	rows.Close()
	if err != nil {
		return nil, viewQueryError("Invalid view query: " + err.Error())
	}

	sources := map[string]*underhood.Collection{} // alias (lower case) → collection
	var ordered []*underhood.Collection
	for alias, table := range sel.tables {
		if c := findCollection(all, table); c != nil {
			sources[alias] = c
		}
	}
	for _, table := range sel.order {
		if c := findCollection(all, table); c != nil {
			ordered = append(ordered, c)
		}
	}
	byItem := !sel.star && len(sel.items) == len(cols)

	fields := make([]*underhood.Field, 0, len(cols))
	hasID := false
	for i, name := range cols {
		if name == hiddenRowID {
			continue // the hidden column of a table read with *
		}
		var f *underhood.Field
		if byItem {
			f = inferField(sel.items[i].expr, sources, ordered)
		} else {
			for _, c := range ordered {
				if f = sourceField(c, name); f != nil {
					break
				}
			}
		}
		if f != nil && f.Name == "id" && name != "id" {
			// The id of a source record under another name: a relation.
			f = &underhood.Field{Type: underhood.FieldRelation, CollectionID: f.CollectionID, MaxSelect: 1}
		}
		if f == nil {
			f = &underhood.Field{Type: underhood.FieldJSON}
		}
		f.Name = name
		f.System, f.PrimaryKey = false, false
		if name == "id" {
			hasID = true
			if f.Type != underhood.FieldText {
				f = &underhood.Field{Name: "id", Type: underhood.FieldText}
			}
			f.System, f.PrimaryKey, f.Required, f.CollectionID = true, true, true, ""
		}
		fields = append(fields, f)
	}
	if !hasID {
		return nil, viewQueryError(`The view query must return an "id" column.`)
	}
	return fields, nil
}

// hiddenRowID is the name of the hidden column that keeps the insertion
// order on engines without a rowid; it is reserved as a field name.
const hiddenRowID = "_rowid_"

// findCollection finds a collection by name, case-insensitively.
func findCollection(all []*underhood.Collection, name string) *underhood.Collection {
	for _, c := range all {
		if strings.EqualFold(c.Name, name) {
			return c
		}
	}
	return nil
}

// sourceField returns a copy of c's field name, or nil. A copy of the id
// field carries c's id in CollectionID, for the caller to make a relation.
func sourceField(c *underhood.Collection, name string) *underhood.Field {
	sf := fieldFold(c, name)
	if sf == nil {
		return nil
	}
	f := sf.Clone()
	if f.Name == "id" {
		f.CollectionID = c.ID
	}
	return f
}

// inferField guesses the field of one result expression; nil means json.
func inferField(expr []token, sources map[string]*underhood.Collection, ordered []*underhood.Collection) *underhood.Field {
	n := len(expr)
	switch {
	case n == 1 && (expr[0].is("TRUE") || expr[0].is("FALSE")):
		return &underhood.Field{Type: underhood.FieldBool}
	case n == 1 && expr[0].isIdent():
		for _, c := range ordered {
			if f := sourceField(c, expr[0].text); f != nil {
				return f
			}
		}
		return nil
	case n == 3 && expr[0].isIdent() && expr[1].punct(".") && expr[2].isIdent():
		if c := sources[strings.ToLower(expr[0].text)]; c != nil {
			return sourceField(c, expr[2].text)
		}
		return nil
	case n == 1 && expr[0].kind == tokNumber:
		return &underhood.Field{Type: underhood.FieldNumber}
	case n == 1 && expr[0].kind == tokString:
		return &underhood.Field{Type: underhood.FieldText}
	case n >= 3 && expr[1].punct("(") && closeParen(expr, 1) == n-1:
		switch strings.ToUpper(expr[0].text) {
		case "COUNT", "TOTAL", "SUM", "AVG":
			return &underhood.Field{Type: underhood.FieldNumber}
		case "CAST":
			if n >= 5 && expr[n-3].is("AS") {
				switch strings.ToUpper(expr[n-2].text) {
				case "INT", "INTEGER", "REAL", "NUMERIC", "FLOAT", "DOUBLE", "DECIMAL", "BIGINT":
					return &underhood.Field{Type: underhood.FieldNumber}
				case "TEXT", "VARCHAR", "CHAR":
					return &underhood.Field{Type: underhood.FieldText}
				case "BOOLEAN", "BOOL":
					return &underhood.Field{Type: underhood.FieldBool}
				}
			}
		}
	}
	return nil
}

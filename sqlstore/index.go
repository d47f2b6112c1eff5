package sqlstore

import (
	"regexp"
	"strings"
)

// Index is a collection's CREATE INDEX statement, read by the one parser
// of index SQL (parseIndexSQL): record validates and normalises indexes
// with it, and the store renders them for its engine with it.
type Index struct {
	Unique, IfNotExists bool
	Name, Table         string
	Columns             []IndexColumn
	Where               string // the condition after WHERE as written; "" for none
}

// IndexColumn is one entry of an index's column list.
type IndexColumn struct {
	Name    string // the column; "" when the entry is an expression
	Collate string // the collation in upper case; "" for none
	Sort    string // "ASC", "DESC" or ""
	Expr    string // the entry as written, when it is an expression
}

// ParseIndex parses `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [schema.]name ON
// table (entry, …) [WHERE condition]`; identifiers may be bare or quoted
// with "", “ or []. An entry is a column with an optional COLLATE and
// ASC or DESC, or an expression (Name "").
func ParseIndex(src string) (*Index, error) {
	p, err := parseIndexSQL(src)
	if err != nil {
		return nil, err
	}
	ix := &Index{Unique: p.unique, IfNotExists: p.ifNotExists, Name: p.name, Table: p.table}
	open := p.tableAt + 1
	end := closeParen(p.toks, open)
	for _, part := range splitTop(p.toks[open+1 : end]) {
		var col IndexColumn
		rest := part[1:]
		if len(rest) >= 2 && rest[0].is("COLLATE") && rest[1].isIdent() {
			col.Collate = strings.ToUpper(rest[1].text)
			rest = rest[2:]
		}
		if len(rest) >= 1 && (rest[0].is("ASC") || rest[0].is("DESC")) {
			col.Sort = strings.ToUpper(rest[0].text)
			rest = rest[1:]
		}
		if part[0].isIdent() && len(rest) == 0 {
			col.Name = part[0].text
		} else {
			col = IndexColumn{Expr: p.src[part[0].pos:part[len(part)-1].end]}
		}
		ix.Columns = append(ix.Columns, col)
	}
	if p.whereAt > 0 {
		ix.Where = p.src[p.toks[p.whereAt+1].pos:p.toks[len(p.toks)-1].end]
	}
	return ix, nil
}

// String renders an index whose entries are all columns in its normal
// form: CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table (col [COLLATE
// x] [ASC|DESC], …) [WHERE …], with identifiers quoted only when needed.
func (ix *Index) String() string {
	var b strings.Builder
	b.WriteString("CREATE ")
	if ix.Unique {
		b.WriteString("UNIQUE ")
	}
	b.WriteString("INDEX ")
	if ix.IfNotExists {
		b.WriteString("IF NOT EXISTS ")
	}
	b.WriteString(quoteIdentIfNeeded(ix.Name))
	b.WriteString(" ON ")
	b.WriteString(quoteIdentIfNeeded(ix.Table))
	b.WriteString(" (")
	for i, col := range ix.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		if col.Name == "" {
			b.WriteString(col.Expr)
			continue
		}
		b.WriteString(quoteIdentIfNeeded(col.Name))
		if col.Collate != "" {
			b.WriteString(" COLLATE ")
			b.WriteString(col.Collate)
		}
		if col.Sort != "" {
			b.WriteString(" ")
			b.WriteString(col.Sort)
		}
	}
	b.WriteString(")")
	if ix.Where != "" {
		b.WriteString(" WHERE ")
		b.WriteString(ix.Where)
	}
	return b.String()
}

// Definition is the statement without its name, whatever the case of
// its column names: two indexes with one definition are duplicates.
func (ix *Index) Definition() string {
	d := *ix
	d.Name, d.IfNotExists = "_", false
	d.Columns = append([]IndexColumn(nil), ix.Columns...)
	for i := range d.Columns {
		d.Columns[i].Name = strings.ToLower(d.Columns[i].Name)
	}
	return d.String()
}

var bareIdentRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// sqlKeywords are words that must be quoted to be used as identifiers in
// SQLite or PostgreSQL.
var sqlKeywords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYSE ANALYZE AND ANY ARRAY AS ASC
		ASYMMETRIC ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN BOTH BY CASCADE CASE CAST CHECK COLLATE
		COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME
		CURRENT_TIMESTAMP CURRENT_USER DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH
		DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FALSE
		FETCH FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GRANT GROUP GROUPS HAVING
		IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL
		JOIN KEY LAST LATERAL LEADING LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING
		NOTNULL NULL NULLS OF OFFSET ON ONLY OR ORDER OTHERS OUTER OVER PARTITION PLACING PLAN
		PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE
		RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SESSION_USER SET
		SOME SYMMETRIC TABLE TEMP TEMPORARY THEN TIES TO TRAILING TRANSACTION TRIGGER TRUE UNBOUNDED
		UNION UNIQUE UPDATE USER USING VACUUM VALUES VARIADIC VIEW VIRTUAL WHEN WHERE WINDOW WITH
		WITHOUT`) {
		m[w] = true
	}
	return m
}()

// quoteIdentIfNeeded leaves plain identifiers bare and double-quotes the
// rest (keywords, other characters), which SQLite and PostgreSQL both read.
func quoteIdentIfNeeded(s string) string {
	if bareIdentRe.MatchString(s) && !sqlKeywords[strings.ToUpper(s)] {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

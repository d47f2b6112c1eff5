package sqlstore

import (
	"errors"
	"fmt"
	"strings"
)

// This file reads the two kinds of SQL that users write: CREATE INDEX
// statements (collection indexes) and SELECT statements (view queries). It
// is a tokenizer and a few shape checks, not a parser: enough to refuse
// anything that is not one statement of the expected kind, to rewrite the
// table name of an index and to guess the source of a view's columns.

type tokKind int

const (
	tokWord   tokKind = iota // bare identifier or keyword
	tokQuoted                // "ident", `ident` or [ident]
	tokString                // 'text'
	tokNumber
	tokPunct
)

type token struct {
	kind     tokKind
	text     string // the identifier's name (unquoted) or the raw text
	pos, end int    // byte span in the source
}

// isIdent reports whether t names something (bare or quoted).
func (t token) isIdent() bool { return t.kind == tokWord || t.kind == tokQuoted }

// is reports whether t is the bare keyword kw (case-insensitive).
func (t token) is(kw string) bool { return t.kind == tokWord && strings.EqualFold(t.text, kw) }

// punct reports whether t is the punctuation p.
func (t token) punct(p string) bool { return t.kind == tokPunct && t.text == p }

// tokenize splits src into tokens, dropping whitespace and comments.
func tokenize(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated comment")
			}
			i += end + 4
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			var b strings.Builder
			j := i + 1
			for ; j < len(src); j++ {
				if src[j] != closer {
					b.WriteByte(src[j])
					continue
				}
				if closer != ']' && j+1 < len(src) && src[j+1] == closer {
					b.WriteByte(closer)
					j++
					continue
				}
				break
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated %c at position %d", c, i+1)
			}
			kind := tokQuoted
			if c == '\'' {
				kind = tokString
			}
			toks = append(toks, token{kind: kind, text: b.String(), pos: i, end: j + 1})
			i = j + 1
		case isIdentStart(c):
			j := i
			for j < len(src) && (isIdentStart(src[j]) || src[j] >= '0' && src[j] <= '9' || src[j] == '$') {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: src[i:j], pos: i, end: j})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) {
				d := src[j]
				if d >= '0' && d <= '9' || d == '.' || d == '_' || isIdentStart(d) {
					j++
					continue
				}
				if (d == '+' || d == '-') && (src[j-1] == 'e' || src[j-1] == 'E') {
					j++
					continue
				}
				break
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], pos: i, end: j})
			i = j
		default:
			toks = append(toks, token{kind: tokPunct, text: src[i : i+1], pos: i, end: i + 1})
			i++
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// singleStatement tokenizes src and refuses more than one statement; a
// trailing semicolon is dropped.
func singleStatement(src string) ([]token, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	for len(toks) > 0 && toks[len(toks)-1].punct(";") {
		toks = toks[:len(toks)-1]
	}
	if len(toks) == 0 {
		return nil, errors.New("empty statement")
	}
	for _, t := range toks {
		if t.punct(";") {
			return nil, errors.New("only one statement is allowed")
		}
	}
	return toks, nil
}

// closeParen returns the index of the ")" matching the "(" at toks[i], or -1.
func closeParen(toks []token, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		switch {
		case toks[j].punct("("):
			depth++
		case toks[j].punct(")"):
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// indexSQL is a checked CREATE INDEX statement.
type indexSQL struct {
	name        string
	unique      bool
	ifNotExists bool
	whereAt     int // index of the WHERE token; 0 for none
	table       string
	columns     []string // plain column names, in order ("" for an expression)
	refs        []string // every name the column list refers to, expressions included
	toks        []token
	nameAt      int // index of the name token
	tableAt     int // index of the table token
	src         string
}

// parseIndexSQL checks that src is exactly one
// CREATE [UNIQUE] INDEX [IF NOT EXISTS] [schema.]name ON table (…) [WHERE …].
func parseIndexSQL(src string) (*indexSQL, error) {
	toks, err := singleStatement(src)
	if err != nil {
		return nil, err
	}
	ix := &indexSQL{toks: toks, src: src}
	i := 0
	next := func() token {
		if i >= len(toks) {
			return token{kind: tokPunct}
		}
		i++
		return toks[i-1]
	}
	if !next().is("CREATE") {
		return nil, errors.New("expected CREATE")
	}
	t := next()
	if t.is("UNIQUE") {
		ix.unique = true
		t = next()
	}
	if !t.is("INDEX") {
		return nil, errors.New("expected INDEX")
	}
	t = next()
	if t.is("IF") {
		if !next().is("NOT") || !next().is("EXISTS") {
			return nil, errors.New("expected IF NOT EXISTS")
		}
		ix.ifNotExists = true
		t = next()
	}
	if !t.isIdent() {
		return nil, errors.New("missing index name")
	}
	ix.name, ix.nameAt = t.text, i-1
	if i < len(toks) && toks[i].punct(".") {
		i++
		if t = next(); !t.isIdent() {
			return nil, errors.New("missing index name")
		}
		ix.name, ix.nameAt = t.text, i-1
	}
	if !next().is("ON") {
		return nil, errors.New("expected ON")
	}
	ix.tableAt = i
	if t = next(); !t.isIdent() {
		return nil, errors.New("missing table name")
	}
	ix.table = t.text
	if i >= len(toks) || !toks[i].punct("(") {
		return nil, errors.New("expected a column list")
	}
	end := closeParen(toks, i)
	if end < 0 || end == i+1 {
		return nil, errors.New("invalid column list")
	}
	for _, part := range splitTop(toks[i+1 : end]) {
		if len(part) == 0 {
			return nil, errors.New("invalid column list")
		}
		name := ""
		if part[0].isIdent() && (len(part) == 1 || part[1].is("COLLATE") || part[1].is("ASC") || part[1].is("DESC")) {
			name = part[0].text
		}
		ix.columns = append(ix.columns, name)
		for k, t := range part {
			if t.isIdent() && !(k+1 < len(part) && part[k+1].punct("(")) && !(k > 0 && part[k-1].is("COLLATE")) &&
				!t.is("COLLATE") && !t.is("ASC") && !t.is("DESC") {
				ix.refs = append(ix.refs, t.text)
			}
		}
	}
	i = end + 1
	if i == len(toks) {
		return ix, nil
	}
	if !toks[i].is("WHERE") {
		return nil, errors.New("unexpected text after the column list")
	}
	if i+1 == len(toks) {
		return nil, errors.New("empty WHERE clause")
	}
	ix.whereAt = i
	return ix, nil
}

// render returns the statement with its name quoted by quote (so that
// engines that fold unquoted names keep its case), its table replaced by
// table, every identifier for which field returns a name ("" for none)
// replaced by that name, and the COLLATE clause of each column rendered by
// collate.
func (ix *indexSQL) render(quote func(string) string, table string, field func(name string) string, collate func(expr, collation string) string) string {
	toks := ix.toks
	open := ix.tableAt + 1 // the "(" of the column list
	end := closeParen(toks, open)
	var b strings.Builder
	b.WriteString(ix.src[toks[0].pos:toks[ix.nameAt].pos])
	b.WriteString(quote(ix.name))
	b.WriteString(ix.src[toks[ix.nameAt].end:toks[ix.tableAt].pos])
	b.WriteString(table)
	b.WriteString(ix.src[toks[ix.tableAt].end:toks[open].end])
	for i, part := range splitTop(toks[open+1 : end]) {
		if i > 0 {
			b.WriteString(", ")
		}
		k := -1
		for j, t := range part {
			if t.is("COLLATE") && j > 0 && j+1 < len(part) {
				k = j
			}
		}
		if k < 0 {
			b.WriteString(ix.text(part, field))
			continue
		}
		b.WriteString(collate(ix.text(part[:k], field), part[k+1].text))
		if k+2 < len(part) {
			b.WriteByte(' ')
			b.WriteString(ix.text(part[k+2:], field))
		}
	}
	b.WriteByte(')')
	if end+1 < len(toks) {
		b.WriteString(ix.src[toks[end].end:toks[end+1].pos])
		b.WriteString(ix.text(toks[end+1:], field))
	}
	return b.String()
}

// text renders consecutive tokens of the statement as written, with the
// identifiers for which field returns a name replaced by it (not function
// names, nor names after a ".").
func (ix *indexSQL) text(toks []token, field func(name string) string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteString(ix.src[toks[i-1].end:t.pos])
		}
		if t.isIdent() && !(i+1 < len(toks) && toks[i+1].punct("(")) && !(i > 0 && toks[i-1].punct(".")) {
			if name := field(t.text); name != "" {
				b.WriteString(name)
				continue
			}
		}
		b.WriteString(ix.src[t.pos:t.end])
	}
	return b.String()
}

// splitTop splits toks at the commas outside parentheses.
func splitTop(toks []token) [][]token {
	var parts [][]token
	depth, start := 0, 0
	for i, t := range toks {
		switch {
		case t.punct("("):
			depth++
		case t.punct(")"):
			depth--
		case t.punct(",") && depth == 0:
			parts = append(parts, toks[start:i])
			start = i + 1
		}
	}
	return append(parts, toks[start:])
}

// selectSQL is the outline of a view query: its result items and the
// tables of its FROM clause.
type selectSQL struct {
	items  []selectItem
	star   bool              // the result list has * or t.*
	tables map[string]string // alias (lower case) → table name
	order  []string          // table names in FROM order
}

type selectItem struct {
	expr  []token
	alias string
}

// clauseEnds are the keywords that end a select list or a FROM clause.
var clauseEnds = map[string]bool{
	"FROM": true, "WHERE": true, "GROUP": true, "HAVING": true, "WINDOW": true, "ORDER": true,
	"LIMIT": true, "UNION": true, "EXCEPT": true, "INTERSECT": true,
}

// joinWords may follow a table reference without being its alias.
var joinWords = map[string]bool{
	"ON": true, "USING": true, "JOIN": true, "LEFT": true, "RIGHT": true, "FULL": true,
	"INNER": true, "CROSS": true, "NATURAL": true, "OUTER": true, "INDEXED": true, "NOT": true,
}

// parseSelect checks that src is one SELECT (or WITH … SELECT) statement
// and outlines its first top-level SELECT.
func parseSelect(src string) (*selectSQL, error) {
	toks, err := singleStatement(src)
	if err != nil {
		return nil, err
	}
	if !toks[0].is("SELECT") && !toks[0].is("WITH") {
		return nil, errors.New("the query must be a SELECT statement")
	}
	// Find the first SELECT outside parentheses (after any CTEs).
	start, depth := -1, 0
	for i, t := range toks {
		switch {
		case t.punct("("):
			depth++
		case t.punct(")"):
			depth--
		case depth == 0 && t.kind == tokWord:
			switch strings.ToUpper(t.text) {
			case "SELECT":
				start = i
			case "INSERT", "UPDATE", "DELETE", "REPLACE":
				return nil, errors.New("the query must be a SELECT statement")
			}
		}
		if start >= 0 {
			break
		}
	}
	if start < 0 {
		return nil, errors.New("the query must be a SELECT statement")
	}
	s := &selectSQL{tables: map[string]string{}}
	i := start + 1
	if i < len(toks) && (toks[i].is("DISTINCT") || toks[i].is("ALL")) {
		i++
	}
	listEnd := topLevelEnd(toks, i)
	for _, part := range splitTop(toks[i:listEnd]) {
		if len(part) == 0 {
			return nil, errors.New("empty result column")
		}
		s.items = append(s.items, newSelectItem(part))
	}
	for _, it := range s.items {
		n := len(it.expr)
		if n > 0 && it.expr[n-1].punct("*") {
			s.star = true
		}
	}
	if listEnd < len(toks) && toks[listEnd].is("FROM") {
		from := toks[listEnd+1 : topLevelEnd(toks, listEnd+1)]
		s.readFrom(from)
	}
	return s, nil
}

// topLevelEnd returns the index of the first clause keyword outside
// parentheses at or after i, or len(toks).
func topLevelEnd(toks []token, i int) int {
	depth := 0
	for ; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.punct("("):
			depth++
		case t.punct(")"):
			depth--
		case depth == 0 && t.kind == tokWord && clauseEnds[strings.ToUpper(t.text)]:
			return i
		}
	}
	return i
}

// newSelectItem splits a result column into its expression and alias.
func newSelectItem(part []token) selectItem {
	n := len(part)
	if n >= 3 && part[n-2].is("AS") && part[n-1].isIdent() {
		return selectItem{expr: part[:n-2], alias: part[n-1].text}
	}
	if n >= 2 && part[n-1].isIdent() {
		prev := part[n-2]
		if prev.isIdent() || prev.punct(")") || prev.kind == tokString || prev.kind == tokNumber {
			return selectItem{expr: part[:n-1], alias: part[n-1].text}
		}
	}
	return selectItem{expr: part}
}

// readFrom records the tables of a FROM clause and their aliases.
func (s *selectSQL) readFrom(toks []token) {
	expectRef := true
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.punct(","), t.is("JOIN"):
			expectRef = true
			continue
		case t.punct("("):
			end := closeParen(toks, i)
			if end < 0 {
				return
			}
			i = end
			expectRef = false
			continue
		}
		if !expectRef || !t.isIdent() {
			continue
		}
		expectRef = false
		name := t.text
		if i+2 < len(toks) && toks[i+1].punct(".") && toks[i+2].isIdent() { // schema.table
			i += 2
			name = toks[i].text
		}
		alias := name
		j := i + 1
		if j < len(toks) && toks[j].is("AS") {
			j++
		}
		if j < len(toks) && toks[j].isIdent() && !(toks[j].kind == tokWord && joinWords[strings.ToUpper(toks[j].text)]) {
			alias = toks[j].text
			i = j
		}
		s.tables[strings.ToLower(alias)] = name
		s.order = append(s.order, name)
	}
}

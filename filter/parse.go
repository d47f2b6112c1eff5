package filter

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expr is a parsed boolean expression: a *Logical or a *Compare. The tree
// is immutable once parsed and may be shared between goroutines.
type Expr interface{ Pos() int }

// Operand is one side of a comparison: a *Literal, an *Ident or a *Call.
type Operand interface{ Pos() int }

// Logical joins two expressions with "&&" or "||".
type Logical struct {
	Op   string
	L, R Expr
	pos  int
}

// Compare is "L Op R". Any is set for the "?" operators, which need only
// one of many values to match.
type Compare struct {
	Op   string // = != > >= < <= ~ !~
	Any  bool
	L, R Operand
	pos  int
}

// Literal is a number (float64), a string, a bool or null (nil).
type Literal struct {
	Value any
	pos   int
}

// Ident is a field path, an @request or @collection path, or a macro,
// with its ":" modifiers.
type Ident struct {
	Name      string
	Modifiers []string
	pos       int
}

// Call is a function call: geoDistance or strftime.
type Call struct {
	Name string
	Args []Operand
	pos  int
}

func (e *Logical) Pos() int { return e.pos }
func (e *Compare) Pos() int { return e.pos }
func (e *Literal) Pos() int { return e.pos }
func (e *Ident) Pos() int   { return e.pos }
func (e *Call) Pos() int    { return e.pos }

// maxDepth bounds nesting so that a hostile filter cannot exhaust the stack.
const maxDepth = 64

// token kinds
const (
	tEOF = iota
	tNumber
	tString
	tIdent
	tOp     // comparison operator
	tAnd    // &&
	tOr     // ||
	tLParen // (
	tRParen // )
	tComma  // ,
)

type token struct {
	kind int
	text string // operator, identifier or decoded string
	num  float64
	pos  int // 1-based
}

type lexer struct {
	src  string
	i    int
	prev int // kind of the previous token
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '@' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '.' || c == ':'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// next returns the next token.
func (l *lexer) next() (token, error) {
	t, err := l.scan()
	l.prev = t.kind
	return t, err
}

func (l *lexer) scan() (token, error) {
	for l.i < len(l.src) {
		c := l.src[l.i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			l.i++
			continue
		}
		if c == '/' && l.i+1 < len(l.src) && l.src[l.i+1] == '/' {
			for l.i < len(l.src) && l.src[l.i] != '\n' {
				l.i++
			}
			continue
		}
		break
	}
	start := l.i
	pos := start + 1
	if l.i >= len(l.src) {
		return token{kind: tEOF, pos: pos}, nil
	}
	c := l.src[l.i]
	switch {
	case c == '(':
		l.i++
		return token{kind: tLParen, text: "(", pos: pos}, nil
	case c == ')':
		l.i++
		return token{kind: tRParen, text: ")", pos: pos}, nil
	case c == ',':
		l.i++
		return token{kind: tComma, text: ",", pos: pos}, nil
	case c == '&' || c == '|':
		if l.i+1 < len(l.src) && l.src[l.i+1] == c {
			l.i += 2
			if c == '&' {
				return token{kind: tAnd, text: "&&", pos: pos}, nil
			}
			return token{kind: tOr, text: "||", pos: pos}, nil
		}
		return token{}, errAt("filter", pos, "unexpected %q", string(c))
	case c == '\'' || c == '"':
		return l.scanString(c, pos)
	case isDigit(c) || (c == '-' || c == '+' || c == '.') && l.numberFollows():
		return l.scanNumber(pos)
	case isIdentStart(c):
		for l.i < len(l.src) && isIdentPart(l.src[l.i]) {
			l.i++
		}
		return token{kind: tIdent, text: l.src[start:l.i], pos: pos}, nil
	}
	for _, op := range []string{"?!=", "?>=", "?<=", "?!~", "!=", ">=", "<=", "!~", "?=", "?>", "?<", "?~", "=", ">", "<", "~"} {
		if strings.HasPrefix(l.src[l.i:], op) {
			l.i += len(op)
			return token{kind: tOp, text: op, pos: pos}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.i:])
	return token{}, errAt("filter", pos, "unexpected character %q", r)
}

// numberFollows reports whether a sign or dot at l.i starts a number: it
// must be followed by a digit and stand where an operand is expected.
func (l *lexer) numberFollows() bool {
	j := l.i
	if l.src[j] == '-' || l.src[j] == '+' {
		j++
	}
	if j < len(l.src) && l.src[j] == '.' {
		j++
	}
	if j >= len(l.src) || !isDigit(l.src[j]) {
		return false
	}
	switch l.prev {
	case tNumber, tString, tIdent, tRParen:
		return false
	}
	return true
}

func (l *lexer) scanNumber(pos int) (token, error) {
	start := l.i
	if l.src[l.i] == '-' || l.src[l.i] == '+' {
		l.i++
	}
	for l.i < len(l.src) && (isDigit(l.src[l.i]) || l.src[l.i] == '.') {
		l.i++
	}
	if l.i < len(l.src) && (l.src[l.i] == 'e' || l.src[l.i] == 'E') {
		j := l.i + 1
		if j < len(l.src) && (l.src[j] == '-' || l.src[j] == '+') {
			j++
		}
		if j < len(l.src) && isDigit(l.src[j]) {
			l.i = j
			for l.i < len(l.src) && isDigit(l.src[l.i]) {
				l.i++
			}
		}
	}
	text := l.src[start:l.i]
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || l.i < len(l.src) && isIdentStart(l.src[l.i]) {
		return token{}, errAt("filter", pos, "invalid number %q", text)
	}
	return token{kind: tNumber, num: f, text: text, pos: pos}, nil
}

func (l *lexer) scanString(quote byte, pos int) (token, error) {
	l.i++
	var b strings.Builder
	for l.i < len(l.src) {
		c := l.src[l.i]
		switch {
		case c == quote:
			l.i++
			return token{kind: tString, text: b.String(), pos: pos}, nil
		case c == '\\' && l.i+1 < len(l.src):
			n := l.src[l.i+1]
			if n == quote || n == '\\' {
				b.WriteByte(n)
			} else {
				b.WriteByte('\\')
				b.WriteByte(n)
			}
			l.i += 2
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	return token{}, errAt("filter", pos, "unterminated string")
}

type parser struct {
	lex   lexer
	tok   token
	depth int
}

// Parse parses a filter or rule. Errors are 400 errors carrying the
// 1-based position of the fault.
func Parse(src string) (Expr, error) {
	p := &parser{lex: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, errAt("filter", p.tok.pos, "empty expression")
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, errAt("filter", p.tok.pos, "unexpected %q", p.tok.text)
	}
	return e, nil
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) parseOr() (Expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tOr {
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &Logical{Op: "||", L: l, R: r, pos: pos}
	}
	return l, nil
}

func (p *parser) parseAnd() (Expr, error) {
	l, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tAnd {
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.parseTerm()
		if err != nil {
			return nil, err
		}
		l = &Logical{Op: "&&", L: l, R: r, pos: pos}
	}
	return l, nil
}

func (p *parser) parseTerm() (Expr, error) {
	if p.tok.kind == tLParen {
		p.depth++
		if p.depth > maxDepth {
			return nil, errAt("filter", p.tok.pos, "too deeply nested")
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, errAt("filter", p.tok.pos, "expected \")\"")
		}
		p.depth--
		return e, p.advance()
	}
	l, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tOp {
		if p.tok.kind == tEOF {
			return nil, errAt("filter", p.tok.pos, "expected an operator after the operand")
		}
		return nil, errAt("filter", p.tok.pos, "expected an operator, got %q", p.tok.text)
	}
	op, pos := p.tok.text, p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	r, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	c := &Compare{Op: strings.TrimPrefix(op, "?"), Any: op[0] == '?', L: l, R: r, pos: pos}
	return c, nil
}

func (p *parser) parseOperand() (Operand, error) {
	t := p.tok
	switch t.kind {
	case tNumber:
		return &Literal{Value: t.num, pos: t.pos}, p.advance()
	case tString:
		return &Literal{Value: t.text, pos: t.pos}, p.advance()
	case tIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch t.text {
		case "null":
			return &Literal{Value: nil, pos: t.pos}, nil
		case "true":
			return &Literal{Value: true, pos: t.pos}, nil
		case "false":
			return &Literal{Value: false, pos: t.pos}, nil
		}
		if p.tok.kind == tLParen {
			return p.parseCall(t)
		}
		return parseIdent(t)
	case tEOF:
		return nil, errAt("filter", t.pos, "expected an operand")
	}
	return nil, errAt("filter", t.pos, "expected an operand, got %q", t.text)
}

// parseIdent splits an identifier token into its path and modifiers.
// In "@collection.name:alias.field" the first colon names an alias and
// belongs to the path.
func parseIdent(t token) (*Ident, error) {
	name, mods := t.text, []string(nil)
	rest := name
	prefix := ""
	if strings.HasPrefix(name, "@collection.") {
		// keep "@collection.name:alias." in the path
		after := name[len("@collection."):]
		if i := strings.IndexByte(after, '.'); i >= 0 {
			prefix = name[:len("@collection.")+i+1]
			rest = after[i+1:]
		}
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		for _, m := range strings.Split(rest[i+1:], ":") {
			if m == "" {
				return nil, errAt("filter", t.pos, "empty modifier in %q", name)
			}
			mods = append(mods, m)
		}
		rest = rest[:i]
	}
	path := prefix + rest
	if path == "" || strings.HasSuffix(path, ".") || strings.Contains(path, "..") || strings.HasPrefix(path, ".") {
		return nil, errAt("filter", t.pos, "invalid identifier %q", name)
	}
	return &Ident{Name: path, Modifiers: mods, pos: t.pos}, nil
}

func (p *parser) parseCall(name token) (Operand, error) {
	p.depth++
	if p.depth > maxDepth {
		return nil, errAt("filter", p.tok.pos, "too deeply nested")
	}
	defer func() { p.depth-- }()
	if err := p.advance(); err != nil { // (
		return nil, err
	}
	c := &Call{Name: name.text, pos: name.pos}
	if p.tok.kind != tRParen {
		for {
			a, err := p.parseOperand()
			if err != nil {
				return nil, err
			}
			c.Args = append(c.Args, a)
			if p.tok.kind != tComma {
				break
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
	}
	if p.tok.kind != tRParen {
		return nil, errAt("filter", p.tok.pos, "expected \")\" to close %s(", name.text)
	}
	return c, p.advance()
}

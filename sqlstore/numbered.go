package sqlstore

import "strings"

// The statements of the system tables that the services own (the outbox,
// webhooks, the relay's positions) are fixed texts, written once with
// PostgreSQL's numbered parameters $1, $2 … and rendered here in the
// dialect's own: a statement then reads as it runs, and no caller counts
// placeholders by hand.

// numbered returns query with each $n replaced by the dialect's
// placeholder for parameter n. query must hold no $ other than those
// parameters (no string literal or quoted name with a $ in it).
func (s *Store) numbered(query string) string {
	if s.dialect.Placeholder(1) == "$1" {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		n, j := 0, i+1
		for ; j < len(query) && query[j] >= '0' && query[j] <= '9'; j++ {
			n = 10*n + int(query[j]-'0')
		}
		if j == i+1 {
			b.WriteByte(c)
			continue
		}
		b.WriteString(s.dialect.Placeholder(n))
		i = j - 1
	}
	return b.String()
}

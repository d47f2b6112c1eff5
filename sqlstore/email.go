package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/underhood/underhood"
)

// This file owns the queries about the email column of auth collections,
// whose unique index ignores the case of ASCII letters.

type emailIs struct{ email string }

func (c emailIs) writeCond(w *sqlWriter) {
	var col strings.Builder
	col.WriteString(w.d.Quote(Alias) + "." + w.d.Quote("email"))
	w.b.WriteString(w.d.Collate(col.String(), "NOCASE"))
	w.b.WriteString(" = ")
	w.args = append(w.args, c.email)
	w.b.WriteString(w.d.Collate(w.d.Placeholder(len(w.args)), "NOCASE"))
	w.b.WriteString(" AND " + col.String() + " != ''")
}

// EmailIs is the email field equal to email regardless of case, and not
// empty. It is the email index's expression and condition, so the index
// serves it.
func EmailIs(email string) Cond { return emailIs{email} }

// EmailConflicts returns the ids of the records of c whose emails differ
// only in case, grouped by email, in email order.
func (s *Store) EmailConflicts(ctx context.Context, q Querier, c *underhood.Collection) ([][]string, error) {
	table, id, email := s.quote(c.Name), s.quote("id"), s.quote("email")
	// LOWER folds what NOCASE folds on both engines: ASCII letters.
	rows, err := q.QueryContext(ctx, `SELECT `+id+`, LOWER(`+email+`) FROM `+table+
		` WHERE `+email+` != '' AND LOWER(`+email+`) IN (SELECT LOWER(`+email+`) FROM `+table+
		` WHERE `+email+` != '' GROUP BY LOWER(`+email+`) HAVING COUNT(*) > 1) ORDER BY 2, 1`)
	if err != nil {
		return nil, fmt.Errorf("find conflicting emails of %s: %w", c.Name, err)
	}
	defer rows.Close()
	var groups [][]string
	last := ""
	for rows.Next() {
		var rid, key string
		if err := rows.Scan(&rid, &key); err != nil {
			return nil, fmt.Errorf("find conflicting emails of %s: %w", c.Name, err)
		}
		if len(groups) == 0 || key != last {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], rid)
		last = key
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find conflicting emails of %s: %w", c.Name, err)
	}
	return groups, nil
}

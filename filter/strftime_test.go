package filter_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// TestStrftimeAgreesWithSQLite asks SQLite for strftime(format, time,
// modifiers...) over times of every shape it reads (date text, time-only
// text, Julian day numbers, Unix times, text that reads as a number,
// values out of range) and checks that Match computes the same text.
func TestStrftimeAgreesWithSQLite(t *testing.T) {
	db := openTestDB(t)
	o := filter.Options{Schema: db.schema, Collection: db.schema.FindCollection("posts"), Dialect: sqlite.Dialect{}}
	rec := db.recs["posts"][0]
	for _, c := range strftimeCases(t, db) {
		e, err := filter.Parse(c.src)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", c.src, err)
		}
		ok, err := filter.Match(context.Background(), e, o, rec, nil)
		if err != nil || !ok {
			t.Errorf("Match(%q) = %v, %v; want true: SQLite says %s", c.src, ok, err, c.says)
		}
	}
}

// TestStrftimeOnPostgres checks that the filter's strftime compiled for
// PostgreSQL (uh_strftime) gives SQLite's answers, over the same grid.
func TestStrftimeOnPostgres(t *testing.T) {
	pg := openEngineDB(t, postgresEngine)
	cases := strftimeCases(t, openTestDB(t))
	posts := pg.schema.FindCollection("posts")
	o := filter.Options{Schema: pg.schema, Collection: posts, Dialect: pg.dialect}
	for _, c := range cases {
		x, err := compile(t, c.src, o)
		if err != nil {
			t.Fatalf("Compile(%q) = %v", c.src, err)
		}
		got, err := pg.query(posts, x)
		if err != nil || len(got) != len(pg.recs["posts"]) {
			t.Errorf("PostgreSQL: %s holds for %d of %d records (%v); want all: SQLite says %s\nSQL: %s\nargs: %#v",
				c.src, len(got), len(pg.recs["posts"]), err, c.says, x, x.Args)
		}
	}
}

// strftimeCase is a filter that holds when strftime gives SQLite's answer.
type strftimeCase struct {
	src  string // strftime(…) = 'answer', or = null
	says string // what SQLite says, for messages
}

// strftimeCases asks SQLite (db) for strftime(format, time, modifiers...)
// over a grid of formats, times and modifiers.
func strftimeCases(t *testing.T, db *testDB) []strftimeCase {
	t.Helper()
	var cases []strftimeCase
	times := []any{
		"2024-03-15 12:30:45.678Z", "2024-02-29", "2024-01-02T08:00:00", "2024-01-02 23:30+02:00", "2024-01-02 ",
		" 2024-01-02", "12:30", "23:59:59.5Z", "", "abc", "2024-13-01", "9999-12-31 23:59:59.999Z", "0000-01-01",
		float64(5), float64(0), float64(2460000.5), float64(5373484.4), float64(5373484.5), float64(-3), float64(1e9),
		float64(-1e9), float64(1.5), "5", " 7 ", "1e9", "2.5", "-3", "007", "0x10",
	}
	modifiers := [][]string{
		nil, {"unixepoch"}, {"UnixEpoch"}, {"auto"}, {"julianday"}, {"start of day"}, {"+1 day"}, {"-1 month"},
		{"+1 day", "unixepoch"}, {"unixepoch", "auto"}, {"auto", "+1 hour"}, {"unixepoch", "start of year"},
		{"+10000 years"}, {"-5000 years"}, {"weekday 0"},
	}
	formats := []string{"%Y-%m-%d %H:%M:%f", "%s", "%j %w %u", "%F %T %R", "%G-W%V %g %U %W", "%k %l %I %p %P", "%J"}
	for _, format := range formats {
		for _, tv := range times {
			for _, mods := range modifiers {
				args := []any{format, tv}
				lits := []string{quoteLiteral(format), literalOf(tv)}
				for _, m := range mods {
					args = append(args, m)
					lits = append(lits, quoteLiteral(m))
				}
				call := "strftime(" + strings.Join(lits, ", ") + ")"
				placeholders := make([]string, len(args))
				for i := range args {
					placeholders[i] = "?" + strconv.Itoa(i+1)
				}
				var want sql.NullString
				err := db.store.Read(context.Background(), func(q sqlstore.Querier) error {
					return q.QueryRowContext(context.Background(), "SELECT strftime("+strings.Join(placeholders, ", ")+")", args...).Scan(&want)
				})
				if err != nil {
					t.Fatalf("SQLite %s = %v", call, err)
				}
				// "= null" also holds for "", which strftime never returns
				// for these formats.
				src := call + " = null"
				if want.Valid {
					src = call + " = " + quoteLiteral(want.String)
				}
				cases = append(cases, strftimeCase{src: src, says: call + " = " + describe(want)})
			}
		}
	}
	return cases
}

func describe(s sql.NullString) string {
	if !s.Valid {
		return "NULL"
	}
	return strconv.Quote(s.String)
}

// literalOf writes a number or string as a filter literal.
func literalOf(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return quoteLiteral(v)
	}
	panic(fmt.Sprintf("literalOf(%T)", v))
}

// quoteLiteral writes s as a single-quoted filter string.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}
